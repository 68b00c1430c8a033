//! Klarna webhooks on the local API: only correctly signed events from known keys are accepted,
//! redeliveries are ignored, and a signed state change makes the till look at Klarna at once.

use std::time::Duration;

use kassa_tests::{CustomerAction, Till};
use serde_json::json;

const KEY_ID: &str = "key-1";
const SECRET: &str = "webhook-secret-for-tests";

async fn till_with_webhook_key() -> Till {
    Till::start_with(Default::default(), |c| {
        c.klarna
            .webhook_signing_keys
            .insert(KEY_ID.into(), SECRET.into());
        // Slow polling, so only the webhook can explain a fast reaction.
        c.payment.poll_interval_ms = 60_000;
    })
    .await
}

async fn deliver(till: &Till, key_id: &str, signature: &str, body: &str) -> u16 {
    till.http
        .post(till.url("/v1/klarna/webhooks"))
        .header("content-type", "application/json")
        .header("Klarna-Signature", signature)
        .header("Klarna-Signing-Key-Id", key_id)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn event(event_id: &str, request_id: &str) -> String {
    json!({"metadata": {"event_type": "payment.request.state-change.completed", "event_id": event_id,
        "event_version": "v2"}, "payload": {"payment_request_id": request_id, "state": "COMPLETED"}})
    .to_string()
}

/// Klarna's pages: a webhook whose signature does not verify is answered 400 Bad Request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_unknown_keys_are_rejected() {
    let till = till_with_webhook_key().await;
    let body = event("e-1", "krn:payment:eu1:request:x");
    let good = kassa_sim::sandbox::sign(SECRET, body.as_bytes());
    assert_eq!(
        deliver(
            &till,
            KEY_ID,
            &kassa_sim::sandbox::sign("wrong", body.as_bytes()),
            &body
        )
        .await,
        400
    );
    assert_eq!(deliver(&till, "key-unknown", &good, &body).await, 400);
    assert_eq!(
        deliver(&till, KEY_ID, &good, &body.replace("e-1", "e-2")).await,
        400
    );
    let missing = till
        .http
        .post(till.url("/v1/klarna/webhooks"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 400);
    assert_eq!(deliver(&till, KEY_ID, &good, &body).await, 200);
    // A redelivery of the same event is acknowledged and ignored.
    assert_eq!(deliver(&till, KEY_ID, &good, &body).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_from_the_sandbox_completes_the_payment_without_waiting_for_a_poll() {
    let till = till_with_webhook_key().await;
    till.sandbox
        .add_webhook(&till.url("/v1/klarna/webhooks"), KEY_ID, SECRET);
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    // Let the follower's first poll pass so that only the webhook can wake it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rid = attempt["klarna_request_id"].as_str().unwrap();
    till.sandbox.customer(rid, CustomerAction::Approve).unwrap();
    till.wait_sale(&sale, "paid via webhook", |v| v["state"] == "paid")
        .await;
    // The webhook carried the state and the session token: nothing was polled for them.
    assert_eq!(till.sandbox.hits("read_request"), 0);
    assert_eq!(till.sandbox.hits("final_authorize"), 1);
}
