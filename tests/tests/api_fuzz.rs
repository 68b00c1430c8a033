//! Fuzzing the local API from its own OpenAPI document: every operation the document lists is
//! called with generated path ids, query strings and bodies (from the operation's schema: well
//! formed, wrong types, missing and unknown fields, out-of-range numbers, long and odd strings),
//! from a fixed seed so a failure replays. It fails on a 5xx, a hang, an answer whose status the
//! document does not list for the operation, or an error that is not the documented JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use kassa_tests::Till;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Calls per operation (about 40 operations: some 4,000 requests, seconds on loopback);
/// `KASSA_FUZZ_CASES` and `KASSA_FUZZ_SEED` explore further.
const CASES: usize = 100;

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            &doc["components"]["schemas"][name]
        }
        None => v,
    }
}

fn odd_string(rng: &mut StdRng) -> String {
    let pool = [
        "".to_string(),
        " ".to_string(),
        "x".repeat(rng.random_range(1..300)),
        "Ölburk ÅÄÖ ß €".to_string(),
        "=HYPERLINK(\"x\")".to_string(),
        "\u{0}\u{7}\n\t".to_string(),
        "krn:payment:eu1:transaction:00000000-0000-4000-8000-000000000000".to_string(),
        "SEK".to_string(),
        "../../etc/passwd".to_string(),
        "😀".repeat(rng.random_range(1..70)),
    ];
    pool[rng.random_range(0..pool.len())].clone()
}

fn odd_number(rng: &mut StdRng) -> Value {
    match rng.random_range(0..8) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(2_147_483_648i64),
        4 => json!(1.5),
        5 => json!(1e300),
        6 => json!(rng.random_range(1..1000)),
        _ => json!(rng.random_range(1..100_000)),
    }
}

