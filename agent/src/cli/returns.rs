//! `kassa return`: support staff look up a purchase and record a return from the command line,
//! through the running agent's local API (which holds the Klarna client and the outbox).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use kassa_agent::config::Config;

#[derive(Subcommand)]
pub enum ReturnCommand {
    /// Show a purchase (by Klarna transaction id) and what can still be returned.
    Lookup {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        transaction_id: String,
    },
    /// Record a return; the refund goes to Klarna through the outbox.
    Create {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        #[arg(long)]
        transaction_id: String,
        /// A line to return as INDEX:QUANTITY (indexes from `kassa return lookup`); repeatable.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        #[arg(long)]
        reason: String,
        /// Put the goods back in stock.
        #[arg(long)]
        restock: bool,
        /// The customer has no receipt or order confirmation.
        #[arg(long)]
        no_proof: bool,
        #[arg(long)]
        operator: Option<String>,
        /// Approving manager's name (with --pin) when the store requires approval.
        #[arg(long, requires = "pin")]
        manager: Option<String>,
        #[arg(long, requires = "manager")]
        pin: Option<String>,
    },
}

async fn call(
    config: &Path,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    call_with_pin(config, method, path, body, None).await
}

/// One call to the running agent's local API, with the manager PIN header when given.
pub(crate) async fn call_with_pin(
    config: &Path,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    pin: Option<&str>,
) -> anyhow::Result<Value> {
    let cfg = Config::load(config)?;
    let token = cfg.api_token()?;
    let url = format!("http://{}{path}", cfg.api.listen);
    let mut req = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(token.expose());
    if let Some(p) = pin {
        req = req.header("Kassa-Manager-Pin", p);
    }
    // A signed-in member of staff (a till that requires sign-in): their session, so what the
    // command does is journaled under them.
    if let Ok(session) = std::env::var("KASSA_STAFF_SESSION")
        && !session.trim().is_empty()
    {
        req = req.header("Kassa-Staff-Session", session.trim());
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("is the agent running? cannot reach {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.context("reading the agent's answer")?;
    anyhow::ensure!(
        status.is_success(),
        "{}",
        v["error"]["message"]
            .as_str()
            .unwrap_or("the agent refused")
    );
    Ok(v)
}

fn parse_line(s: &str) -> anyhow::Result<Value> {
    let (i, q) = s
        .split_once(':')
        .context("--line is INDEX:QUANTITY, e.g. 0:2")?;
    let index: usize = i.trim().parse().context("the line index is a number")?;
    let quantity: i64 = q.trim().parse().context("the quantity is a number")?;
    Ok(json!({"index": index, "quantity": quantity}))
}

pub async fn run(cmd: ReturnCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ReturnCommand::Lookup {
            config,
            transaction_id,
        } => {
            let p = call(
                &config,
                reqwest::Method::GET,
                &format!("/v1/returns/purchases/{transaction_id}"),
                None,
            )
            .await?;
            println!(
                "{}  {} {}  refundable {}",
                p["transaction_id"].as_str().unwrap_or(""),
                p["amount"],
                p["currency"].as_str().unwrap_or(""),
                p["refundable_amount"]
            );
            println!(
                "{:>5}  {:<28} {:>6} {:>10} {:>9} {:>8} {:>11}",
                "index", "item", "qty", "unit", "refunded", "pending", "returnable"
            );
            for l in p["lines"].as_array().into_iter().flatten() {
                println!(
                    "{:>5}  {:<28} {:>6} {:>10} {:>9} {:>8} {:>11}",
                    l["index"],
                    l["name"].as_str().unwrap_or(""),
                    l["quantity"],
                    l["unit_price"],
                    l["refunded_quantity"],
                    l["pending_quantity"],
                    l["returnable_quantity"]
                );
            }
        }
        ReturnCommand::Create {
            config,
            transaction_id,
            lines,
            reason,
            restock,
            no_proof,
            operator,
            manager,
            pin,
        } => {
            let lines = lines
                .iter()
                .map(|l| parse_line(l))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut body = json!({"transaction_id": transaction_id, "lines": lines, "reason": reason,
                "restock": restock, "proof_of_purchase": !no_proof, "operator": operator});
            if let (Some(name), Some(pin)) = (manager, pin) {
                body["manager"] = json!({"name": name, "pin": pin});
            }
            let r = call(&config, reqwest::Method::POST, "/v1/returns", Some(body)).await?;
            println!("{}", r["receipt"].as_str().unwrap_or(""));
        }
    }
    Ok(ExitCode::SUCCESS)
}
