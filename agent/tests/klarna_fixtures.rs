//! Klarna's documented sample answers and webhooks (tests/fixtures/klarna/, each naming its page)
//! read by kassa's client into the outcome a cashier would expect, through one `check` helper.
//! The sandbox's own answers are checked against the same files in tests/tests/klarna_shapes.rs,
//! so the sandbox and the client can never again agree on a shape Klarna does not send.

use std::path::PathBuf;

use kassa_agent::api::webhook;
use kassa_agent::klarna::answer::{self, AuthorizeOutcome, RequestState};
use kassa_agent::klarna::{KlarnaError, classify, wire};
use serde_json::Value;

struct Fixture {
    name: String,
    kind: String,
    expect: String,
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

fn fixtures() -> Vec<Fixture> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/klarna");
    let mut out = vec![];
    for entry in std::fs::read_dir(&dir).expect("fixtures folder") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let source = v["source"].as_str().unwrap_or_default();
        assert!(
            source.starts_with("https://docs.klarna.com/"),
            "{} must name the docs.klarna.com page it comes from",
            path.display()
        );
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, val) in v["headers"].as_object().into_iter().flatten() {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_str(val.as_str().unwrap()).unwrap(),
            );
        }
        out.push(Fixture {
            name: path.file_name().unwrap().to_string_lossy().into(),
            kind: v["kind"].as_str().unwrap().into(),
            expect: v["expect"].as_str().unwrap().into(),
            status: v["status"].as_u64().unwrap() as u16,
            headers,
            body: v["body"].clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// The one helper: what the client makes of a fixture, against what the cashier should see.
fn check(f: &Fixture) -> Result<(), String> {
    let b = &f.body;
    match (f.kind.as_str(), f.expect.as_str()) {
        ("authorize", expect) => {
            let got = answer::authorize_outcome(&bytes(b));
            let ok = match (expect, &got) {
                ("step_up", AuthorizeOutcome::StepUp(s)) => {
                    s.request_id.as_deref() == b["payment_request"]["payment_request_id"].as_str()
                        && s.url.as_deref().is_some_and(|u| u.starts_with("https://"))
                }
                ("approved", AuthorizeOutcome::Approved { transaction_id }) => Some(
                    transaction_id.as_str(),
                ) == b
                    .pointer(
                        "/payment_transaction_response/payment_transaction/payment_transaction_id",
                    )
                    .and_then(Value::as_str),
                ("declined", AuthorizeOutcome::Declined { .. }) => true,
                _ => false,
            };
            ok.then_some(()).ok_or(format!("read as {got:?}"))
        }
        ("payment_request" | "cancel", expect) => {
            let r = answer::request_read(&bytes(b))?;
            let want = match expect {
                "request_submitted" => RequestState::Submitted,
                "request_in_progress" => RequestState::InProgress,
                "request_completed" => RequestState::Completed,
                "request_declined" => RequestState::Declined,
                "request_expired" => RequestState::Expired,
                "request_canceled" => RequestState::Canceled,
                other => return Err(format!("unknown expectation {other}")),
            };
            if r.state != want {
                return Err(format!("state {:?}, want {want:?}", r.state));
            }
            if want == RequestState::Completed {
                // The newer name first, where both are sent.
                let token = b["state_context"]["klarna_network_session_token"]
                    .as_str()
                    .or(b["state_context"]["payment_token"].as_str());
                if r.session_token.as_deref() != token || token.is_none() {
                    return Err("the session token was not read from state_context".into());
                }
            }
            if r.request_id.as_deref() != b["payment_request_id"].as_str() {
                return Err("the request id was not read".into());
            }
            Ok(())
        }
        ("transaction", "transaction") => {
            let t: wire::PaymentTransaction =
                serde_json::from_value(b.clone()).map_err(|e| e.to_string())?;
            if t.payment_transaction_id.is_empty() || t.amount <= 0 || t.lines().is_empty() {
                return Err(format!("incomplete read: {t:?}"));
            }
            Ok(())
        }
        ("capture" | "refund", _) => {
            if (200..300).contains(&f.status) && b.is_object() {
                Ok(())
            } else {
                Err("not a 2xx JSON object".into())
            }
        }
        ("error", expect) => {
            let e = classify(f.status, &f.headers, &bytes(b));
            let ok = match (expect, &e) {
                ("error_final", KlarnaError::Final { code, message, .. }) => {
                    Some(code.as_str()) == b["error_code"].as_str() && message != "no message"
                }
                ("error_auth", KlarnaError::Auth { .. }) => true,
                ("error_throttled", KlarnaError::Throttled { .. }) => true,
                ("error_unknown", KlarnaError::UnknownOutcome(_)) => true,
                _ => false,
            };
            ok.then_some(()).ok_or(format!("classified as {e:?}"))
        }
        ("webhook", _) => {
            let raw = bytes(b);
            let keys = [("k1".to_string(), "signing-key".to_string())].into();
            webhook::verify_signature(&keys, "k1", &webhook::sign("signing-key", &raw), &raw)
                .map_err(|e| e.to_string())?;
            let env: webhook::Envelope =
                serde_json::from_slice(&raw).map_err(|e| format!("envelope: {e}"))?;
            let Some(suffix) = env
                .metadata
                .event_type
                .strip_prefix("payment.request.state-change.")
            else {
                return Ok(());
            };
            let r = answer::request_from(&env.payload, answer::paths::WEBHOOK_SESSION_TOKEN)?;
            let want = RequestState::parse(&suffix.replace('-', "_").to_uppercase());
            if r.state != want {
                return Err(format!("state {:?} for event {suffix}", r.state));
            }
            if want == RequestState::Completed && r.session_token.is_none() {
                return Err("completed webhook without its session token".into());
            }
            Ok(())
        }
        (kind, expect) => Err(format!("no check for kind {kind} / expect {expect}")),
    }
}

#[test]
fn every_documented_sample_reads_as_the_cashier_expects() {
    let all = fixtures();
    assert!(all.len() >= 25, "fixtures missing: {}", all.len());
    let failures: Vec<String> = all
        .iter()
        .filter_map(|f| check(f).err().map(|e| format!("{}: {e}", f.name)))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_kind_of_answer_the_till_meets_has_a_documented_sample() {
    let all = fixtures();
    for expect in [
        "step_up",
        "approved",
        "declined",
        "request_submitted",
        "request_in_progress",
        "request_completed",
        "request_declined",
        "request_expired",
        "request_canceled",
        "transaction",
        "capture",
        "refund",
        "error_final",
        "error_throttled",
        "error_auth",
        "webhook",
    ] {
        assert!(
            all.iter().any(|f| f.expect == expect),
            "no fixture for {expect}"
        );
    }
    // Both generations of error bodies and of the session token's name.
    assert!(
        all.iter()
            .any(|f| f.body.get("validation_errors").is_some())
    );
    assert!(all.iter().any(|f| f.body.get("errors").is_some()));
    assert!(
        all.iter()
            .any(|f| f.body["state_context"]["payment_token"].is_string()
                && f.body["state_context"]["klarna_network_session_token"].is_null())
    );
}

/// Mutations of every documented authorize answer (fields moved, removed, renamed, bodies cut
/// short): an answer that might mean "approved" is never read as a decline; only an explicit
/// DECLINED is one.
#[test]
fn no_mutation_of_a_documented_approval_reads_as_a_decline() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let approvals: Vec<Value> = fixtures()
        .into_iter()
        .filter(|f| f.kind == "authorize" && f.expect == "approved")
        .map(|f| f.body)
        .collect();
    assert!(!approvals.is_empty());
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        ..Config::default()
    });
    let strategy = (0..approvals.len(), mutation(), any::<prop::sample::Index>());
    runner
        .run(&strategy, |(i, m, at)| {
            let body = apply(&approvals[i], &m, at);
            let got = answer::authorize_outcome(&body);
            prop_assert!(
                !matches!(got, AuthorizeOutcome::Declined { .. }),
                "{m:?} read as a decline: {}",
                String::from_utf8_lossy(&body)
            );
            if let AuthorizeOutcome::Approved { transaction_id } = &got {
                prop_assert!(
                    transaction_id.starts_with("krn:payment:"),
                    "{transaction_id}"
                );
            }
            Ok(())
        })
        .unwrap();
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Rename(String),
    MoveToTop,
    Retype,
    Truncate,
}

