//! The sandbox answers in Klarna's documented shapes: every answer it gives along a payment's
//! life is compared, field path by field path, with the documented samples in
//! tests/fixtures/klarna/ (each naming its page). The sandbox may leave a documented field out,
//! but never puts a field where no documented sample has one, and always carries the fields the
//! client reads where the documentation puts them. This is what stops the sandbox and the client
//! from agreeing on a shape Klarna does not send (issue 15).

use std::collections::BTreeSet;
use std::path::PathBuf;

use kassa_sim::sandbox::{CustomerAction, Fault, Sandbox};
use serde_json::{Value, json};

/// Every field path of `v` (`/a/b`, arrays as `[]`); `open` collects the paths of empty arrays,
/// under which a fixture allows anything (the page showed none of their items).
fn field_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>, open: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, c) in o {
                let p = format!("{prefix}/{k}");
                out.insert(p.clone());
                field_paths(c, &p, out, open);
            }
        }
        Value::Array(a) if a.is_empty() => {
            open.insert(format!("{prefix}[]"));
        }
        Value::Array(a) => {
            for c in a {
                field_paths(c, &format!("{prefix}[]"), out, open);
            }
        }
        _ => {}
    }
}

/// The documented samples whose `expect` is `expect` (or starts with it, for `prefix*`).
fn documented(expect: &str) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/klarna");
    let mut out = vec![];
    for e in std::fs::read_dir(&dir).expect("fixtures") {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let e = v["expect"].as_str().unwrap_or_default();
        let hit = match expect.strip_suffix('*') {
            Some(prefix) => e.starts_with(prefix),
            None => e == expect,
        };
        if hit {
            out.push(v["body"].clone());
        }
    }
    assert!(!out.is_empty(), "no documented sample for {expect}");
    out
}

