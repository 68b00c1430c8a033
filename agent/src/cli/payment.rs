//! `kassa payment resolve`: a manager decides a payment in doubt (Klarna's answer could not be
//! read, so the customer may have been charged) from the command line, through the running agent.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum PaymentCommand {
    /// Decide a payment in doubt: paid (Klarna's transaction id, checked at Klarna) or not paid.
    Resolve {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        /// The payment attempt's id (from the sale, the log or the cashier's screen).
        attempt_id: String,
        /// Klarna has the payment: its transaction id (krn:payment:…:transaction:…).
        #[arg(
            long,
            conflicts_with = "not_paid",
            required_unless_present = "not_paid"
        )]
        paid: Option<String>,
        /// The customer was not charged.
        #[arg(long)]
        not_paid: bool,
        /// The deciding manager's name (journaled).
        #[arg(long)]
        manager: String,
        /// The manager PIN (else `KASSA_MANAGER_PIN`).
        #[arg(long, env = "KASSA_MANAGER_PIN", hide_env_values = true)]
        pin: String,
        /// What the manager checked.
        #[arg(long)]
        note: Option<String>,
    },
}

pub async fn run(cmd: PaymentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PaymentCommand::Resolve {
            config,
            attempt_id,
            paid,
            not_paid: _,
            manager,
            pin,
            note,
        } => {
            let body = match &paid {
                Some(tx) => json!({"outcome": "paid", "klarna_transaction_id": tx,
                    "manager": manager, "note": note}),
                None => json!({"outcome": "not_paid", "manager": manager, "note": note}),
            };
            let a = super::returns::call_with_pin(
                &config,
                reqwest::Method::POST,
                &format!("/v1/payments/{attempt_id}/resolve"),
                Some(body),
                Some(&pin),
            )
            .await?;
            println!(
                "payment {} is now {} ({})",
                a["id"].as_str().unwrap_or(&attempt_id),
                a["state"].as_str().unwrap_or("?"),
                a["reason"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