/// A value for `schema`: mostly of its type and within its limits, sometimes not.
fn generate(doc: &Value, schema: &Value, rng: &mut StdRng, depth: u32) -> Value {
    let s = resolve(doc, schema);
    if depth > 4 {
        return Value::Null;
    }
    if rng.random_bool(0.08) {
        // The wrong type altogether.
        return [
            json!(null),
            json!(true),
            json!("text"),
            json!(7),
            json!([]),
            json!({}),
        ][rng.random_range(0..6)]
        .clone();
    }
    if let Some(all) = s
        .get("oneOf")
        .or(s.get("anyOf"))
        .or(s.get("allOf"))
        .and_then(Value::as_array)
        && !all.is_empty()
    {
        return generate(doc, &all[rng.random_range(0..all.len())], rng, depth + 1);
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array)
        && !values.is_empty()
        && rng.random_bool(0.8)
    {
        return values[rng.random_range(0..values.len())].clone();
    }
    let ty = match &s["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_string(),
        _ if s.get("properties").is_some() => "object".into(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "object" => {
            let mut o = serde_json::Map::new();
            let required: Vec<&str> = s["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (k, p) in s["properties"].as_object().into_iter().flatten() {
                let keep = if required.contains(&k.as_str()) {
                    rng.random_bool(0.95)
                } else {
                    rng.random_bool(0.6)
                };
                if keep {
                    o.insert(k.clone(), generate(doc, p, rng, depth + 1));
                }
            }
            if rng.random_bool(0.05) {
                o.insert("unexpected".into(), json!(1));
            }
            Value::Object(o)
        }
        "array" => {
            let n = match rng.random_range(0..10) {
                0 => 0,
                1 => rng.random_range(1..600),
                _ => rng.random_range(1..4),
            };
            (0..n)
                .map(|_| generate(doc, &s["items"], rng, depth + 1))
                .collect()
        }
        "integer" | "number" => {
            if rng.random_bool(0.6) {
                let lo = s["minimum"].as_i64().unwrap_or(0);
                let hi = s["maximum"].as_i64().unwrap_or(100_000).max(lo);
                json!(rng.random_range(lo..=hi.min(lo.saturating_add(100_000))))
            } else {
                odd_number(rng)
            }
        }
        "boolean" => json!(rng.random_bool(0.5)),
        _ => {
            if rng.random_bool(0.5) {
                json!(format!("v{}", rng.random_range(0..1000)))
            } else {
                json!(odd_string(rng))
            }
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_survives_generated_input() {
    let till = Till::start().await;
    till.set_manager_pin("2468", "mia").await;
    let doc: Value = till.openapi().await;
    // Real ids for the path templates, beside generated ones.
    let sale = till.open_sale().await;
    let (_, attempt) = till.start_payment(&sale).await;
    let tx = till
        .sandbox
        .seed_order(
            "SEK",
            "web-1",
            vec![json!({"name": "Coat", "quantity": 1, "unit_price": 5000, "total_amount": 5000})],
        )
        .payment_transaction_id;
    let real: BTreeMap<&str, Vec<String>> = [
        (
            "id",
            vec![
                sale.clone(),
                attempt["id"].as_str().unwrap().to_string(),
                tx.clone(),
                "1".into(),
            ],
        ),
        ("transaction_id", vec![tx.clone()]),
        ("close_no", vec!["1".into()]),
    ]
    .into();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap();
    let seed = std::env::var("KASSA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6b61_7373_6100u64);
    let cases = std::env::var("KASSA_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CASES);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut calls = 0;
    let mut failures = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            if path == "/v1/events" {
                // An endless event stream: its answer's head is checked once below.
                continue;
            }
            let documented: Vec<String> = op["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            for _ in 0..cases {
                let mut url = path.clone();
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let p = resolve(&doc, p);
                    if p["in"] != "path" {
                        continue;
                    }
                    let name = p["name"].as_str().unwrap();
                    let value = match real.get(name) {
                        Some(ids) if rng.random_bool(0.5) => {
                            ids[rng.random_range(0..ids.len())].clone()
                        }
                        _ => match generate(&doc, &p["schema"], &mut rng, 0) {
                            Value::String(s) => s,
                            v => v.to_string(),
                        },
                    };
                    url = url.replace(&format!("{{{name}}}"), &encode(&value));
                }
                let mut query = vec![];
                let mut pin = None;
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let p = resolve(&doc, p);
                    let name = p["name"].as_str().unwrap_or_default();
                    match p["in"].as_str() {
                        Some("query") if rng.random_bool(0.5) => {
                            let v = match generate(&doc, &p["schema"], &mut rng, 0) {
                                Value::String(s) => s,
                                v => v.to_string(),
                            };
                            query.push(format!("{}={}", encode(name), encode(&v)));
                        }
                        Some("header") if name.eq_ignore_ascii_case("Kassa-Manager-Pin") => {
                            pin = Some(if rng.random_bool(0.3) {
                                "2468".to_string()
                            } else {
                                odd_string(&mut rng)
                            });
                        }
                        _ => {}
                    }
                }
                if rng.random_bool(0.1) {
                    query.push("unknown=%FF%FE".into());
                }
                let full = if query.is_empty() {
                    url.clone()
                } else {
                    format!("{url}?{}", query.join("&"))
                };
                let mut req = client
                    .request(m.clone(), till.url(&full))
                    .bearer_auth(&till.token);
                if let Some(p) = &pin
                    && let Ok(v) = reqwest::header::HeaderValue::from_str(p)
                {
                    req = req.header("Kassa-Manager-Pin", v);
                }
                let body_schema =
                    op["requestBody"]["content"]["application/json"]["schema"].clone();
                if !body_schema.is_null() {
                    let body = match rng.random_range(0..12) {
                        0 => b"{\"a\":".to_vec(),
                        1 => b"[1,2,3]".to_vec(),
                        2 => format!("{}trailing", generate(&doc, &body_schema, &mut rng, 0))
                            .into_bytes(),
                        _ => generate(&doc, &body_schema, &mut rng, 0)
                            .to_string()
                            .into_bytes(),
                    };
                    req = req.header("content-type", "application/json").body(body);
                }
                calls += 1;
                let resp = match req.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("{method} {full}: no answer ({e})"));
                        continue;
                    }
                };
                let status = resp.status().as_u16();
                let ctype = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let text = resp.text().await.unwrap_or_default();
                if status >= 500 {
                    failures.push(format!("{method} {full}: {status} {text}"));
                }
                if !documented
                    .iter()
                    .any(|d| d == &status.to_string() || d == "default")
                {
                    failures.push(format!(
                        "{method} {full}: {status}, which the document does not list ({documented:?}): {text}"
                    ));
                }
                if status >= 400 {
                    let ok = ctype.starts_with("application/json")
                        && serde_json::from_str::<Value>(&text).is_ok_and(|v| {
                            v["error"]["code"].is_string() && v["error"]["message"].is_string()
                        });
                    if !ok {
                        failures.push(format!(
                            "{method} {full}: error not the documented JSON: {ctype} {text}"
                        ));
                    }
                }
            }
        }
    }
    // The event stream answers its head at once.
    let head = tokio::time::timeout(
        Duration::from_secs(10),
        till.http
            .get(till.url("/v1/events"))
            .bearer_auth(&till.token)
            .send(),
    )
    .await
    .expect("the event stream answers")
    .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert!(calls > 500, "only {calls} calls");
    // The journal survived it all.
    assert!(till.verify_journal().await.first_broken.is_none());
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {calls} calls failed:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
