//! Editing a sale as a cashier does (issue 17): a wrong item taken off, a quantity changed, a
//! product scanned twice shown as "2 ×", a price cut with its reason and, beyond the store's
//! limit, a manager's approval. Each edit is journaled with who, before and after; the Klarna
//! payment is for the edited total; nothing changes while a payment is in flight.

use kassa_tests::{Till, last_payment};
use serde_json::{Value, json};

/// A sale of a T-shirt (118.00, line 1) and two pairs of socks (2 × 49.50, line 2).
async fn sale(till: &Till) -> String {
    till.open_sale().await
}

async fn journal(till: &Till, sale: &str) -> Vec<kassa_agent::store::JournalRow> {
    let id = sale.to_string();
    till.agent()
        .terminal
        .store()
        .call(move |db| db.journal_for_sale(&id))
        .await
        .expect("journal")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_item_comes_off_and_a_quantity_changes_and_klarna_is_asked_for_the_new_total() {
    let till = Till::start().await;
    let sale = sale(&till).await;
    let (s, v) = till
        .post(
            &format!("/v1/sales/{sale}/lines/1/remove"),
            json!({"operator": "ann"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total"], 9_900, "{v}");
    assert_eq!(v["lines"].as_array().unwrap().len(), 1, "{v}");
    let (s, v) = till
        .patch(
            &format!("/v1/sales/{sale}/lines/2"),
            json!({"quantity": 3, "operator": "ann"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["lines"][0]["quantity"], 3, "{v}");
    assert_eq!(v["total"], 14_850, "{v}");

    // A line added after the removal gets a number never used in this sale: an edit that names
    // line 1 can never reach another product.
    let (s, v) = till
        .post(
            &format!("/v1/sales/{sale}/lines"),
            json!({"lines": [{"name": "Cap", "quantity": 1, "unit_price": 500}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["lines"][1]["line_no"], 3, "{v}");
    let (s, v) = till
        .post(&format!("/v1/sales/{sale}/lines/3/remove"), json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, e) = till
        .post(&format!("/v1/sales/{sale}/lines/1/remove"), json!({}))
        .await;
    assert_eq!(s, 404, "{e}");

    let rows = journal(&till, &sale).await;
    let removed = rows
        .iter()
        .find(|r| r.kind == "line_removed")
        .expect("removal journaled");
    assert_eq!(removed.operator, "ann");
    assert_eq!(removed.detail["before"]["total_amount"], 11_800);
    assert_eq!(removed.detail["after"], Value::Null);
    let changed = rows
        .iter()
        .find(|r| r.kind == "line_changed")
        .expect("change journaled");
    assert_eq!(changed.detail["before"]["quantity"], 2);
    assert_eq!(changed.detail["after"]["quantity"], 3);
    assert_eq!(changed.amount, Some(14_850));
    assert_eq!(till.verify_journal().await.first_broken, None);

    // The payment is for what the sale now holds.
    let (s, attempt) = till.start_payment(&sale).await;
    assert_eq!(s, 201, "{attempt}");
    let requests = till.sandbox.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].amount, 14_850);

    // While it is in flight the sale cannot change, and nothing does.
    let (s, e) = till
        .patch(&format!("/v1/sales/{sale}/lines/2"), json!({"quantity": 1}))
        .await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = till
        .post(&format!("/v1/sales/{sale}/lines/2/remove"), json!({}))
        .await;
    assert_eq!(s, 409, "{e}");
    let v = till.sale(&sale).await;
    assert_eq!(v["total"], 14_850, "{v}");
    assert_eq!(last_payment(&v)["amount"], 14_850, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_cut_needs_a_reason_and_beyond_the_limit_a_manager() {
    let till = Till::start_with(Default::default(), |c| {
        c.sale.price_cut_without_manager_percent = 10;
    })
    .await;
    till.set_manager_pin("4321", "owner").await;
    let sale = sale(&till).await;
    let line1 = format!("/v1/sales/{sale}/lines/1");

    // No reason: refused, with the field named.
    let (s, e) = till.patch(&line1, json!({"unit_price": 11_000})).await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("reason")),
        "{e}"
    );
    // Within the limit (118.00 to 110.00 is under 10 %): the cashier alone.
    let (s, v) = till
        .patch(
            &line1,
            json!({"unit_price": 11_000, "reason": "small stain", "operator": "ann"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total"], 11_000 + 9_900, "{v}");
    // Beyond it: a manager, whose wrong PIN changes nothing.
    let half = json!({"unit_price": 5_900, "reason": "display model", "operator": "ann"});
    let (s, e) = till.patch(&line1, half.clone()).await;
    assert_eq!(s, 403, "{e}");
    let mut wrong = half.clone();
    wrong["manager"] = json!({"name": "maria", "pin": "0000"});
    let (s, e) = till.patch(&line1, wrong).await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(till.sale(&sale).await["total"], 11_000 + 9_900);
    let mut approved = half;
    approved["manager"] = json!({"name": "maria", "pin": "4321"});
    let (s, v) = till.patch(&line1, approved).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total"], 5_900 + 9_900, "{v}");

    let rows = journal(&till, &sale).await;
    let cut = rows
        .iter()
        .rfind(|r| r.kind == "line_changed")
        .expect("the cut is journaled");
    assert_eq!(cut.operator, "ann");
    assert_eq!(cut.detail["reason"], "display model");
    assert_eq!(cut.detail["manager"], "maria");
    assert_eq!(cut.detail["before"]["unit_price"], 11_000);
    assert_eq!(cut.detail["after"]["unit_price"], 5_900);
    // The PIN itself is nowhere in the journal.
    assert!(rows.iter().all(|r| !r.detail.to_string().contains("4321")));

    // Cuts are measured from the price the line was added at: a second small cut that takes it
    // past the limit needs a manager too, so a price cannot be walked down step by step.
    let line2 = format!("/v1/sales/{sale}/lines/2");
    let (s, v) = till
        .patch(
            &line2,
            json!({"unit_price": 4_500, "reason": "one pair faded"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, e) = till
        .patch(
            &line2,
            json!({"unit_price": 4_400, "reason": "and a bit more"}),
        )
        .await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(till.sale(&sale).await["lines"][1]["unit_price"], 4_500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_added_again_is_one_line_with_its_quantity_unless_the_store_says_otherwise() {
    let socks = json!({"lines": [{"name": "Socks", "reference": "SKU-7", "quantity": 1, "unit_price": 4950}]});
    for merge in [true, false] {
        let till = Till::start_with(Default::default(), |c| c.sale.merge_repeated = merge).await;
        let sale = sale(&till).await;
        let (s, v) = till
            .post(&format!("/v1/sales/{sale}/lines"), socks.clone())
            .await;
        assert_eq!(s, 200, "{v}");
        let lines = v["lines"].as_array().unwrap();
        assert_eq!(v["total"], 11_800 + 3 * 4_950, "{v}");
        if merge {
            assert_eq!(lines.len(), 2, "{v}");
            assert_eq!(lines[1]["quantity"], 3, "{v}");
        } else {
            assert_eq!(lines.len(), 3, "{v}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_the_till_cannot_place_is_refused_and_changes_nothing() {
    let till = Till::start().await;
    let sale = sale(&till).await;
    let line = |n: i64| format!("/v1/sales/{sale}/lines/{n}");
    let refused = [
        (line(9), json!({"quantity": 2}), 404),
        (line(1), json!({"quantity": 0}), 400),
        (line(1), json!({"quantity": 100_001}), 400),
        (line(1), json!({}), 400),
        (
            line(1),
            json!({"quantity": 2, "unit_price": 100, "reason": "x"}),
            400,
        ),
        (line(1), json!({"quantity": 2, "reason": "x"}), 400),
        (line(1), json!({"unit_price": -1, "reason": "x"}), 400),
        (
            line(1),
            json!({"unit_price": 100, "reason": "tab\there"}),
            400,
        ),
        (line(1), json!({"quantity": 2, "colour": "red"}), 400),
        (
            "/v1/sales/nope/lines/1".to_string(),
            json!({"quantity": 2}),
            404,
        ),
    ];
    for (path, body, status) in refused {
        let (s, e) = till.patch(&path, body.clone()).await;
        assert_eq!(s, status, "{path} {body}: {e}");
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    let (s, e) = till
        .post(&format!("/v1/sales/{sale}/lines/7/remove"), json!({}))
        .await;
    assert_eq!(s, 404, "{e}");
    let v = till.sale(&sale).await;
    assert_eq!(v["total"], 11_800 + 9_900, "{v}");
    let kinds = till.journal_kinds(&sale).await;
    assert!(
        !kinds
            .iter()
            .any(|k| k == "line_changed" || k == "line_removed"),
        "{kinds:?}"
    );

    // An abandoned sale is closed to edits.
    till.agent()
        .terminal
        .abandon_sale(&sale, None)
        .await
        .expect("abandoned");
    let (s, e) = till.patch(&line(1), json!({"quantity": 2})).await;
    assert_eq!(s, 409, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discount_on_the_whole_sale_lowers_every_line_with_its_reason() {
    let till = Till::start_with(Default::default(), |c| {
        c.sale.price_cut_without_manager_percent = 10;
    })
    .await;
    till.set_manager_pin("4321", "owner").await;
    let sale = sale(&till).await;
    let path = format!("/v1/sales/{sale}/discount");
    // No reason, or an impossible percentage: refused, nothing changes.
    for bad in [
        json!({"percent": 10, "reason": " "}),
        json!({"percent": 0, "reason": "x"}),
        json!({"percent": 101, "reason": "x"}),
        // 100 % would leave a sale nothing can pay.
        json!({"percent": 100, "reason": "free"}),
    ] {
        let (s, e) = till.post(&path, bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
    // 10 %: within the store's limit, the cashier alone. 118.00 → 106.20, 49.50 → 44.55.
    // The client says which total it saw: the same request again takes nothing more.
    let once = json!({"percent": 10, "reason": "loyal customer", "operator": "ann",
                      "expected_total": 21_700});
    let (s, v) = till.post(&path, once.clone()).await;
    assert_eq!(s, 200, "{v}");
    let (s, e) = till.post(&path, once).await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(v["lines"][0]["unit_price"], 10_620, "{v}");
    assert_eq!(v["lines"][1]["unit_price"], 4_455, "{v}");
    assert_eq!(v["total"], 10_620 + 2 * 4_455, "{v}");
    // Another 10 % is measured from the list price: 19 % off needs a manager.
    let (s, e) = till
        .post(&path, json!({"percent": 10, "reason": "and more"}))
        .await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(till.sale(&sale).await["total"], 10_620 + 2 * 4_455);
    let (s, v) = till
        .post(
            &path,
            json!({"percent": 10, "reason": "damaged box",
                   "manager": {"name": "maria", "pin": "4321"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["lines"][0]["unit_price"], 9_558, "{v}");

    let rows = journal(&till, &sale).await;
    let cuts: Vec<_> = rows.iter().filter(|r| r.kind == "line_changed").collect();
    assert_eq!(cuts.len(), 4, "one price change per line per discount");
    assert_eq!(cuts[0].operator, "ann");
    assert_eq!(
        cuts[0].detail["reason"],
        "10 % off the sale: loyal customer"
    );
    assert_eq!(cuts[3].detail["manager"], "maria");
    // Klarna is asked for what the lines now say.
    let (s, _) = till.start_payment(&sale).await;
    assert_eq!(s, 201);
    let total = till.sale(&sale).await["total"].as_i64().unwrap();
    assert_eq!(till.sandbox.requests()[0].amount, total);
}