/// The one check: the sandbox's `answer` has only fields some documented `expect` sample has,
/// and has each of `reads` (the paths kassa's client reads first).
fn check(expect: &str, answer: &Value, reads: &[&str]) {
    let (mut allowed, mut open) = (BTreeSet::new(), BTreeSet::new());
    for d in documented(expect) {
        field_paths(&d, "", &mut allowed, &mut open);
    }
    let (mut got, mut _unused) = (BTreeSet::new(), BTreeSet::new());
    field_paths(answer, "", &mut got, &mut _unused);
    let undocumented: Vec<&String> = got
        .iter()
        .filter(|p| !allowed.contains(*p) && !open.iter().any(|o| p.starts_with(o.as_str())))
        .collect();
    assert!(
        undocumented.is_empty(),
        "the sandbox's {expect} answer has fields no documented sample has: {undocumented:?}\n{answer:#}"
    );
    for r in reads {
        assert!(
            answer.pointer(r).is_some_and(|v| !v.is_null()),
            "the sandbox's {expect} answer lacks {r}, where Klarna documents it:\n{answer:#}"
        );
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("Authorization", format!("Basic {}", self.key));
        if method == reqwest::Method::POST {
            r = r.header("Klarna-Idempotency-Key", uuid::Uuid::new_v4().to_string());
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }
}

/// A first authorization (with step-up) of `amount`: its answer and its payment request's id.
async fn step_up(c: &Client, amount: i64, capture: &str) -> (Value, String) {
    let (s, a) = c
        .call(
            reqwest::Method::POST,
            "/payment/authorize",
            Some(&purchase(amount, capture, true)),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{a}");
    let rid = a["payment_request"]["payment_request_id"]
        .as_str()
        .expect("the payment request's id")
        .to_string();
    (a, rid)
}

/// The customer approves request `rid`; the final authorization's answer and its transaction id.
async fn finalize(
    c: &Client,
    sb: &Sandbox,
    rid: &str,
    amount: i64,
    capture: &str,
) -> (Value, String) {
    sb.customer(rid, CustomerAction::Approve).unwrap();
    let (_, r) = c
        .call(
            reqwest::Method::GET,
            &format!("/payment/requests/{rid}"),
            None,
            &[],
        )
        .await;
    let token = r["state_context"]["klarna_network_session_token"]
        .as_str()
        .expect("the session token inside state_context")
        .to_string();
    let (s, f) = c
        .call(
            reqwest::Method::POST,
            "/payment/authorize",
            Some(&purchase(amount, capture, false)),
            &[("Klarna-Network-Session-Token", &token)],
        )
        .await;
    assert_eq!(s, 200, "{f}");
    let tx = f["payment_transaction_response"]["payment_transaction"]["payment_transaction_id"]
        .as_str()
        .expect("the transaction inside payment_transaction_response")
        .to_string();
    (f, tx)
}

fn purchase(amount: i64, capture: &str, step_up: bool) -> Value {
    let mut b = json!({
        "currency": "SEK",
        "request_payment_transaction": {"amount": amount, "payment_transaction_reference": "sale-1", "capture": capture},
        "supplementary_purchase_data": {"purchase_reference": "receipt-1",
            "line_items": [{"name": "T-shirt", "quantity": 1, "unit_price": amount, "total_amount": amount, "reference": "SKU-1"}]},
        "point_of_checkout": {"store_reference": "store-1"},
        "point_of_transaction": {"type": "TERMINAL", "terminal_reference": "till-1"},
    });
    if step_up {
        b["step_up_config"] = json!({"payment_request_reference": "attempt-1",
            "customer_interaction_config": {"method": "HANDOVER", "return_url": "https://example.com/done"}});
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_answers_every_call_of_a_payment_in_documented_shapes() {
    use reqwest::Method as M;
    let sb = Sandbox::start(Default::default()).await.unwrap();
    let c = Client {
        http: reqwest::Client::new(),
        base: format!("{}/v2/accounts/{}", sb.base_url(), sb.account_id()),
        key: sb.api_key(),
    };

    // First authorization: a step-up with its payment request.
    let (s, a) = c
        .call(
            M::POST,
            "/payment/authorize",
            Some(&purchase(11800, "NOW", true)),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{a}");
    check(
        "step_up",
        &a,
        &[
            "/payment_transaction_response/result",
            "/payment_request/payment_request_id",
            "/payment_request/state_context/customer_interaction/payment_request_url",
        ],
    );
    let rid = a["payment_request"]["payment_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/payment/requests/{rid}");

    // The request read in each state the customer moves it through.
    let (_, r) = c.call(M::GET, &path, None, &[]).await;
    // A request's fields are checked against its documented samples in every state.
    check("request_*", &r, &["/state", "/payment_request_id"]);
    sb.customer(&rid, CustomerAction::Open).unwrap();
    let (_, r) = c.call(M::GET, &path, None, &[]).await;
    check("request_*", &r, &["/state"]);
    assert_eq!(r["state"], "IN_PROGRESS");
    let (f, tx) = finalize(&c, &sb, &rid, 11800, "NOW").await;
    let (_, r) = c.call(M::GET, &path, None, &[]).await;
    assert_eq!(r["state"], "COMPLETED");
    check(
        "request_*",
        &r,
        &["/state", "/state_context/klarna_network_session_token"],
    );
    // Final authorization: the transaction inside payment_transaction_response.
    check(
        "approved",
        &f,
        &["/payment_transaction_response/payment_transaction/payment_transaction_id"],
    );
    let (_, t) = c
        .call(M::GET, &format!("/payment/transactions/{tx}"), None, &[])
        .await;
    check(
        "transaction",
        &t,
        &["/payment_transaction_id", "/amount", "/currency"],
    );
    let (s, rf) = c
        .call(
            M::POST,
            &format!("/payment/transactions/{tx}/refunds"),
            Some(&json!({"amount": 11800, "payment_refund_reference": "r-1",
                "line_items": [{"name": "T-shirt", "quantity": 1, "unit_price": 11800, "total_amount": 11800}]})),
            &[],
        )
        .await;
    assert!((200..300).contains(&s), "{rf}");
    check("refund", &rf, &["/payment_refund_id"]);

    // Capture later: a second payment authorized with capture LATER, then captured.
    let (_, rid2) = step_up(&c, 500, "LATER").await;
    let (_, tx2) = finalize(&c, &sb, &rid2, 500, "LATER").await;
    let (s, cp) = c
        .call(
            M::POST,
            &format!("/payment/transactions/{tx2}/captures"),
            Some(&json!({"amount": 500, "payment_capture_reference": "c-1",
                "line_items": [{"name": "T-shirt", "quantity": 1, "unit_price": 500, "total_amount": 500}]})),
            &[],
        )
        .await;
    assert!((200..300).contains(&s), "{cp}");
    check("capture", &cp, &["/payment_capture_id"]);

    // A request the cashier cancels, one the customer declines, one that expires.
    for (action, expect) in [
        (None, "request_canceled"),
        (Some(CustomerAction::Decline), "request_declined"),
        (Some(CustomerAction::Abandon), "request_expired"),
    ] {
        let (_, id) = step_up(&c, 700, "NOW").await;
        let p = format!("/payment/requests/{id}");
        let r = match action {
            None => c.call(M::DELETE, &p, None, &[]).await.1,
            Some(act) => {
                sb.customer(&id, act).unwrap();
                c.call(M::GET, &p, None, &[]).await.1
            }
        };
        check("request_*", &r, &["/state", "/payment_request_id"]);
        assert_eq!(
            r["state"],
            expect.trim_start_matches("request_").to_uppercase()
        );
    }

    // Errors: a refused request, an unknown resource, a declined authorization, a throttle.
    let mut bad = purchase(11800, "NOW", true);
    bad["supplementary_purchase_data"]["line_items"][0]["quantity"] = json!(0);
    let (s, e) = c.call(M::POST, "/payment/authorize", Some(&bad), &[]).await;
    assert_eq!(s, 400, "{e}");
    check("error_*", &e, &["/error_code"]);
    let (s, e) = c
        .call(
            M::GET,
            "/payment/requests/krn:payment:eu1:request:nope",
            None,
            &[],
        )
        .await;
    assert_eq!(s, 404, "{e}");
    check("error_*", &e, &["/error_code"]);
    sb.fault(Some("authorize"), Fault::Declined, Some(1));
    let (_, d) = c
        .call(
            M::POST,
            "/payment/authorize",
            Some(&purchase(900, "NOW", true)),
            &[],
        )
        .await;
    check("declined", &d, &["/payment_transaction_response/result"]);
    sb.fault(
        Some("authorize"),
        Fault::RateLimited {
            retry_after_secs: 1.0,
        },
        Some(1),
    );
    let (s, e) = c
        .call(
            M::POST,
            "/payment/authorize",
            Some(&purchase(900, "NOW", true)),
            &[],
        )
        .await;
    assert_eq!(s, 429, "{e}");
    check("error_*", &e, &["/error_code"]);
}
