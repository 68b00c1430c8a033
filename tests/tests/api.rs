//! The local control API refuses bad input with a clear JSON error naming the field, refuses
//! callers without the token, serves its OpenAPI document, and changes nothing when it refuses.

use kassa_tests::Till;
use serde_json::{Value, json};

async fn post_raw(till: &Till, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut r = till
        .http
        .post(till.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// One bad request: expected status, error code and (if any) the field it names.
async fn check(till: &Till, body: &str, status: u16, field: Option<&str>) {
    let (s, v) = post_raw(till, "/v1/sales", Some(&till.token), body).await;
    assert_eq!(s, status, "{body} → {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    if let Some(f) = field {
        assert_eq!(v["error"]["field"].as_str(), Some(f), "{body} → {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sales_are_refused_with_the_field_named_and_nothing_is_stored() {
    let till = Till::start().await;
    let line = |q: &str, p: &str| {
        format!(r#"{{"lines":[{{"name":"A","quantity":{q},"unit_price":{p}}}]}}"#)
    };
    check(&till, "{not json", 400, None).await;
    check(&till, r#"{"lines": "many"}"#, 400, Some("lines")).await;
    check(
        &till,
        &line("\"one\"", "100"),
        400,
        Some("lines[0].quantity"),
    )
    .await;
    check(&till, &line("1", "1.5"), 400, Some("lines[0].unit_price")).await;
    check(
        &till,
        &line("1", "99999999999999999999999"),
        400,
        Some("lines[0].unit_price"),
    )
    .await;
    check(&till, &line("1", "-100"), 400, None).await;
    check(&till, &line("0", "100"), 400, None).await;
    check(&till, &line("100000", "2147483647"), 400, None).await;
    check(
        &till,
        r#"{"currency":"XYZ","lines":[]}"#,
        400,
        Some("currency"),
    )
    .await;
    check(&till, r#"{"lines":[],"colour":"red"}"#, 400, None).await;
    check(
        &till,
        r#"{"lines":[{"name":"","quantity":1,"unit_price":1}]}"#,
        400,
        None,
    )
    .await;
    let rows = till
        .agent()
        .terminal
        .store()
        .call(|db| db.journal_rows(0, 10))
        .await
        .unwrap();
    assert!(
        rows.is_empty(),
        "refused requests left journal rows: {rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_the_right_token_are_refused() {
    let till = Till::start().await;
    let body = r#"{"lines":[]}"#;
    assert_eq!(post_raw(&till, "/v1/sales", None, body).await.0, 401);
    assert_eq!(
        post_raw(&till, "/v1/sales", Some("wrong"), body).await.0,
        401
    );
    assert_eq!(post_raw(&till, "/v1/sales", Some(""), body).await.0, 401);
    let r = till.http.get(till.url("/v1/sales/x")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        post_raw(&till, "/v1/sales", Some(&till.token), body)
            .await
            .0,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sales_wrong_media_types_and_conflicts_get_clear_errors() {
    let till = Till::start().await;
    let (s, v) = till.get("/v1/sales/does-not-exist").await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    let r = till
        .http
        .post(till.url("/v1/sales"))
        .bearer_auth(&till.token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // An empty sale cannot be paid.
    let (_, sale) = till.post("/v1/sales", json!({"lines": []})).await;
    let (s, v) = till.start_payment(sale["id"].as_str().unwrap()).await;
    assert_eq!(s, 400, "{v}");
    // A sale with a payment in progress cannot be changed or paid twice.
    let sale = till.open_sale().await;
    assert_eq!(till.start_payment(&sale).await.0, 201);
    assert_eq!(till.start_payment(&sale).await.0, 409);
    let (s, _) = till
        .post(
            &format!("/v1/sales/{sale}/lines"),
            json!({"lines": [{"name": "B", "quantity": 1, "unit_price": 5}]}),
        )
        .await;
    assert_eq!(s, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_health_metrics_and_events_are_served() {
    let till = Till::start().await;
    let doc: Value = till.openapi().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in ["/v1/sales", "/v1/sales/{id}/payments", "/v1/events"] {
        assert!(
            doc["paths"][p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
    let health: Value = till
        .http
        .get(till.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    // Server-sent events carry each change of a sale.
    let events = till
        .http
        .get(till.url("/v1/events"))
        .bearer_auth(&till.token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status().as_u16(), 200);
    let sale = till.open_sale().await;
    till.start_payment(&sale).await;
    let mut stream = events.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    use futures_util::StreamExt;
    while !seen.contains("awaiting_customer") {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("an event in time");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    assert!(seen.contains("event: sale"), "{seen}");

    let metrics = till
        .http
        .get(till.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("kassa_klarna_requests_total"), "{metrics}");
    assert!(
        metrics.contains(r#"slo_category="Payment Transaction General""#),
        "{metrics}"
    );
}
