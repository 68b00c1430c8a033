//! End-to-end in-store payments over real HTTP: a sale is opened and paid through the local API
//! against the Klarna sandbox, including declines, expiry, cancels, outages and lost answers.

use std::time::Duration;

use kassa_tests::{CustomerAction, Fault, Till, eventually, last_payment};
use serde_json::{Value, json};

fn request_id(attempt: &serde_json::Value) -> String {
    attempt["klarna_request_id"]
        .as_str()
        .expect("payment request id")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_approves_and_the_sale_is_paid_once_with_a_full_journal() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    let (status, attempt) = till.start_payment(&sale).await;
    assert_eq!(status, 201, "{attempt}");
    assert_eq!(attempt["state"], "awaiting_customer");
    let url = attempt["payment_request_url"].as_str().unwrap();
    assert!(url.contains("/sandbox/pay/"), "{url}");

    // The sandbox saw exactly the sale's lines and total.
    let rid = request_id(&attempt);
    let req = till.sandbox.request(&rid).unwrap();
    assert_eq!((req.amount, req.currency.as_str()), (21700, "SEK"));
    assert_eq!(
        req.authorize_body["supplementary_purchase_data"]["line_items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    till.sandbox.customer(&rid, CustomerAction::Open).unwrap();
    till.wait_payment_state(&sale, "customer_opened").await;
    till.sandbox
        .customer(&rid, CustomerAction::Approve)
        .unwrap();
    let v = till
        .wait_sale(&sale, "paid", |v| v["state"] == "paid")
        .await;
    let p = last_payment(&v);
    assert_eq!(p["state"], "paid");
    assert!(
        p["klarna_transaction_id"]
            .as_str()
            .unwrap()
            .starts_with("krn:payment:eu1:transaction:")
    );
    assert_eq!(v["receipt_no"], 1);
    assert_eq!(till.transactions_for(&sale), 1);
    let captured: i64 = till
        .sandbox
        .effects()
        .iter()
        .filter(|e| e.kind == "capture")
        .map(|e| e.amount)
        .sum();
    assert_eq!(captured, 21700);

    assert_eq!(
        till.journal_kinds(&sale).await,
        [
            "sale_opened",
            "line_added",
            "line_added",
            "payment_requested",
            "qr_shown",
            "customer_opened",
            "payment_completed",
            "finalized",
            "receipt_issued"
        ]
    );
    assert_eq!(till.verify_journal().await.first_broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_leaves_the_sale_open_for_another_try() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    till.sandbox
        .customer(&request_id(&attempt), CustomerAction::Decline)
        .unwrap();
    let v = till.wait_payment_state(&sale, "declined").await;
    assert_eq!(v["state"], "open");

    // Try again: a new request, approved this time.
    let (status, again) = till.start_payment(&sale).await;
    assert_eq!(status, 201, "{again}");
    assert_ne!(request_id(&again), request_id(&attempt));
    till.sandbox
        .customer(&request_id(&again), CustomerAction::Approve)
        .unwrap();
    till.wait_sale(&sale, "paid", |v| v["state"] == "paid")
        .await;
    assert_eq!(till.transactions_for(&sale), 1);
}

/// Klarna declines the authorization outright (its risk decision, no payment request made): the
/// payment ends declined and the sale stays open. Nothing takes that decline for a cancel still
/// owed, even when the sale changes afterwards: no request is replayed or cancelled at Klarna.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_authorization_is_not_taken_for_an_abandoned_request() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    till.sandbox
        .fault(Some("authorize"), Fault::Declined, Some(1));
    let (_, v) = till.start_payment(&sale).await;
    assert_eq!(v["state"], "declined", "{v}");
    let (status, v) = till
        .post(
            &format!("/v1/sales/{sale}/lines"),
            json!({"lines": [{"name": "Cap", "quantity": 1, "unit_price": 500}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "open", "{v}");
    // Long enough for a follower (50 ms polls) to have acted, had one been started.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(till.sandbox.hits("authorize"), 1, "never replayed");
    assert_eq!(till.sandbox.hits("cancel_request"), 0);
    assert!(till.sandbox.requests().is_empty());
    let kinds = till.journal_kinds(&sale).await;
    assert!(
        !kinds.contains(&"cancel_confirmed".to_string()),
        "{kinds:?}"
    );

    // The customer pays another way round: a new payment, approved.
    let (status, again) = till.start_payment(&sale).await;
    assert_eq!(status, 201, "{again}");
    till.sandbox
        .customer(&request_id(&again), CustomerAction::Approve)
        .unwrap();
    till.wait_sale(&sale, "paid", |v| v["state"] == "paid")
        .await;
    assert_eq!(till.transactions_for(&sale), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_walks_away_lets_the_request_expire() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    till.sandbox
        .customer(&request_id(&attempt), CustomerAction::Abandon)
        .unwrap();
    let v = till.wait_payment_state(&sale, "expired").await;
    assert_eq!(v["state"], "open");
    assert!(
        till.journal_kinds(&sale)
            .await
            .contains(&"payment_expired".to_string())
    );
    assert_eq!(till.transactions_for(&sale), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_store_timeout_cancels_the_request_at_klarna() {
    let till = Till::start_with(Default::default(), |c| c.payment.in_store_timeout_secs = 1).await;
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    let rid = request_id(&attempt);
    till.wait_payment_state(&sale, "expired").await;
    eventually("the sandbox to show the request canceled", || {
        till.sandbox
            .request(&rid)
            .is_some_and(|r| r.state == "CANCELED")
    })
    .await;
    // The customer can no longer complete it.
    assert!(
        till.sandbox
            .customer(&rid, CustomerAction::Approve)
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cashier_cancels_and_the_sandbox_shows_the_request_canceled() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    let rid = request_id(&attempt);
    let (status, v) = till
        .post(&format!("/v1/sales/{sale}/payments/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(last_payment(&v)["state"], "canceled");
    assert_eq!(v["state"], "open");
    eventually("the sandbox to show CANCELED", || {
        till.sandbox
            .request(&rid)
            .is_some_and(|r| r.state == "CANCELED")
    })
    .await;
    till.wait_sale(&sale, "cancel confirmed", |v| {
        last_payment(v)["cancel_confirmed"] == true
    })
    .await;
    assert!(
        till.journal_kinds(&sale)
            .await
            .contains(&"cancel_confirmed".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klarna_down_at_the_start_fails_fast_with_a_clear_reason() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    till.sandbox.set_outage(true);
    let started = std::time::Instant::now();
    let (status, body) = till.start_payment(&sale).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "klarna_unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another payment method"),
        "{body}"
    );
    // Fail fast means within the client's connect timeout, not after minutes of retrying.
    assert!(started.elapsed() < Duration::from_secs(30));
    let v = till.sale(&sale).await;
    assert_eq!(v["state"], "open");
    assert!(
        v["payments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] != "requested")
    );

    // Klarna back: the same sale can be paid.
    till.sandbox.set_outage(false);
    let (status, attempt) = till.start_payment(&sale).await;
    assert_eq!(status, 201, "{attempt}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_on_the_final_authorization_end_in_exactly_one_transaction() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    till.sandbox.fault(
        Some("final_authorize"),
        Fault::ServerError { status: 503 },
        Some(2),
    );
    till.sandbox
        .fault(Some("final_authorize"), Fault::LoseResponse, Some(1));
    till.sandbox
        .customer(&request_id(&attempt), CustomerAction::Approve)
        .unwrap();
    till.wait_sale(&sale, "paid", |v| v["state"] == "paid")
        .await;
    assert!(
        till.sandbox.hits("final_authorize") >= 4,
        "503, 503, lost answer, then success"
    );
    assert_eq!(till.transactions_for(&sale), 1);
    let created = till
        .sandbox
        .effects()
        .iter()
        .filter(|e| e.kind == "transaction_created")
        .count();
    assert_eq!(created, 1);
}

/// Klarna charges the customer but its answer cannot be placed (no transaction where Klarna
/// documents it), on every retry: the till never shows a decline, never takes a second payment,
/// and puts the payment in doubt for a manager, who finds it at Klarna and marks it paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_kassa_cannot_place_is_in_doubt_never_declined_and_never_charged_twice() {
    let till = Till::start().await;
    till.set_manager_pin("2468", "mia").await;
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    till.sandbox
        .fault(Some("final_authorize"), Fault::Unplaceable, None);
    till.sandbox
        .customer(&request_id(&attempt), CustomerAction::Approve)
        .unwrap();
    let v = till.wait_payment_state(&sale, "in_doubt").await;
    assert_eq!(v["state"], "open");
    assert!(
        till.sandbox.hits("final_authorize") >= 3,
        "asked again with the same key before doubting"
    );
    // Klarna applied it once: the customer was charged exactly once.
    assert_eq!(till.transactions_for(&sale), 1);
    let kinds = till.journal_kinds(&sale).await;
    assert!(kinds.contains(&"payment_in_doubt".to_string()), "{kinds:?}");
    assert!(
        !kinds.contains(&"payment_declined".to_string()),
        "{kinds:?}"
    );
    // No second payment, no cancel, no abandon while it is in doubt.
    for path in ["payments", "payments/cancel", "cancel"] {
        let (s, e) = till
            .post(&format!("/v1/sales/{sale}/{path}"), json!({}))
            .await;
        assert_eq!(s, 409, "{path}: {e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("do not take payment again"),
            "{e}"
        );
    }
    assert_eq!(till.sandbox.requests().len(), 1);
    // A manager resolves it: a wrong PIN, a transaction of another amount, then the right one.
    let attempt_id = last_payment(&v)["id"].as_str().unwrap().to_string();
    let tx = till.sandbox.transactions()[0]
        .payment_transaction_id
        .clone();
    let resolve = |pin: &'static str, body: Value| {
        let (url, http, token) = (
            till.url(&format!("/v1/payments/{attempt_id}/resolve")),
            till.http.clone(),
            till.token.clone(),
        );
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("Kassa-Manager-Pin", pin)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, _) = resolve(
        "1111",
        json!({"outcome": "paid", "klarna_transaction_id": tx, "manager": "mia"}),
    )
    .await;
    assert_eq!(s, 403);
    let other = till
        .sandbox
        .seed_order(
            "SEK",
            "web-1",
            vec![json!({"name": "Cap", "quantity": 1, "unit_price": 100, "total_amount": 100})],
        )
        .payment_transaction_id;
    let (s, e) = resolve(
        "2468",
        json!({"outcome": "paid", "klarna_transaction_id": other, "manager": "mia"}),
    )
    .await;
    assert_eq!(s, 409, "{e}");
    let (s, a) = resolve("2468", json!({"outcome": "paid", "klarna_transaction_id": tx, "manager": "mia", "note": "seen in the Klarna portal"})).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["state"], "paid");
    let v = till.sale(&sale).await;
    assert_eq!(v["state"], "paid");
    let kinds = till.journal_kinds(&sale).await;
    assert!(
        kinds.contains(&"payment_doubt_resolved".to_string()),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"receipt_issued".to_string()), "{kinds:?}");
    assert!(till.verify_journal().await.first_broken.is_none());
}

/// After an answer that may have charged, a retry that cannot reach Klarna says nothing about
/// that first answer: the payment is never failed on it (the sale would be payable again); the
/// till asks again until Klarna answers, and the first result stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_that_cannot_reach_klarna_never_fails_a_payment_that_may_have_charged() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    // The first answer and its first retry cannot be read (the request was made at Klarna).
    till.sandbox
        .fault(Some("authorize"), Fault::Malformed, Some(2));
    let (s, attempt) = till.start_payment(&sale).await;
    assert_eq!(s, 201, "{attempt}");
    eventually("the retry", || till.sandbox.hits("authorize") >= 2).await;
    // Klarna unreachable for the next retries.
    till.sandbox.set_outage(true);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let v = till.sale(&sale).await;
    assert_eq!(last_payment(&v)["state"], "requested", "{v}");
    till.sandbox.set_outage(false);
    let v = till.wait_payment_state(&sale, "awaiting_customer").await;
    assert_eq!(
        till.sandbox.requests().len(),
        1,
        "one request, asked for again"
    );
    till.sandbox
        .customer(&request_id(last_payment(&v)), CustomerAction::Approve)
        .unwrap();
    till.wait_sale(&sale, "paid", |v| v["state"] == "paid")
        .await;
    assert_eq!(till.transactions_for(&sale), 1);
}

/// A payment in doubt that a manager finds was not charged ends failed, and the sale can be
/// paid again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_in_doubt_marked_not_paid_frees_the_sale_for_another_payment() {
    let till = Till::start().await;
    till.set_manager_pin("2468", "mia").await;
    let sale = till.open_sale().await;
    till.sandbox
        .fault(Some("authorize"), Fault::Malformed, Some(3));
    let (s, attempt) = till.start_payment(&sale).await;
    assert_eq!(s, 201, "{attempt}");
    let v = till.wait_payment_state(&sale, "in_doubt").await;
    let attempt_id = last_payment(&v)["id"].as_str().unwrap().to_string();
    let r = till
        .http
        .post(till.url(&format!("/v1/payments/{attempt_id}/resolve")))
        .bearer_auth(&till.token)
        .header("Kassa-Manager-Pin", "2468")
        .json(&json!({"outcome": "not_paid", "manager": "mia"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, again) = till.start_payment(&sale).await;
    assert_eq!(s, 201, "{again}");
    till.sandbox
        .customer(&request_id(&again), CustomerAction::Approve)
        .unwrap();
    till.wait_sale(&sale, "paid", |v| v["state"] == "paid")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_authorize_answer_is_retried_with_the_same_key_and_creates_one_request() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    till.sandbox
        .fault(Some("authorize"), Fault::LoseResponse, Some(1));
    let (status, attempt) = till.start_payment(&sale).await;
    assert_eq!(status, 201, "{attempt}");
    assert_eq!(attempt["state"], "requested");
    let v = till.wait_payment_state(&sale, "awaiting_customer").await;
    assert_eq!(till.sandbox.requests().len(), 1);
    assert_eq!(
        last_payment(&v)["klarna_request_id"].as_str(),
        Some(till.sandbox.requests()[0].payment_request_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_sale_is_never_charged_even_if_the_customer_approves_later() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    let rid = request_id(&attempt);
    // The cancel cannot reach Klarna for a while.
    till.sandbox
        .fault(Some("cancel_request"), Fault::Reset, None);
    let (status, v) = till
        .post(
            &format!("/v1/sales/{sale}/cancel"),
            json!({"operator": "ann"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "abandoned");
    // Staff see the cancel waiting for Klarna.
    let (_, health) = till.get("/health").await;
    assert_eq!(health["klarna"]["outbox"]["cancels_waiting"], 1, "{health}");
    // Meanwhile the customer approves on their phone; then Klarna is reachable again.
    till.sandbox
        .customer(&rid, CustomerAction::Approve)
        .unwrap();
    till.sandbox.clear_faults();
    let v = till
        .wait_sale(&sale, "the abandoned payment to be settled", |v| {
            last_payment(v)["cancel_confirmed"] == true
        })
        .await;
    assert_eq!(v["state"], "abandoned");
    assert_eq!(last_payment(&v)["state"], "canceled");
    assert!(
        last_payment(&v)["reason"]
            .as_str()
            .unwrap()
            .contains("not charged"),
        "{v}"
    );
    assert_eq!(till.transactions_for(&sale), 0);
    assert!(
        till.sandbox
            .effects()
            .iter()
            .all(|e| e.kind != "transaction_created")
    );
    // The manager can see why.
    assert!(
        till.journal_kinds(&sale)
            .await
            .contains(&"completed_after_abandon".to_string())
    );
    let (_, health) = till.get("/health").await;
    assert_eq!(health["klarna"]["outbox"]["cancels_waiting"], 0, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_sale_survives_a_restart_and_a_pending_one_is_resumed() {
    let mut till = Till::start().await;
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    till.restart().await;
    till.sandbox
        .customer(&request_id(&attempt), CustomerAction::Approve)
        .unwrap();
    till.wait_sale(&sale, "paid after restart", |v| v["state"] == "paid")
        .await;
    assert_eq!(till.transactions_for(&sale), 1);
    assert_eq!(till.verify_journal().await.first_broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_klarna_does_not_offer_are_refused_before_any_request() {
    let till = Till::start().await;
    let (_, sale) = till
        .post(
            "/v1/sales",
            json!({"lines": [{"name": "Car", "quantity": 1, "unit_price": 2_000_000_000}]}),
        )
        .await;
    let (status, body) = till.start_payment(sale["id"].as_str().unwrap()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "klarna_not_eligible");
    assert!(till.sandbox.requests().is_empty());
}

/// Copies the database files (the WAL too: committed pages may still be there).
fn copy_db(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for suffix in ["", "-wal"] {
        let name = format!("kassa.db{suffix}");
        let _ = std::fs::remove_file(to.join(&name));
        if from.join(&name).exists() {
            std::fs::copy(from.join(&name), to.join(&name)).unwrap();
        }
    }
    let _ = std::fs::remove_file(to.join("kassa.db-shm"));
}

/// A till whose Pay press reached Klarna but whose start was lost in a power cut: the disk kept
/// the sale as it was before the press (its draft included), and the till is back up.
/// `meanwhile` plays the customer while the power is off. Returns the till, the sale and the
/// attempt the lost press started.
async fn press_lost_in_a_power_cut(
    meanwhile: impl FnOnce(&Till, &str),
) -> (Till, String, serde_json::Value) {
    let mut till = Till::start().await;
    let sale = till.open_sale().await;
    let data = till.cfg.data_dir.clone();
    let before_press = till.dir.path().join("before-press");
    till.agent = None;
    tokio::time::sleep(Duration::from_millis(100)).await;
    copy_db(&data, &before_press);
    till.restart().await;

    let (status, first) = till.start_payment(&sale).await;
    assert_eq!(status, 201, "{first}");
    // The power goes. What the disk kept is the state before the press (the start's commit
    // was not yet flushed).
    till.agent = None;
    meanwhile(&till, &request_id(&first));
    tokio::time::sleep(Duration::from_millis(100)).await;
    copy_db(&before_press, &data);
    till.restart().await;
    (till, sale, first)
}

/// Starting a payment does not wait for the disk: the sale's draft, with the request's key and
/// exact body, was committed with its lines. A power cut that loses the start leaves the till
/// with the sale and its draft; the next press sends the same key and body, Klarna answers with
/// the request it already made, and the customer's approval during the outage is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_start_lost_in_a_power_cut_is_replayed_from_the_sales_draft() {
    let (till, sale, first) = press_lost_in_a_power_cut(|till, rid| {
        // The customer approves on their phone meanwhile.
        till.sandbox.customer(rid, CustomerAction::Open).unwrap();
        till.sandbox.customer(rid, CustomerAction::Approve).unwrap();
    })
    .await;
    let rid = request_id(&first);
    let v = till.sale(&sale).await;
    assert_eq!(v["state"], "open", "{v}");
    assert_eq!(v["payments"].as_array().map(Vec::len), Some(0), "{v}");

    let (status, again) = till.start_payment(&sale).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(
        request_id(&again),
        rid,
        "Klarna answered with the first request"
    );
    assert_eq!(again["id"], first["id"], "the draft's attempt, both times");
    till.wait_sale(&sale, "paid after the replay", |v| v["state"] == "paid")
        .await;
    assert_eq!(till.sandbox.requests().len(), 1, "one payment request");
    assert_eq!(till.sandbox.hits("authorize"), 2);
    assert_eq!(till.transactions_for(&sale), 1);
    assert_eq!(till.verify_journal().await.first_broken, None);
}

/// The same power cut, but the cashier then changes the sale instead of pressing Pay again: the
/// request that went out before the cut is not left for the customer to complete. The draft
/// that may have been sent becomes a payment owed a cancel, and the till cancels it at Klarna
/// (learning the request by replaying the draft's key); the sale's next payment is a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_start_lost_in_a_power_cut_is_canceled_at_klarna_when_the_sale_changes() {
    let (till, sale, first) = press_lost_in_a_power_cut(|till, rid| {
        till.sandbox.customer(rid, CustomerAction::Open).unwrap();
    })
    .await;
    let rid = request_id(&first);

    // The customer wants one more thing.
    let (status, v) = till
        .post(
            &format!("/v1/sales/{sale}/lines"),
            json!({"lines": [{"name": "Cap", "quantity": 1, "unit_price": 9900}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(last_payment(&v)["state"], "canceled", "{v}");
    assert!(
        last_payment(&v)["reason"]
            .as_str()
            .is_some_and(|r| r.contains("may have reached Klarna")),
        "{v}"
    );
    eventually("the first request to be canceled at Klarna", || {
        till.sandbox
            .request(&rid)
            .is_some_and(|r| r.state == "CANCELED")
    })
    .await;
    till.wait_sale(&sale, "the cancel confirmed", |v| {
        last_payment(v)["cancel_confirmed"] == true
    })
    .await;
    assert_eq!(
        till.sandbox.requests().len(),
        1,
        "learnt by replay, not made again"
    );

    // The next press is a new payment for the new total, and it completes.
    let (status, second) = till.start_payment(&sale).await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["id"], first["id"]);
    let rid2 = request_id(&second);
    assert_ne!(rid2, rid);
    till.sandbox
        .customer(&rid2, CustomerAction::Approve)
        .unwrap();
    till.wait_sale(&sale, "paid", |v| v["state"] == "paid")
        .await;
    assert_eq!(till.transactions_for(&sale), 1);
    let (_, health) = till.get("/health").await;
    assert_eq!(health["klarna"]["outbox"]["cancels_waiting"], 0, "{health}");
    assert_eq!(till.verify_journal().await.first_broken, None);
}

/// A till that stopped in order knows its drafts were never sent: changing the sale after the
/// restart makes no request at Klarna. After a stop that was not in order, the same change
/// retires the draft: the till replays it to learn whether Klarna made a request, and cancels
/// the one it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_stop_out_of_order_leaves_drafts_in_doubt() {
    let mut till = Till::start().await;
    let sale = till.open_sale().await;
    let add =
        |name: &'static str| json!({"lines": [{"name": name, "quantity": 1, "unit_price": 500}]});
    till.agent.take().expect("running").shutdown().await;
    till.restart().await;
    let (status, v) = till
        .post(&format!("/v1/sales/{sale}/lines"), add("Cap"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["payments"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(till.sandbox.hits("authorize"), 0);

    // Dropped, not stopped: as after a crash, the draft may have been sent.
    till.restart().await;
    let (status, v) = till
        .post(&format!("/v1/sales/{sale}/lines"), add("Scarf"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(last_payment(&v)["state"], "canceled", "{v}");
    till.wait_sale(&sale, "the retired draft's cancel confirmed", |v| {
        last_payment(v)["cancel_confirmed"] == true
    })
    .await;
    let requests = till.sandbox.requests();
    assert_eq!(requests.len(), 1, "made by the replay");
    assert_eq!(requests[0].state, "CANCELED");
    assert_eq!(till.transactions_for(&sale), 0);
}

/// The draft is what a press without options would send; a press with interoperability data
/// sends something else, so it gets fresh keys (committed durably before its request) and
/// leaves the draft's keys unused. A cancel prepares the next press again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_that_differs_from_the_draft_uses_fresh_keys() {
    let till = Till::start().await;
    let sale = till.open_sale().await;
    // Keys and bodies never leave the till's API: read them where they are kept.
    let db = || kassa_agent::store::Db::open(&till.cfg.database_path(), "reader").unwrap();
    let draft = |sale: &str| db().payment_draft(sale).unwrap();
    let attempt = |a: &serde_json::Value| db().attempt(a["id"].as_str().unwrap()).unwrap();
    let prepared = draft(&sale).expect("the open sale has a draft");
    let (status, a) = till
        .post(
            &format!("/v1/sales/{sale}/payments"),
            json!({"interoperability_data": {"loyalty": "gold"}}),
        )
        .await;
    assert_eq!(status, 201, "{a}");
    let a = attempt(&a);
    assert_ne!(a.authorize_key, prepared.authorize_key);
    assert_ne!(a.id, prepared.attempt_id);
    assert!(a.authorize_body.contains("loyalty"));
    assert_eq!(draft(&sale), None, "a payment in flight has no draft");

    let (status, v) = till
        .post(&format!("/v1/sales/{sale}/payments/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    let next = draft(&sale).expect("the cancel prepared the next press");
    let (status, b) = till.start_payment(&sale).await;
    assert_eq!(status, 201, "{b}");
    let b = attempt(&b);
    assert_ne!(next.authorize_key, a.authorize_key);
    assert!(next.matches(&b), "the press sent the draft");
    assert_eq!(till.sandbox.requests().len(), 2);
}
