//! Staff who sign in (issue 17): each cashier and manager with their own id and PIN. A till
//! that requires sign-in refuses a change by nobody; a signed-in request is journaled under its
//! staff member and cannot name anyone else; only a manager's account approves; wrong PINs lock
//! every door; sign-out and idle time end a session.

use std::time::Duration;

use kassa_tests::Till;
use serde_json::{Value, json};

async fn add(till: &Till, id: &str, role: kassa_agent::store::staff::Role, pin: &str) {
    till.add_staff(id, role, pin).await;
}

async fn as_staff(
    till: &Till,
    session: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    till.send_as(session, method, path, body).await
}

async fn sign_in(till: &Till, id: &str, pin: &str) -> (u16, Value) {
    till.sign_in(id, pin).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_done_by_someone_signed_in_and_journaled_under_their_name() {
    use kassa_agent::store::staff::Role;
    let till = Till::start_with(Default::default(), |c| {
        c.staff.require_sign_in = true;
        c.staff.idle_lock_secs = 10;
        c.sale.price_cut_without_manager_percent = 10;
    })
    .await;
    add(&till, "ann", Role::Cashier, "1111").await;
    add(&till, "maria", Role::Manager, "2468").await;

    // Nobody signed in: no sale.
    let (s, e) = till
        .post(
            "/v1/sales",
            json!({"lines": [{"name": "Tea", "quantity": 1, "unit_price": 4_000}]}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("sign_in_required")),
        "{e}"
    );

    let (s, e) = sign_in(&till, "ann", "1112").await;
    assert_eq!(s, 401, "{e}");
    let (s, v) = sign_in(&till, "ann", "1111").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["staff"]["role"], "cashier");
    let ann = v["session"].as_str().unwrap().to_string();
    assert!(!v.to_string().contains("1111"));

    let post = reqwest::Method::POST;
    // Ann cannot sell as someone else...
    let sale_body = json!({"lines": [{"name": "Tea", "quantity": 1, "unit_price": 4_000}]});
    let mut as_bob = sale_body.clone();
    as_bob["operator"] = json!("bob");
    let (s, e) = as_staff(&till, &ann, post.clone(), "/v1/sales", as_bob).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("not_signed_in_as")),
        "{e}"
    );
    // ...and what she does is hers.
    let (s, v) = as_staff(&till, &ann, post.clone(), "/v1/sales", sale_body).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["operator"], "ann");
    let sale = v["id"].as_str().unwrap().to_string();

    // A price cut beyond the limit: a cashier's PIN approves nothing, a manager's does.
    let cut = |name: &str, pin: &str| {
        json!({"unit_price": 2_000, "reason": "damaged",
               "manager": {"name": name, "pin": pin}})
    };
    let line = format!("/v1/sales/{sale}/lines/1");
    let (s, e) = as_staff(
        &till,
        &ann,
        reqwest::Method::PATCH,
        &line,
        cut("ann", "1111"),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    let (s, v) = as_staff(
        &till,
        &ann,
        reqwest::Method::PATCH,
        &line,
        cut("maria", "2468"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = as_staff(
        &till,
        &ann,
        post.clone(),
        &format!("/v1/sales/{sale}/tenders"),
        json!({"kind": "cash", "given": 2_000}),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    let id = sale.clone();
    let rows = till
        .agent()
        .terminal
        .store()
        .call(move |db| db.journal_for_sale(&id))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r.operator, "ann", "{r:?}");
    }
    let cut = rows.iter().find(|r| r.kind == "line_changed").unwrap();
    assert_eq!(cut.detail["manager"], "maria");

    // Signed out, the session is dead.
    let (s, v) = as_staff(&till, &ann, post.clone(), "/v1/staff/sign-out", json!({})).await;
    assert_eq!((s, v["signed_out"].as_bool()), (200, Some(true)), "{v}");
    let (s, e) = as_staff(&till, &ann, reqwest::Method::GET, "/v1/staff/me", json!({})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("signed_out")),
        "{e}"
    );

    // Idle for longer than the lock: signed out too (10 s here, the shortest a store may set).
    let (_, v) = sign_in(&till, "maria", "2468").await;
    let maria = v["session"].as_str().unwrap().to_string();
    let (s, v) = as_staff(
        &till,
        &maria,
        reqwest::Method::GET,
        "/v1/staff/me",
        json!({}),
    )
    .await;
    assert_eq!((s, v["id"].as_str()), (200, Some("maria")), "{v}");
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let (s, _) = as_staff(
        &till,
        &maria,
        reqwest::Method::GET,
        "/v1/staff/me",
        json!({}),
    )
    .await;
    assert_eq!(s, 401);

    // Sign-ins, refusals and sign-outs are journaled.
    let (s, log) = till.get("/v1/journal?limit=1000").await;
    assert_eq!(s, 200);
    let events: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "staff_session")
        .map(|r| {
            (
                r["operator"].as_str().unwrap().to_string(),
                r["detail"]["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("ann", "refused"),
        ("ann", "signed_in"),
        ("ann", "signed_out"),
        ("maria", "signed_in"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(events, want);
    assert_eq!(till.verify_journal().await.first_broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_lock_sign_in_and_the_store_pin_is_the_manager_account() {
    let till = Till::start().await;
    till.set_manager_pin("2468", "owner").await;
    // The store PIN signs in as the account `manager`.
    let (s, v) = sign_in(&till, "manager", "2468").await;
    assert_eq!(
        (s, v["staff"]["role"].as_str()),
        (201, Some("manager")),
        "{v}"
    );
    // Unknown ids and wrong PINs answer alike, and five in a row lock every door.
    for (id, pin) in [
        ("nobody", "1234"),
        ("manager", "0000"),
        ("manager", "1"),
        ("x y", "1234"),
        ("manager", "9999"),
    ] {
        let (s, e) = sign_in(&till, id, pin).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (401, Some("wrong_staff_pin")),
            "{e}"
        );
    }
    let (s, e) = sign_in(&till, "manager", "2468").await;
    assert_eq!(s, 429, "{e}");
    // Without a session and without the requirement, the till works as before.
    let sale = till.open_sale().await;
    assert_eq!(till.sale(&sale).await["operator"], "demo-cashier");
    // The accounts are listed without their hashes.
    let (s, list) = till.get("/v1/staff").await;
    assert_eq!(s, 200);
    assert!(!list.to_string().contains("argon2"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_signing_in_does_not_clear_wrong_guesses_at_a_managers_pin() {
    use kassa_agent::store::staff::Role;
    let till = Till::start().await;
    till.set_manager_pin("2468", "owner").await;
    add(&till, "ann", Role::Cashier, "1111").await;
    let sale = till.open_sale().await;
    let guess = |pin: &str| json!({"unit_price": 100, "reason": "guess", "manager": {"name": "boss", "pin": pin}});
    let line = format!("/v1/sales/{sale}/lines/1");
    for pin in ["0001", "0002", "0003", "0004"] {
        let (s, e) = till.patch(&line, guess(pin)).await;
        assert_eq!(s, 403, "{e}");
        // Her own right PIN between guesses must not start the count again.
        let (s, e) = sign_in(&till, "ann", "1111").await;
        assert_eq!(s, 201, "{e}");
    }
    let (s, e) = till.patch(&line, guess("0005")).await;
    assert_eq!(s, 403, "{e}");
    // Five wrong in a row: every door pauses, the right PIN too.
    let (s, e) = till.patch(&line, guess("2468")).await;
    assert_eq!(s, 429, "{e}");
}
