//! In-store returns of online purchases: the purchase is read from Klarna, only what remains
//! refundable can come back, refunds go through the outbox (so an outage only delays them), and
//! returns above the threshold or without proof need a manager's PIN.

use kassa_tests::{Till, eventually};
use serde_json::{Value, json};

/// An online order at the sandbox: 3 pairs of socks at 99.00 and a cap at 249.00.
fn online_order(till: &Till) -> String {
    till.sandbox
        .seed_order("SEK", "web-4711", vec![
            json!({"name": "Socks", "reference": "SKU-7", "quantity": 3, "unit_price": 9900, "total_amount": 29700}),
            json!({"name": "Cap", "reference": "SKU-9", "quantity": 1, "unit_price": 24900, "total_amount": 24900}),
        ])
        .payment_transaction_id
}

async fn give_back(till: &Till, tx: &str, lines: Value, extra: Value) -> (u16, Value) {
    let mut body = json!({"transaction_id": tx, "lines": lines, "reason": "did not fit"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    till.post("/v1/returns", body).await
}

async fn refunded_at_klarna(till: &Till, tx: &str) -> i64 {
    till.sandbox
        .transactions()
        .into_iter()
        .find(|t| t.payment_transaction_id == tx)
        .map(|t| t.refunded_amount)
        .unwrap()
}

async fn wait_refund_sent(till: &Till, return_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, r) = till.get(&format!("/v1/returns/{return_id}")).await;
        if r["refund_state"] == "sent" {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "refund never sent: {r}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_return_refunds_the_whole_order_once() {
    let till = Till::start().await;
    let tx = online_order(&till);
    let (s, p) = till.get(&format!("/v1/returns/purchases/{tx}")).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["lines"].as_array().unwrap().len(), 2);
    assert_eq!(p["refundable_amount"], 54600);
    let (s, r) = give_back(
        &till,
        &tx,
        json!([{"index": 0, "quantity": 3}, {"index": 1, "quantity": 1}]),
        json!({}),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["amount"], 54600);
    wait_refund_sent(&till, r["id"].as_str().unwrap()).await;
    assert_eq!(refunded_at_klarna(&till, &tx).await, 54600);
    // Nothing is left to return.
    let (_, p) = till.get(&format!("/v1/returns/purchases/{tx}")).await;
    assert!(
        p["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["returnable_quantity"] == 0),
        "{p}"
    );
    let (s, v) = give_back(&till, &tx, json!([{"index": 1, "quantity": 1}]), json!({})).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only 0 of \"Cap\""),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partial_returns_that_together_exceed_the_order_are_refused_the_second_time() {
    let till = Till::start().await;
    let tx = online_order(&till);
    let (s, first) = give_back(&till, &tx, json!([{"index": 0, "quantity": 2}]), json!({})).await;
    assert_eq!(s, 201, "{first}");
    wait_refund_sent(&till, first["id"].as_str().unwrap()).await;
    let (s, second) = give_back(&till, &tx, json!([{"index": 0, "quantity": 2}]), json!({})).await;
    assert_eq!(s, 409, "{second}");
    assert!(
        second["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only 1 of \"Socks\" can still be returned"),
        "{second}"
    );
    // The one that remains can come back on a later visit.
    let (s, third) = give_back(&till, &tx, json!([{"index": 0, "quantity": 1}]), json!({})).await;
    assert_eq!(s, 201, "{third}");
    wait_refund_sent(&till, third["id"].as_str().unwrap()).await;
    assert_eq!(refunded_at_klarna(&till, &tx).await, 29700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_during_an_outage_gets_a_pending_slip_and_is_refunded_once_after() {
    let till = Till::start_with(Default::default(), |c| {
        c.outbox.backoff_base_ms = 20;
        c.outbox.backoff_cap_ms = 200;
    })
    .await;
    let tx = online_order(&till);
    // Looked up while Klarna was reachable...
    let (s, _) = till.get(&format!("/v1/returns/purchases/{tx}")).await;
    assert_eq!(s, 200);
    // ...and the refund queued while the outbox can't reach it.
    till.sandbox
        .fault(Some("refund"), kassa_tests::Fault::Reset, Some(5));
    let (s, r) = give_back(&till, &tx, json!([{"index": 1, "quantity": 1}]), json!({})).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["refund_state"], "pending");
    assert!(
        r["receipt"].as_str().unwrap().contains("REFUND PENDING"),
        "{r}"
    );
    // While it waits, the same cap cannot be returned twice.
    let (s, _) = give_back(&till, &tx, json!([{"index": 1, "quantity": 1}]), json!({})).await;
    assert_eq!(s, 409);
    let r = wait_refund_sent(&till, r["id"].as_str().unwrap()).await;
    assert!(
        r["receipt"].as_str().unwrap().contains("Refund sent"),
        "{r}"
    );
    let refunds = till
        .sandbox
        .effects()
        .iter()
        .filter(|e| e.kind == "refund")
        .count();
    assert_eq!(refunds, 1);
    assert_eq!(refunded_at_klarna(&till, &tx).await, 24900);
}

/// A refund queued through the outbox API (not as a return) during an outage counts against the
/// purchase too: the same shirt cannot then come back as a return and be refunded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_queued_by_the_api_during_an_outage_blocks_a_return_of_the_same_item() {
    let till = Till::start_with(Default::default(), |c| {
        c.outbox.backoff_base_ms = 20;
        c.outbox.backoff_cap_ms = 200;
    })
    .await;
    let tx = online_order(&till);
    till.sandbox
        .fault(Some("refund"), kassa_tests::Fault::Reset, Some(5));
    let (s, q) = till
        .post(
            &format!("/v1/transactions/{tx}/refunds"),
            json!({"currency": "SEK", "reference": "web-desk-1",
                   "line_items": [{"name": "Cap", "reference": "SKU-9", "quantity": 1, "unit_price": 24900}]}),
        )
        .await;
    assert_eq!(s, 202, "{q}");
    // The lookup shows the cap as waiting, not returnable, and the amount as no longer refundable.
    let (s, p) = till.get(&format!("/v1/returns/purchases/{tx}")).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["lines"][1]["pending_quantity"], 1, "{p}");
    assert_eq!(p["lines"][1]["returnable_quantity"], 0, "{p}");
    assert_eq!(p["refundable_amount"], 29700, "{p}");
    let (s, v) = give_back(&till, &tx, json!([{"index": 1, "quantity": 1}]), json!({})).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only 0 of \"Cap\" can still be returned"),
        "{v}"
    );
    // A refund with no lines counts against the amount: the socks' 297.00 is all that is left.
    let (s, q) = till
        .post(
            &format!("/v1/transactions/{tx}/refunds"),
            json!({"currency": "SEK", "reference": "web-desk-2",
                   "line_items": [{"name": "Goodwill", "quantity": 1, "unit_price": 20000}]}),
        )
        .await;
    assert_eq!(s, 202, "{q}");
    let (s, v) = give_back(&till, &tx, json!([{"index": 0, "quantity": 2}]), json!({})).await;
    assert_eq!(s, 409, "{v}");
    // After recovery Klarna applied each refund once and the cap exactly once.
    eventually("both refunds applied at Klarna", || {
        let t = till.sandbox.transactions();
        t.iter()
            .any(|t| t.payment_transaction_id == tx && t.refunded_amount == 44900)
    })
    .await;
    let refunds = till
        .sandbox
        .effects()
        .iter()
        .filter(|e| e.kind == "refund")
        .count();
    assert_eq!(refunds, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_malformed_ids_get_a_clear_error_and_nothing_is_recorded() {
    let till = Till::start().await;
    let (s, v) = till.get("/v1/returns/purchases/SKU-12345").await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a Klarna payment transaction id")
    );
    let unknown = "krn:payment:eu1:transaction:00000000-0000-4000-8000-000000000000";
    let (s, v) = till.get(&format!("/v1/returns/purchases/{unknown}")).await;
    assert_eq!(s, 404, "{v}");
    let (s, _) = give_back(
        &till,
        unknown,
        json!([{"index": 0, "quantity": 1}]),
        json!({}),
    )
    .await;
    assert_eq!(s, 404);
    let rows = till
        .agent()
        .terminal
        .store()
        .call(|db| db.journal_rows(0, 10))
        .await
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    assert!(till.sandbox.effects().iter().all(|e| e.kind != "refund"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_returns_and_returns_without_proof_need_a_manager_pin() {
    let till = Till::start_with(Default::default(), |c| c.returns.approval_above = 20_000).await;
    let phc = kassa_agent::manager::hash_pin("2468").unwrap();
    till.agent()
        .terminal
        .store()
        .call(move |db| db.set_manager_pin(&phc, "owner"))
        .await
        .unwrap();
    let tx = online_order(&till);

    // Above the threshold without a manager: refused.
    let (s, v) = give_back(&till, &tx, json!([{"index": 1, "quantity": 1}]), json!({})).await;
    assert_eq!(s, 403, "{v}");
    // With a wrong PIN: refused, and the refusal is journaled.
    let (s, _) = give_back(
        &till,
        &tx,
        json!([{"index": 1, "quantity": 1}]),
        json!({"manager": {"name": "maria", "pin": "1111"}}),
    )
    .await;
    assert_eq!(s, 403);
    // Below the threshold but without proof of purchase: also needs a manager.
    let (s, _) = give_back(
        &till,
        &tx,
        json!([{"index": 0, "quantity": 1}]),
        json!({"proof_of_purchase": false}),
    )
    .await;
    assert_eq!(s, 403);
    // The right PIN: recorded with who approved it.
    let (s, r) = give_back(
        &till,
        &tx,
        json!([{"index": 1, "quantity": 1}]),
        json!({"manager": {"name": "maria", "pin": "2468"}}),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["approved_by"], "maria");
    eventually("the approved refund to be applied", || {
        till.sandbox.effects().iter().any(|e| e.kind == "refund")
    })
    .await;
    let rows = till
        .agent()
        .terminal
        .store()
        .call(|db| db.journal_rows(0, 100))
        .await
        .unwrap();
    let actions: Vec<String> = rows
        .iter()
        .filter(|r| r.kind == "manager_action" && r.detail["action"] == "approve_return")
        .map(|r| r.detail["outcome"].to_string())
        .collect();
    assert_eq!(actions, ["\"refused\"", "\"approved\""], "{rows:#?}");
    assert!(rows.iter().any(|r| r.kind == "return_recorded"));
}