fn mutation() -> impl proptest::strategy::Strategy<Value = Mutation> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Mutation::Remove),
        "[a-z_]{1,12}".prop_map(Mutation::Rename),
        Just(Mutation::MoveToTop),
        Just(Mutation::Retype),
        Just(Mutation::Truncate),
    ]
}

/// Every (object, key) path in `v`.
fn paths(v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    if let Value::Object(o) = v {
        for (k, child) in o {
            out.push((prefix.to_string(), k.clone()));
            paths(child, &format!("{prefix}/{k}"), out);
        }
    }
}

fn apply(v: &Value, m: &Mutation, at: proptest::sample::Index) -> Vec<u8> {
    let text = v.to_string();
    if let Mutation::Truncate = m {
        return text.as_bytes()[..at.index(text.len())].to_vec();
    }
    let mut all = vec![];
    paths(v, "", &mut all);
    let (parent, key) = all[at.index(all.len())].clone();
    let mut out = v.clone();
    let obj = out
        .pointer_mut(&parent)
        .and_then(Value::as_object_mut)
        .expect("parent object");
    let taken = obj.remove(&key).expect("key");
    match m {
        Mutation::Remove | Mutation::Truncate => {}
        Mutation::Rename(new) => {
            obj.insert(new.clone(), taken);
        }
        Mutation::MoveToTop => {
            out.as_object_mut().unwrap().insert(key, taken);
        }
        Mutation::Retype => {
            obj.insert(key, Value::from(42));
        }
    }
    out.to_string().into_bytes()
}
