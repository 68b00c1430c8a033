//! `kassa sale`: a sale's lines and tenders from the command line, through the running agent
//! (the same calls as the cashier's screen and the local API): show it, take a line off, change
//! a quantity or a price (with its reason, and a manager where the store's limit says so), take
//! a percentage off the whole sale, and
//! pay it, or part of it, in cash or on the card terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};

use super::returns::call_with_pin;

// On a till that requires sign-in, `KASSA_STAFF_SESSION` carries the session of the member of
// staff running the command (`POST /v1/staff/sign-in`).

#[derive(Subcommand)]
pub enum SaleCommand {
    /// The sale: its lines (with their numbers), tenders, total and what is left to pay.
    Show {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        sale_id: String,
    },
    /// Take line LINE_NO off the sale (a wrong item).
    RemoveLine {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        sale_id: String,
        line_no: i64,
        #[arg(long)]
        operator: Option<String>,
    },
    /// Change line LINE_NO: its quantity, or its unit price (minor units) with a reason.
    EditLine {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        sale_id: String,
        line_no: i64,
        #[arg(
            long,
            conflicts_with = "unit_price",
            required_unless_present = "unit_price"
        )]
        quantity: Option<i64>,
        #[arg(long, requires = "reason")]
        unit_price: Option<i64>,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        approval: Approval,
        #[arg(long)]
        operator: Option<String>,
    },
    /// A percentage off the whole sale, with its reason (a manager beyond the store's limit).
    Discount {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        sale_id: String,
        #[arg(long)]
        percent: u32,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        approval: Approval,
        #[arg(long)]
        operator: Option<String>,
    },
    /// Cash (`--given`) or the card terminal (`--amount` and `--reference`) toward the sale.
    Tender {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        sale_id: String,
        /// Cash handed over, in minor units.
        #[arg(long, conflicts_with_all = ["amount", "reference"], required_unless_present = "amount")]
        given: Option<i64>,
        /// What the card terminal charged, in minor units.
        #[arg(long, requires = "reference")]
        amount: Option<i64>,
        /// The card terminal's reference for the charge.
        #[arg(long)]
        reference: Option<String>,
        #[arg(long)]
        operator: Option<String>,
    },
}

/// Adds the approving manager to a request body when both name and PIN were given.
/// A manager's approval, for a price cut or discount beyond the store's limit.
#[derive(Debug, clap::Args)]
pub struct Approval {
    /// The approving manager's name.
    #[arg(long, requires = "manager_pin")]
    manager: Option<String>,
    /// The manager's PIN (else `KASSA_MANAGER_PIN`).
    #[arg(long, env = "KASSA_MANAGER_PIN", hide_env_values = true)]
    manager_pin: Option<String>,
}

fn with_manager(body: &mut Value, approval: Approval) {
    if let (Some(name), Some(pin)) = (approval.manager, approval.manager_pin) {
        body["manager"] = json!({"name": name, "pin": pin});
    }
}

fn print_sale(v: &Value) {
    println!(
        "sale {}  {}  total {} {}  left to pay {}",
        v["id"].as_str().unwrap_or("?"),
        v["state"].as_str().unwrap_or("?"),
        v["total"],
        v["currency"].as_str().unwrap_or(""),
        v["due"]
    );
    for l in v["lines"].as_array().into_iter().flatten() {
        println!(
            "  line {:>3}  {:>4} × {:<32} {:>10}",
            l["line_no"],
            l["quantity"],
            l["name"].as_str().unwrap_or(""),
            l["total_amount"]
        );
    }
    for t in v["tenders"].as_array().into_iter().flatten() {
        println!(
            "  {} {}  {} (given {}, change {})",
            t["kind"].as_str().unwrap_or(""),
            t["state"].as_str().unwrap_or(""),
            t["amount"],
            t["given"],
            t["change"]
        );
    }
}

pub async fn run(cmd: SaleCommand) -> anyhow::Result<ExitCode> {
    let id = match &cmd {
        SaleCommand::Show { sale_id, .. }
        | SaleCommand::RemoveLine { sale_id, .. }
        | SaleCommand::EditLine { sale_id, .. }
        | SaleCommand::Discount { sale_id, .. }
        | SaleCommand::Tender { sale_id, .. } => sale_id,
    };
    // It goes into the URL: only a sale id (a UUID) may.
    anyhow::ensure!(
        uuid::Uuid::parse_str(id).is_ok(),
        "{id:?} is not a sale id (a UUID, as `kassa log` and the receipt show it)"
    );
    let v = match cmd {
        SaleCommand::Show { config, sale_id } => {
            call_with_pin(
                &config,
                reqwest::Method::GET,
                &format!("/v1/sales/{sale_id}"),
                None,
                None,
            )
            .await?
        }
        SaleCommand::RemoveLine {
            config,
            sale_id,
            line_no,
            operator,
        } => {
            call_with_pin(
                &config,
                reqwest::Method::POST,
                &format!("/v1/sales/{sale_id}/lines/{line_no}/remove"),
                Some(json!({"operator": operator})),
                None,
            )
            .await?
        }
        SaleCommand::EditLine {
            config,
            sale_id,
            line_no,
            quantity,
            unit_price,
            reason,
            approval,
            operator,
        } => {
            let mut body = json!({"operator": operator});
            if let Some(q) = quantity {
                body["quantity"] = json!(q);
            }
            if let Some(p) = unit_price {
                body["unit_price"] = json!(p);
                body["reason"] = json!(reason);
            }
            with_manager(&mut body, approval);
            call_with_pin(
                &config,
                reqwest::Method::PATCH,
                &format!("/v1/sales/{sale_id}/lines/{line_no}"),
                Some(body),
                None,
            )
            .await?
        }
        SaleCommand::Discount {
            config,
            sale_id,
            percent,
            reason,
            approval,
            operator,
        } => {
            let mut body = json!({"percent": percent, "reason": reason, "operator": operator});
            // The discount is taken on the sale as it stands: read its total first, so a
            // command run twice does not take it twice.
            let now = call_with_pin(
                &config,
                reqwest::Method::GET,
                &format!("/v1/sales/{sale_id}"),
                None,
                None,
            )
            .await?;
            body["expected_total"] = now["total"].clone();
            with_manager(&mut body, approval);
            call_with_pin(
                &config,
                reqwest::Method::POST,
                &format!("/v1/sales/{sale_id}/discount"),
                Some(body),
                None,
            )
            .await?
        }
        SaleCommand::Tender {
            config,
            sale_id,
            given,
            amount,
            reference,
            operator,
        } => {
            let body = match given {
                Some(g) => json!({"kind": "cash", "given": g, "operator": operator}),
                None => json!({"kind": "card_terminal", "amount": amount,
                    "reference": reference, "operator": operator}),
            };
            let t = call_with_pin(
                &config,
                reqwest::Method::POST,
                &format!("/v1/sales/{sale_id}/tenders"),
                Some(body),
                None,
            )
            .await?;
            if t["tender"]["change"].as_i64().unwrap_or(0) > 0 {
                println!("change: {}", t["tender"]["change"]);
            }
            t["sale"].clone()
        }
    };
    print_sale(&v);
    Ok(ExitCode::SUCCESS)
}
