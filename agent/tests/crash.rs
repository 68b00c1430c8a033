//! Crash recovery with a real `kassa` process: the agent is killed with SIGKILL while the customer
//! is looking at the QR code, the customer approves meanwhile, and after a restart the sale ends
//! paid with exactly one Klarna transaction and an intact journal.

use std::time::Duration;

use kassa_sim::sandbox::{CustomerAction, Sandbox, SandboxConfig};
use serde_json::json;

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_customer_pays_the_sale_ends_paid_once_after_restart() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), &sandbox, port, "");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut child = spawn(&cfg);
    wait_ready(&http, &base).await;
    let sale = post(
        &http,
        format!("{base}/v1/sales"),
        json!({"lines": [
        {"name": "Jacket", "quantity": 1, "unit_price": 89900}]}),
    )
    .await;
    let sale_id = sale["id"].as_str().unwrap().to_string();
    let attempt = post(
        &http,
        format!("{base}/v1/sales/{sale_id}/payments"),
        json!({}),
    )
    .await;
    assert_eq!(attempt["state"], "awaiting_customer");
    let rid = attempt["klarna_request_id"].as_str().unwrap().to_string();

    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    sandbox.customer(&rid, CustomerAction::Approve).unwrap();

    let mut child = spawn(&cfg);
    wait_ready(&http, &base).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = get(&http, format!("{base}/v1/sales/{sale_id}")).await;
        if v["state"] == "paid" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sale not paid after restart: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let txs = sandbox.transactions();
    assert_eq!(
        txs.iter()
            .filter(|t| t.payment_transaction_reference.as_deref() == Some(&sale_id))
            .count(),
        1
    );

    assert!(journal_verifies(&cfg));
}
