//! Post-purchase operations through the durable outbox: queued while Klarna is down and sent
//! exactly once after, retried with the same key when an answer is lost, paced by 429s, and
//! parked for a manager when Klarna refuses them; Klarna's health follows what the till sees.

use std::time::Duration;

use kassa_tests::{Fault, Till, eventually};
use serde_json::{Value, json};

/// Seeds a captured online order of `amount` at the sandbox; returns its transaction id.
fn order(till: &Till, amount: i64) -> String {
    till.sandbox
        .seed_order("SEK", "web-1001", vec![json!({"name": "Coat", "quantity": 1, "unit_price": amount, "total_amount": amount})])
        .payment_transaction_id
}

async fn refund(till: &Till, tx: &str, amount: i64, reference: &str) -> (u16, Value) {
    till.post(
        &format!("/v1/transactions/{tx}/refunds"),
        json!({"currency": "SEK", "reference": reference,
               "line_items": [{"name": "Coat", "quantity": 1, "unit_price": amount}]}),
    )
    .await
}

async fn outbox_state(till: &Till, id: i64) -> Value {
    till.get(&format!("/v1/outbox/{id}")).await.1
}

async fn wait_outbox(till: &Till, id: i64, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = outbox_state(till, id).await;
        if v["state"] == state {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "operation {id} never became {state}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn refunds_with_key(till: &Till, key: &str) -> usize {
    till.sandbox
        .effects()
        .iter()
        .filter(|e| e.kind == "refund" && e.idempotency_key.as_deref() == Some(key))
        .count()
}

fn fast_retries(c: &mut kassa_agent::config::Config) {
    c.outbox.backoff_base_ms = 20;
    c.outbox.backoff_cap_ms = 200;
    c.health.breaker_cooldown_ms = 200;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_made_during_an_outage_is_applied_exactly_once_after_recovery() {
    let till = Till::start_with(Default::default(), fast_retries).await;
    let tx = order(&till, 50_000);
    till.sandbox.set_outage(true);
    let (status, op) = refund(&till, &tx, 12_000, "return-1").await;
    assert_eq!(status, 202, "{op}");
    let id = op["id"].as_i64().unwrap();
    let key = op["idempotency_key"].as_str().unwrap().to_string();
    // The cashier is told what waits.
    eventually_pending(&till, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(outbox_state(&till, id).await["state"], "pending");
    assert_eq!(refunds_with_key(&till, &key), 0);

    till.sandbox.set_outage(false);
    wait_outbox(&till, id, "sent").await;
    assert_eq!(refunds_with_key(&till, &key), 1);
    let t = till
        .sandbox
        .transactions()
        .into_iter()
        .find(|t| t.payment_transaction_id == tx)
        .unwrap();
    assert_eq!(t.refunded_amount, 12_000);
    let kinds: Vec<String> = till
        .agent()
        .terminal
        .store()
        .call(|db| db.journal_rows(0, 100))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, ["outbox_queued", "outbox_sent"]);
}

async fn eventually_pending(till: &Till, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, h) = till.get("/health").await;
        if h["klarna"]["outbox"]["pending"] == n {
            assert!(
                h["klarna"]["outbox"]["oldest_pending_age_secs"].is_i64(),
                "{h}"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never showed {n} pending: {h}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_lost_after_the_refund_was_applied_is_retried_with_the_same_key_once() {
    let till = Till::start_with(Default::default(), fast_retries).await;
    let tx = order(&till, 50_000);
    till.sandbox
        .fault(Some("refund"), Fault::LoseResponse, Some(1));
    till.sandbox
        .fault(Some("refund"), Fault::Truncated, Some(1));
    let (_, op) = refund(&till, &tx, 7_000, "return-2").await;
    let id = op["id"].as_i64().unwrap();
    let v = wait_outbox(&till, id, "sent").await;
    assert!(
        v["attempts"].as_i64().unwrap() >= 3,
        "lost, truncated, then the replayed answer: {v}"
    );
    assert_eq!(
        refunds_with_key(&till, op["idempotency_key"].as_str().unwrap()),
        1
    );
    assert!(till.sandbox.hits("refund") >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_is_drained_at_the_pace_klarna_allows() {
    let till = Till::start_with(Default::default(), fast_retries).await;
    const RATE: f64 = 20.0;
    const OPS: usize = 60;
    till.sandbox.set_outage(true);
    let txs: Vec<String> = (0..6).map(|_| order(&till, 100_000)).collect();
    let mut ids = vec![];
    for i in 0..OPS {
        let (s, op) = refund(&till, &txs[i % txs.len()], 100, &format!("r-{i}")).await;
        assert_eq!(s, 202, "{op}");
        ids.push(op["id"].as_i64().unwrap());
    }
    till.sandbox.set_rate_limit(Some(RATE));
    till.sandbox.set_outage(false);
    for id in &ids {
        wait_outbox(&till, *id, "sent").await;
    }
    let refunds = till
        .sandbox
        .effects()
        .iter()
        .filter(|e| e.kind == "refund")
        .count();
    assert_eq!(refunds, OPS, "every refund applied exactly once");
    // Honouring Retry-After (and pacing after it) means few refused requests, not hammering.
    let hits = till.sandbox.hits("refund");
    assert!(hits <= OPS * 2, "{hits} requests for {OPS} refunds");
    // The sandbox never served more than its allowed rate in any one-second span.
    let times = till.sandbox.served_times("refund");
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
            .count();
        assert!(
            in_window as f64 <= RATE + 1.0,
            "{in_window} refunds served within one second"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_klarna_refuses_waits_for_a_manager_and_the_decision_is_journaled() {
    let till = Till::start_with(Default::default(), fast_retries).await;
    let tx = order(&till, 5_000);
    // While Klarna answers, a refund above what was captured is refused at once (issue 19).
    let (s, e) = refund(&till, &tx, 9_000, "too-much").await;
    assert_eq!(s, 409, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("exceeds"),
        "{e}"
    );
    // During an outage it cannot be checked (the till never saw this purchase): it is queued,
    // and Klarna's refusal, once it answers, parks it for a manager.
    till.sandbox.set_outage(true);
    let (s, op) = refund(&till, &tx, 9_000, "too-much").await;
    assert_eq!(s, 202, "{op}");
    till.sandbox.set_outage(false);
    let id = op["id"].as_i64().unwrap();
    let v = wait_outbox(&till, id, "needs_attention").await;
    assert_eq!(v["error_code"], "OPERATION_NOT_ALLOWED", "{v}");
    assert!(
        v["error_message"].as_str().unwrap().contains("exceeds"),
        "{v}"
    );
    assert_eq!(
        till.sandbox.hits("refund"),
        1,
        "a final error is never retried blindly"
    );
    let (_, h) = till.get("/health").await;
    assert_eq!(h["klarna"]["outbox"]["needs_attention"], 1);
    assert_eq!(h["klarna"]["outbox"]["alert"], true);

    let (s, v) = till
        .post(
            &format!("/v1/outbox/{id}/dismiss"),
            json!({"operator": "maria", "note": "refunded in cash"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "resolved");
    let rows = till
        .agent()
        .terminal
        .store()
        .call(|db| db.journal_rows(0, 100))
        .await
        .unwrap();
    let resolved = rows
        .iter()
        .find(|r| r.kind == "outbox_resolved")
        .expect("journaled");
    assert_eq!(resolved.operator, "maria");
    assert_eq!(resolved.detail["action"], "dismiss");
    // Resolving twice is refused.
    assert_eq!(
        till.post(&format!("/v1/outbox/{id}/retry"), json!({}))
            .await
            .0,
        409
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_over_the_limit_is_refused_and_queued_ones_are_kept() {
    let till = Till::start_with(Default::default(), |c| {
        fast_retries(c);
        c.outbox.max_count = 2;
    })
    .await;
    let tx = order(&till, 50_000);
    till.sandbox.set_outage(true);
    assert_eq!(refund(&till, &tx, 100, "a").await.0, 202);
    assert_eq!(refund(&till, &tx, 100, "b").await.0, 202);
    let (s, v) = refund(&till, &tx, 100, "c").await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outbox is full"),
        "{v}"
    );
    till.sandbox.set_outage(false);
    eventually("both queued refunds to be applied", || {
        till.sandbox
            .effects()
            .iter()
            .filter(|e| e.kind == "refund")
            .count()
            == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_klarna_is_offline_payments_are_refused_at_once_and_recovery_is_noticed() {
    let till = Till::start_with(Default::default(), |c| {
        fast_retries(c);
        c.health.breaker_failures = 2;
    })
    .await;
    let sale = till.open_sale().await;
    till.sandbox.set_outage(true);
    // Failed calls open the breaker...
    for _ in 0..2 {
        assert_eq!(till.start_payment(&sale).await.0, 503);
    }
    let (_, h) = till.get("/health").await;
    assert_eq!(h["klarna"]["klarna"], "offline", "{h}");
    let hits_before = till.sandbox.hits("presentation") + till.sandbox.hits("authorize");
    // ...after which a payment is refused without even trying Klarna.
    let (s, v) = till.start_payment(&sale).await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("offline"),
        "{v}"
    );
    assert_eq!(
        till.sandbox.hits("presentation") + till.sandbox.hits("authorize"),
        hits_before
    );

    till.sandbox.set_outage(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, h) = till.get("/health").await;
        if h["klarna"]["breaker"] == "closed" {
            // Reachable again, but the last minute's failures still show.
            assert_eq!(h["klarna"]["klarna"], "degraded", "{h}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the probe never closed the breaker: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(till.start_payment(&sale).await.0, 201);
    let (_, slo) = till.get("/v1/slo?window=5m").await;
    let mm = slo
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "Messaging Placements")
        .unwrap();
    assert!(mm["availability_percent"].as_f64().unwrap() < 100.0, "{mm}");
    let (s, _) = till.get("/v1/slo?window=2w").await;
    assert_eq!(s, 400);
}
