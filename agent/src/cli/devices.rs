//! `kassa devices`: the configured peripherals and their state, asked of the running agent (which
//! owns the serial ports); when no agent answers, the configuration alone, so IT can still check it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use kassa_agent::config::Config;
use kassa_agent::devices::configured;

/// Prints one line per configured device; exit 0 when the agent answered, 1 when it did not.
pub async fn list(config: &Path) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let devices = configured(&cfg.devices);
    if devices.is_empty() {
        println!(
            "no devices configured (add [devices.display], [devices.scanner], [devices.printer] or [devices.card_reader] to {})",
            config.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    match ask_agent(&cfg).await {
        Ok(report) => {
            println!("{:<12} {:<14} {:<40} detail", "device", "state", "port");
            for d in report["devices"].as_array().into_iter().flatten() {
                let detail = match (d["reason"].as_str(), d["since"].as_str()) {
                    (Some(reason), Some(since)) => format!("{reason} (since {since})"),
                    (Some(reason), None) => reason.to_string(),
                    _ => String::new(),
                };
                println!(
                    "{:<12} {:<14} {:<40} {detail}",
                    d["role"].as_str().unwrap_or("?"),
                    d["state"].as_str().unwrap_or("?"),
                    d["port"].as_str().unwrap_or("?"),
                );
            }
            if let Some([upper, lower]) = report["display_lines"]
                .as_array()
                .map(|l| [l.first(), l.get(1)])
            {
                let line = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
                println!("\ncustomer display: [{}]", line(upper));
                println!("                  [{}]", line(lower));
            }
            let waiting: Vec<&str> = report["receipts_not_printed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !waiting.is_empty() {
                println!("\nreceipts not printed (reprint with POST /v1/sales/<id>/receipt):");
                for id in waiting {
                    println!("  {id}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("the agent is not answering ({e}); configured devices, state unknown:");
            for (role, port) in devices {
                println!("{:<12} {:<14} {port}", role.as_str(), "unknown");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn ask_agent(cfg: &Config) -> anyhow::Result<Value> {
    let token = cfg.api_token()?;
    let url = format!("http://{}/v1/devices", cfg.api.listen);
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token.expose())
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.context("reading the agent's answer")?;
    anyhow::ensure!(status.is_success(), "the agent answered {status}: {body}");
    Ok(body)
}
