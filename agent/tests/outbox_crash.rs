//! The outbox survives SIGKILL: a real `kassa` process with 1,000 queued refunds is killed at
//! seeded random moments at least 50 times while it drains, and restarted each time; at the end
//! every refund was applied exactly once and the journal verifies.

use std::collections::HashMap;
use std::time::Duration;

use kassa_sim::sandbox::{Sandbox, SandboxConfig};
use rand::{Rng, SeedableRng};
use serde_json::json;

mod common;

use common::*;

const OPERATIONS: usize = 1000;
const KILLS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_are_applied_exactly_once_across_fifty_sigkills() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(
        dir.path(),
        &sandbox,
        port,
        "[outbox]\nbackoff_base_ms = 20\nbackoff_cap_ms = 200",
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // Klarna allows 200 refunds per transaction: spread them over ten orders.
    let txs: Vec<String> = (0..10)
        .map(|i| {
            sandbox
                .seed_order(
                    "SEK",
                    &format!("web-{i}"),
                    vec![json!({"name": "Order", "quantity": 1,
                    "unit_price": 1_000_000, "total_amount": 1_000_000})],
                )
                .payment_transaction_id
        })
        .collect();

    // Queue everything while Klarna is unreachable, so the kills land during the drain.
    sandbox.set_outage(true);
    let mut child = spawn(&cfg);
    wait_ready(&http, &base).await;
    let mut keys = HashMap::new();
    for i in 0..OPERATIONS {
        let tx = &txs[i % txs.len()];
        let op = post(&http, format!("{base}/v1/transactions/{tx}/refunds"), json!({"currency": "SEK",
            "reference": format!("r-{i}"), "line_items": [{"name": "Item", "quantity": 1, "unit_price": 100}]}))
        .await;
        keys.insert(op["idempotency_key"].as_str().unwrap().to_string(), i);
    }
    sandbox.set_outage(false);
    // A rate limit stretches the drain over several seconds of kills.
    sandbox.set_rate_limit(Some(150.0));

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b61_7373);
    let started = std::time::Instant::now();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..120))).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        child = spawn(&cfg);
        wait_ready(&http, &base).await;
    }
    let kills_took = started.elapsed();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let pending = get(&http, format!("{base}/v1/outbox?state=pending&limit=10000")).await;
        if pending.as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never drained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let effects = sandbox.effects();
    let mut applied: HashMap<String, usize> = HashMap::new();
    for e in effects.iter().filter(|e| e.kind == "refund") {
        *applied
            .entry(e.idempotency_key.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(applied.len(), OPERATIONS, "every refund applied");
    assert!(
        applied.values().all(|n| *n == 1),
        "a refund was applied twice"
    );
    assert!(
        applied.keys().all(|k| keys.contains_key(k)),
        "an unknown refund was applied"
    );
    let refunded: i64 = sandbox
        .transactions()
        .iter()
        .map(|t| t.refunded_amount)
        .sum();
    assert_eq!(refunded, OPERATIONS as i64 * 100);
    assert!(journal_verifies(&cfg));
    eprintln!("{KILLS} kills in {kills_took:?}");
}
