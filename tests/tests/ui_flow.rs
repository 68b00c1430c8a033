//! The cashier's screens driven end to end: Slint's testing backend (no display) runs the real
//! windows and adapter against a till and its Klarna sandbox. The cashier taps by accessible
//! label; the sandbox plays the customer; the screen must follow the agent, including the status
//! bar's live view of Klarna and the outbox, and the manager area: its PIN (checked against the
//! store's hash), the filtered transaction log and the X/Z reports.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use i_slint_backend_testing::ElementHandle;
use i_slint_backend_testing::testing_backend::{TestingBackend, TestingBackendOptions};
use kassa_agent::demo::demo_products;
use kassa_agent::screen::{CustomerViewMode, ScreenOptions, Screens};
use kassa_agent::store::{LogEntry, LogQuery};
use kassa_tests::{CustomerAction, Till};
use kassa_ui::Language;
use kassa_ui::screens::TillWindow;
use kassa_ui::slint::{self, ComponentHandle};
use serde_json::json;

/// Generous for a loaded CI machine; the screens usually follow within milliseconds.
const PATIENCE: Duration = Duration::from_secs(20);

/// Runs `look` on the UI thread and hands its answer back to the scenario's thread.
fn on_ui<R: Send + 'static>(
    ui: &slint::Weak<TillWindow>,
    look: impl FnOnce(&TillWindow) -> R + Send + 'static,
) -> R {
    let (tx, rx) = mpsc::channel();
    ui.upgrade_in_event_loop(move |w| {
        let _ = tx.send(look(&w));
    })
    .expect("the UI's event loop is running");
    rx.recv().expect("the UI thread answered")
}

fn labels_on_screen(w: &TillWindow) -> Vec<String> {
    use i_slint_backend_testing::ElementRoot;
    w.root_element()
        .query_descendants()
        .find_all()
        .into_iter()
        .filter_map(|e| e.accessible_label().map(|l| l.to_string()))
        .filter(|l| !l.is_empty())
        .collect()
}

/// Elements whose accessible label is `label`, or starts with it when `label` ends in '*'.
fn find_all(w: &TillWindow, label: &str) -> Vec<ElementHandle> {
    use i_slint_backend_testing::ElementRoot;
    let (prefix, whole) = match label.strip_suffix('*') {
        Some(p) => (p.to_string(), false),
        None => (label.to_string(), true),
    };
    w.root_element()
        .query_descendants()
        .match_predicate(move |e| {
            e.accessible_label().is_some_and(|l| {
                if whole {
                    l == prefix
                } else {
                    l.starts_with(&prefix)
                }
            })
        })
        .find_all()
}

/// The element labelled `label` that carries a value (a Text's own label has none).
fn find_with_value(w: &TillWindow, label: &str) -> Option<ElementHandle> {
    find_all(w, label)
        .into_iter()
        .find(|e| e.accessible_value().is_some_and(|v| !v.is_empty()))
}

fn find_button(w: &TillWindow, label: &str) -> Option<ElementHandle> {
    find_all(w, label)
        .into_iter()
        .find(|e| e.accessible_role() == Some(i_slint_backend_testing::AccessibleRole::Button))
}

/// Waits until an element labelled `label` is on screen (and, if given, has this value).
fn wait_for(ui: &slint::Weak<TillWindow>, label: &str, value: Option<&str>) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (l, v) = (label.to_string(), value.map(str::to_string));
        let (found, seen) = on_ui(ui, move |w| {
            let found = match &v {
                None => !find_all(w, &l).is_empty(),
                Some(v) => find_with_value(w, &l)
                    .and_then(|e| e.accessible_value())
                    .is_some_and(|got| got == v.as_str()),
            };
            (found, if found { vec![] } else { labels_on_screen(w) })
        });
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {label:?} = {value:?}; on screen: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The alert strip under the status bar, as read out ("" while it has nothing to say).
fn alerts(w: &TillWindow) -> String {
    find_all(w, "Alerts")
        .into_iter()
        .find_map(|e| e.accessible_value())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// Waits until the operations waiting to be sent are `n`: the alert strip says so, or (for 0)
/// says nothing about waiting at all.
fn wait_for_waiting(ui: &slint::Weak<TillWindow>, n: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let said = on_ui(ui, alerts);
        let done = if n == 0 {
            !said.contains("Waiting to send")
        } else {
            said.split("  ·  ")
                .any(|part| part == format!("Waiting to send: {n}"))
        };
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} operations waiting; the alerts say {said:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until no element labelled `label` is on screen.
fn wait_gone(ui: &slint::Weak<TillWindow>, label: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let l = label.to_string();
        if on_ui(ui, move |w| find_all(w, &l).is_empty()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {label:?} to go"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn value_of(ui: &slint::Weak<TillWindow>, label: &str) -> Option<String> {
    let l = label.to_string();
    on_ui(ui, move |w| {
        find_with_value(w, &l).and_then(|e| e.accessible_value().map(|v| v.to_string()))
    })
}

fn press(ui: &slint::Weak<TillWindow>, label: &str) {
    wait_for(ui, label, None);
    let l = label.to_string();
    on_ui(ui, move |w| match find_button(w, &l) {
        Some(button) => {
            assert_eq!(button.accessible_enabled(), Some(true), "{l} is enabled");
            button.invoke_accessible_default_action();
        }
        None => panic!("no button {l}"),
    });
}

/// Taps the element labelled `label` (a line of the sale, to select it).
fn tap(ui: &slint::Weak<TillWindow>, label: &str) {
    wait_for(ui, label, None);
    let l = label.to_string();
    on_ui(ui, move |w| match find_all(w, &l).first() {
        Some(e) => e.invoke_accessible_default_action(),
        None => panic!("nothing labelled {l}"),
    });
}

/// Types `text` into the text field labelled `label`, as a cashier typing or pasting would.
fn type_into(ui: &slint::Weak<TillWindow>, label: &str, text: &str) {
    wait_for(ui, label, None);
    let (l, t) = (label.to_string(), text.to_string());
    on_ui(ui, move |w| {
        let field = find_all(w, &l)
            .into_iter()
            .find(|e| {
                e.accessible_role() == Some(i_slint_backend_testing::AccessibleRole::TextInput)
            })
            .unwrap_or_else(|| panic!("no text field {l}"));
        field.set_accessible_value(t);
    });
}

/// The Klarna payment request the sandbox issued last.
fn last_request(till: &Till, count: usize) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let requests = till.sandbox.requests();
        if requests.len() >= count
            && let Some(r) = requests.last()
        {
            return r.payment_request_id.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the sandbox got no payment request"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cashier_scenario(till: &Till, rt: &tokio::runtime::Handle, ui: &slint::Weak<TillWindow>) {
    let nbsp = '\u{a0}';
    // A sale rung up by tapping products.
    wait_for(ui, "Pay with Klarna", None);
    press(ui, "T-shirt*");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}118.00")));
    press(ui, "Socks*");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}167.50")));

    // Pay: the QR code comes up and the customer declines; the retry choice appears.
    press(ui, "Pay with Klarna");
    wait_for(ui, "QR code to pay with Klarna", None);
    wait_for(ui, "Amount", Some(&format!("SEK{nbsp}167.50")));
    wait_for(
        ui,
        "Payment status",
        Some("Waiting for the customer to scan"),
    );
    assert!(
        value_of(ui, "Time left").is_some(),
        "the countdown is on screen"
    );
    let first = last_request(till, 1);
    till.sandbox
        .customer(&first, CustomerAction::Decline)
        .expect("the sandbox knows the request");
    wait_for(ui, "Payment declined", None);
    wait_for(ui, "Try again", None);
    wait_for(ui, "Other payment method", None);

    // Try again: a new request; the customer opens the link and approves; the sale is paid.
    press(ui, "Try again");
    let second = last_request(till, 2);
    assert_ne!(first, second, "a retry is a new payment request");
    wait_for(ui, "QR code to pay with Klarna", None);
    till.sandbox
        .customer(&second, CustomerAction::Open)
        .expect("the sandbox knows the request");
    wait_for(ui, "Payment status", Some("The customer opened the link"));
    till.sandbox
        .customer(&second, CustomerAction::Approve)
        .expect("the sandbox knows the request");
    wait_for(ui, "Paid", None);
    wait_for(ui, "Reprint receipt", None);
    // A reprint is answered on the screen: this till has no printer, and says so.
    press(ui, "Reprint receipt");
    wait_for(ui, "Receipt", Some("This till has no receipt printer"));

    // Next customer, and Klarna is down: the screen says so plainly and offers the way out.
    press(ui, "New sale");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}0.00")));
    press(ui, "T-shirt*");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}118.00")));
    till.sandbox.set_outage(true);
    press(ui, "Pay with Klarna");
    wait_for(ui, "Klarna is offline", None);
    wait_for(ui, "Other payment method", None);
    till.sandbox.set_outage(false);

    // "Other payment method" is a tender choice, never an abandon: the customer pays 100.00 in
    // cash and the rest on the store's card terminal. First the sale is put right: a pair of
    // socks tapped by mistake comes off, a second T-shirt goes on and off again.
    press(ui, "Other payment method");
    wait_for(ui, "Take cash", None);
    wait_for(ui, "Card terminal", None);
    press(ui, "Back to sale");
    press(ui, "Socks*");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}167.50")));
    tap(ui, "1 × Socks*");
    press(ui, "Remove Socks");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}118.00")));
    tap(ui, "1 × T-shirt*");
    press(ui, "One more T-shirt");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}236.00")));
    press(ui, "One less T-shirt");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}118.00")));
    // A price cut beyond the store's limit (10 %) needs a manager: said, and nothing changes.
    tap(ui, "1 × T-shirt*");
    press(ui, "New price for T-shirt");
    for key in ["5", "9"] {
        press(ui, key);
    }
    type_into(ui, "Reason", "display model");
    press(ui, "Set price");
    wait_for(
        ui,
        "a price cut of more than 10 % needs a manager's approval",
        None,
    );
    press(ui, "Back to sale");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}118.00")));
    // Within it the cashier alone sets it: 118.00 to 110.00 for a small stain.
    tap(ui, "1 × T-shirt*");
    press(ui, "New price for T-shirt");
    for key in ["1", "1", "0"] {
        press(ui, key);
    }
    type_into(ui, "Reason", "small stain");
    press(ui, "Set price");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}110.00")));
    // And 3 % off the whole sale for a regular customer (9.6 % off the list price in all, still
    // within the limit).
    press(ui, "Discount");
    press(ui, "3");
    type_into(ui, "Reason", "regular customer");
    press(ui, "Give discount");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}106.70")));
    press(ui, "Cash or card");
    wait_for(ui, "To pay", Some(&format!("SEK{nbsp}106.70")));
    for key in ["1", "0", "0"] {
        press(ui, key);
    }
    wait_for(ui, "Cash given", Some("100"));
    press(ui, "Take cash");
    wait_for(ui, "Left to pay", Some(&format!("SEK{nbsp}6.70")));
    // Paid in part, the lines are what was paid for: no − + or remove any more.
    wait_gone(ui, "Remove T-shirt");
    wait_gone(ui, "One more T-shirt");
    press(ui, "Cash or card");
    press(ui, "Card terminal");
    type_into(ui, "Card terminal reference", "AUTH 4711");
    press(ui, "Card paid");
    wait_for(ui, "Paid", None);
    let rows = rt
        .block_on(
            till.agent()
                .terminal
                .store()
                .call(|db| db.journal_rows(0, 10_000)),
        )
        .expect("the journal");
    let sale = rows
        .iter()
        .rfind(|r| r.kind == "tender_taken")
        .and_then(|r| r.sale_id.clone())
        .expect("the paid sale's tenders are journaled");
    let view = rt
        .block_on(till.agent().terminal.sale(&sale))
        .expect("the sale");
    let parts: Vec<(String, i64)> = view
        .tenders
        .iter()
        .map(|t| (t.kind.as_str().to_string(), t.amount))
        .collect();
    assert_eq!(
        parts,
        [
            ("cash".to_string(), 10_000),
            ("card_terminal".to_string(), 670)
        ]
    );
    assert_eq!(view.tenders[1].reference.as_deref(), Some("AUTH 4711"));
    press(ui, "New sale");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}0.00")));

    // The T-shirt comes back by its receipt's code: the money goes back the way it came.
    press(ui, "Return");
    type_into(ui, "Klarna transaction id", &format!("kassa:sale:{sale}"));
    press(ui, "Find purchase");
    wait_for(ui, "T-shirt*", Some("0 of 1 coming back"));
    press(ui, "One more: T-shirt*");
    type_into(ui, "Reason", "Wrong size");
    press(ui, "Refund");
    wait_for(ui, "Refund slip", None);
    let slip = value_of(ui, "Refund slip").expect("the slip has text");
    // Amounts as the rest of the screen writes them.
    assert!(slip.contains("Cash paid out: SEK\u{a0}100.00"), "{slip}");
    assert!(
        slip.contains("Refund on the card terminal: SEK\u{a0}6.70"),
        "{slip}"
    );
    press(ui, "Close returns");
    wait_gone(ui, "Return a purchase");

    // Klarna is back; the cashier starts a payment and cancels it before the customer scans.
    press(ui, "Socks*");
    // The tap opens a new sale on the agent; "Pay" is enabled once the screen shows it.
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}49.50")));
    press(ui, "Pay with Klarna");
    wait_for(ui, "QR code to pay with Klarna", None);
    press(ui, "Cancel payment");
    wait_for(ui, "Payment canceled", None);
    press(ui, "Back to sale");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}49.50")));

    // Cancelling the sale asks first: "Keep the sale" keeps every line, yes takes them all.
    press(ui, "Cancel sale");
    wait_for(ui, "Cancel this sale?", None);
    press(ui, "Keep the sale");
    wait_gone(ui, "Cancel this sale?");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}49.50")));
    press(ui, "Cancel sale");
    press(ui, "Yes, cancel the sale");
    wait_gone(ui, "Cancel this sale?");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}0.00")));
    // (The scenarios after this one start from a sale of one pair of socks.)
    press(ui, "Socks*");
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}49.50")));
}

/// The cashier's open sale is paid; then the next customer's first item arrives through another
/// door (the POS system here, a scanned product alike): it takes the screen from the paid sale at
/// once, as it takes the pole display and the scanner's next item. One sale at the counter.
fn counter_scenario(till: &Till, rt: &tokio::runtime::Handle, ui: &slint::Weak<TillWindow>) {
    let nbsp = '\u{a0}';
    press(ui, "Pay with Klarna");
    wait_for(ui, "QR code to pay with Klarna", None);
    let request = last_request(till, 1);
    for action in [CustomerAction::Open, CustomerAction::Approve] {
        till.sandbox
            .customer(&request, action)
            .expect("the sandbox knows the request");
    }
    wait_for(ui, "Paid", None);
    // The customer's view no longer asks them to pay what they just paid.
    wait_gone(ui, "To pay");
    let (status, sale) = rt.block_on(till.post(
        "/v1/sales",
        json!({"lines": [{"name": "Socks", "quantity": 1, "unit_price": 4950}]}),
    ));
    assert_eq!(status, 201, "{sale}");
    // (The same total as the cashier's sale before: the scenarios after this one build on it.)
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}49.50")));
    wait_gone(ui, "Paid");
    wait_for(ui, "To pay", None);
    assert_eq!(
        till.agent().terminal.counter_sale().as_deref(),
        sale["id"].as_str(),
        "the sale on screen is the till's sale at the counter"
    );
}

/// Klarna goes down while a refund is made: the status bar says Klarna is offline and counts the
/// refund waiting to be sent; the manager area lists it; once Klarna is back it is sent.
fn live_status_scenario(till: &Till, rt: &tokio::runtime::Handle, ui: &slint::Weak<TillWindow>) {
    let nbsp = '\u{a0}';
    wait_for_waiting(ui, 0);
    let tx = till
        .sandbox
        .seed_order(
            "SEK",
            "web-1001",
            vec![json!({"name": "Coat", "quantity": 1, "unit_price": 50_000, "total_amount": 50_000})],
        )
        .payment_transaction_id;
    till.sandbox.set_outage(true);
    let (status, op) = rt.block_on(till.post(
        &format!("/v1/transactions/{tx}/refunds"),
        json!({"currency": "SEK", "reference": "return-ui-1",
               "line_items": [{"name": "Coat", "quantity": 1, "unit_price": 12_000}]}),
    ));
    assert_eq!(status, 202, "the refund is queued during the outage: {op}");
    wait_for_waiting(ui, 1);
    // The outbox keeps trying and failing; the breaker opens and the bar says so.
    wait_for(ui, "Klarna offline", None);

    // The manager sees the refund waiting, and that this till has no peripherals.
    press(ui, "Manager");
    for digit in ["1", "2", "3", "4", "Enter"] {
        press(ui, digit);
    }
    press(ui, "Till status");
    wait_for(ui, &format!("Refund SEK{nbsp}120.00"), None);
    wait_for(ui, "No devices configured", None);
    press(ui, "Close manager area");

    // Klarna is back: the refund goes out and nothing waits any more.
    till.sandbox.set_outage(false);
    wait_for_waiting(ui, 0);
    // Back up, though still "slow" rather than "online" while the failures weigh on the
    // five-minute figures.
    wait_gone(ui, "Klarna offline");
}

/// A customer brings back one of two scarves bought online: the cashier finds the purchase by its
/// Klarna transaction id, chooses one scarf, gives a reason and refunds; the slip comes up and
/// Klarna refunds exactly one scarf.
fn return_scenario(till: &Till, ui: &slint::Weak<TillWindow>) {
    let tx = till
        .sandbox
        .seed_order(
            "SEK",
            "web-1",
            vec![json!({"name": "Scarf", "reference": "S-1", "quantity": 2,
                        "unit_price": 19900, "total_amount": 39800})],
        )
        .payment_transaction_id;
    press(ui, "Return");
    wait_for(ui, "Return a purchase", None);
    type_into(ui, "Klarna transaction id", &tx);
    press(ui, "Find purchase");
    wait_for(ui, "Scarf*", Some("0 of 2 coming back"));
    press(ui, "One more: Scarf*");
    wait_for(ui, "Scarf*", Some("1 of 2 coming back"));
    type_into(ui, "Reason", "Wrong colour");
    press(ui, "Refund");
    wait_for(ui, "Refund slip", None);
    let slip = value_of(ui, "Refund slip").expect("the slip has text");
    assert!(slip.contains("REFUND"), "{slip}");

    let deadline = Instant::now() + PATIENCE;
    loop {
        let refunds: Vec<i64> = till
            .sandbox
            .transactions()
            .into_iter()
            .filter(|t| t.payment_transaction_id == tx)
            .flat_map(|t| t.payment_refunds)
            .filter_map(|r| r["amount"].as_i64())
            .collect();
        if !refunds.is_empty() {
            assert_eq!(refunds, vec![19900], "one refund of one scarf");
            break;
        }
        assert!(Instant::now() < deadline, "Klarna got no refund");
        std::thread::sleep(Duration::from_millis(20));
    }
    // "New return" starts again from an empty form: no id, no reason, no slip.
    press(ui, "New return");
    wait_gone(ui, "Refund slip");
    assert_eq!(
        value_of(ui, "Klarna transaction id"),
        None,
        "the id is cleared"
    );
    assert_eq!(value_of(ui, "Reason"), None, "the reason is cleared");
    type_into(ui, "Klarna transaction id", &tx);
    press(ui, "Find purchase");
    wait_for(ui, "Scarf*", Some("0 of 1 coming back"));
    press(ui, "Close returns");
    wait_gone(ui, "Return a purchase");
    // Opened again, the screen keeps nothing of the last return.
    press(ui, "Return");
    wait_for(ui, "Return a purchase", None);
    assert_eq!(value_of(ui, "Klarna transaction id"), None);
    assert_eq!(value_of(ui, "Reason"), None);
    press(ui, "Close returns");
    wait_gone(ui, "Return a purchase");
}

/// The values of the transaction log's rows on screen ("time | event · state | amount").
fn log_rows_on_screen(ui: &slint::Weak<TillWindow>) -> Vec<String> {
    on_ui(ui, |w| {
        find_all(w, "Log row")
            .into_iter()
            .filter_map(|e| e.accessible_value().map(|v| v.to_string()))
            .collect()
    })
}

/// What `kassa log --from <local midnight> [--kind K] [--text T]` lists, newest first.
fn kassa_log_today(
    till: &Till,
    rt: &tokio::runtime::Handle,
    kind: Option<&str>,
    text: Option<&str>,
) -> Vec<LogEntry> {
    let midnight = chrono::Local::now()
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_local_timezone(chrono::Local)
        .earliest()
        .expect("today has a start");
    let filter = LogQuery {
        from: Some(midnight.to_rfc3339()),
        kind: kind.map(str::to_string),
        text: text.map(str::to_string),
        ..Default::default()
    }
    .filter()
    .expect("a valid filter");
    rt.block_on(till.agent().terminal.store().call(move |db| {
        db.index_journal(None)?;
        Ok(db.log_page(&filter, None, 50))
    }))
    .expect("the store answers")
    .expect("the log reads")
    .entries
}

/// How a manager recognises a log row: what happened, where it stands, and the amount.
fn row_says(on_screen: &str, e: &LogEntry) -> bool {
    let parts: Vec<&str> = on_screen.split(" | ").collect();
    let [_, event, amount] = parts[..] else {
        return false;
    };
    let event = event.to_lowercase();
    let what = match e.row.detail.get("action").and_then(|a| a.as_str()) {
        Some(action) if e.row.kind == "manager_action" => action.replace('_', " "),
        _ => kassa_agent::screen::log_event_name(&e.row.kind)
            .map(str::to_lowercase)
            .unwrap_or_else(|| e.row.kind.replace('_', " ")),
    };
    let amount_ok = match e.row.amount {
        Some(a) => amount == format!("SEK\u{a0}{}.{:02}", a / 100, a % 100),
        None => amount.is_empty(),
    };
    event.starts_with(&what)
        && e.state.as_ref().is_none_or(|s| {
            event.ends_with(&kassa_agent::screen::log_state_name(
                s,
                kassa_ui::Language::English,
            ))
        })
        && amount_ok
}

/// Waits until the log on screen lists exactly what `expected` reads from the store, row for
/// row (read again each time: a row journaled meanwhile shows up in both), and returns it.
fn wait_for_log(
    ui: &slint::Weak<TillWindow>,
    expected: impl Fn() -> Vec<LogEntry>,
) -> Vec<LogEntry> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rows = log_rows_on_screen(ui);
        let expected = expected();
        if rows.len() == expected.len() && rows.iter().zip(&expected).all(|(r, e)| row_says(r, e)) {
            return expected;
        }
        assert!(
            Instant::now() < deadline,
            "the log shows {rows:#?}\nbut `kassa log` lists {:#?}",
            expected
                .iter()
                .map(|e| (&e.row.kind, &e.state, e.row.amount))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rings up one product, has the customer approve, and returns the paid sale's id.
fn sell(
    till: &Till,
    ui: &slint::Weak<TillWindow>,
    product: &str,
    total: &str,
    amount: i64,
) -> String {
    press(ui, product);
    wait_for(ui, "Total", Some(total));
    let asked = till.sandbox.requests().len();
    press(ui, "Pay with Klarna");
    let request = last_request(till, asked + 1);
    wait_for(ui, "QR code to pay with Klarna", None);
    till.sandbox
        .customer(&request, CustomerAction::Approve)
        .expect("the sandbox knows the request");
    wait_for(ui, "Paid", None);
    let sale = till
        .sandbox
        .transactions()
        .into_iter()
        .rev()
        .find(|t| t.amount == amount)
        .and_then(|t| t.payment_transaction_reference)
        .expect("Klarna has the purchase, referenced by the sale id");
    press(ui, "New sale");
    sale
}

/// The manager area: a wrong PIN is refused and journaled; the right one opens it. Two sales are
/// paid; searching one's id lists exactly its rows, as `kassa log` does, and so does a kind
/// filter; the X-report shows the day's totals; the day close asks first, then closes.
fn manager_scenario(till: &Till, rt: &tokio::runtime::Handle, ui: &slint::Weak<TillWindow>) {
    let nbsp = '\u{a0}';
    // Two more sales, paid: the open one from before gets a coffee mug, then a tote bag alone.
    wait_for(ui, "Total", Some(&format!("SEK{nbsp}49.50")));
    let first = sell(till, ui, "Coffee mug*", &format!("SEK{nbsp}138.50"), 13_850);
    let second = sell(till, ui, "Tote bag*", &format!("SEK{nbsp}149.00"), 14_900);
    assert_ne!(first, second);

    let refused = || {
        rt.block_on(
            till.agent()
                .terminal
                .store()
                .call(|db| db.journal_rows(0, 10_000)),
        )
        .expect("the journal reads")
        .into_iter()
        .filter(|r| {
            r.kind == "manager_action"
                && r.detail["action"] == "open_manager_area"
                && r.detail["outcome"] == "refused"
        })
        .count()
    };
    assert_eq!(refused(), 0);
    press(ui, "Manager");
    for digit in ["9", "9", "9", "9", "Enter"] {
        press(ui, digit);
    }
    wait_for(ui, "Wrong PIN, try again", None);
    assert_eq!(refused(), 1, "the wrong PIN is journaled as refused");
    wait_gone(ui, "Search the log");
    for digit in ["1", "2", "3", "4", "Enter"] {
        press(ui, digit);
    }
    wait_for(ui, "Search the log", None);

    // The second sale's id finds exactly its rows, today's, as `kassa log --text` does.
    type_into(ui, "Search the log", &second);
    let expected = wait_for_log(ui, || kassa_log_today(till, rt, None, Some(&second)));
    let journal = rt.block_on(till.journal_kinds(&second));
    assert_eq!(
        expected
            .iter()
            .rev()
            .map(|e| &e.row.kind)
            .collect::<Vec<_>>(),
        journal.iter().collect::<Vec<_>>(),
        "the search finds every row of the sale and nothing else"
    );
    let rows = log_rows_on_screen(ui);
    assert!(
        rows.iter().any(|r| r.contains(&format!("SEK{nbsp}149.00"))),
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .all(|r| !r.contains(&format!("SEK{nbsp}138.50"))),
        "nothing of the other sale: {rows:#?}"
    );

    // Only its payments.
    press(ui, "Payments");
    let payments = wait_for_log(ui, || {
        kassa_log_today(till, rt, Some("payment"), Some(&second))
    });
    assert!(!payments.is_empty() && payments.len() < expected.len());

    // Manager actions, any text: the refused PIN and the openings are there.
    type_into(ui, "Search the log", "");
    press(ui, "Manager actions");
    wait_for_log(ui, || kassa_log_today(till, rt, Some("manager"), None));
    let rows = log_rows_on_screen(ui);
    assert!(
        rows.iter()
            .any(|r| r.contains("Open manager area · refused")),
        "{rows:#?}"
    );
    assert!(
        rows.iter().any(|r| r.contains("Open manager area · ok")),
        "{rows:#?}"
    );

    // The X-report: the day's paid sales and their amount, as the store counts them.
    press(ui, "Reports");
    wait_for(ui, "No receipt printer configured", None);
    let print = on_ui(ui, |w| {
        find_button(w, "No receipt printer configured").and_then(|b| b.accessible_enabled())
    });
    assert_eq!(print, Some(false), "nothing to print on");
    press(ui, "X-report");
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        if let Some(text) = value_of(ui, "Report")
            && text.contains("X-REPORT")
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no X-report on screen: {:?}; {:?}",
            value_of(ui, "Report status"),
            on_ui(ui, labels_on_screen)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let x = rt
        .block_on(till.agent().terminal.store().call(|db| db.x_report()))
        .expect("the X-report");
    let sek = x
        .currencies
        .iter()
        .find(|c| c.currency == "SEK")
        .expect("SEK sales");
    assert!(sek.sales.count >= 3, "three sales were paid today: {sek:?}");
    let sales_line = text
        .lines()
        .find(|l| l.starts_with("Sales "))
        .unwrap_or_else(|| panic!("a Sales line in {text}"));
    assert_eq!(
        sales_line.split_whitespace().collect::<Vec<_>>(),
        [
            "Sales".to_string(),
            sek.sales.count.to_string(),
            format!("{}.{:02}", sek.sales.amount / 100, sek.sales.amount % 100)
        ],
        "{text}"
    );

    // Closing the day asks first; "Cancel" closes nothing.
    let closes = || {
        rt.block_on(till.agent().terminal.store().call(|db| db.day_closes()))
            .expect("day closes read")
            .len()
    };
    // A sale left open: the day close lists it before asking.
    let (status, open) = rt.block_on(till.post(
        "/v1/sales",
        json!({"lines": [{"name": "Umbrella", "quantity": 1, "unit_price": 19_900}]}),
    ));
    assert_eq!(status, 201, "{open}");
    press(ui, "Close day (Z-report)");
    wait_for(ui, "This closes the day; it cannot be undone.", None);
    let deadline = Instant::now() + PATIENCE;
    while !value_of(ui, "Still open")
        .is_some_and(|t| t.contains("Sale opened") && t.contains("lines: 1 · SEK\u{a0}199.00"))
    {
        assert!(
            Instant::now() < deadline,
            "the open sale is not listed: {:?}",
            value_of(ui, "Still open")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    press(ui, "Cancel");
    wait_gone(ui, "This closes the day; it cannot be undone.");
    assert_eq!(closes(), 0);
    press(ui, "Close day (Z-report)");
    press(ui, "Close the day");
    let deadline = Instant::now() + PATIENCE;
    while !value_of(ui, "Report").is_some_and(|t| t.contains("Z-REPORT (DAY CLOSE) #1")) {
        assert!(Instant::now() < deadline, "no Z-report on screen");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(closes(), 1);

    // Leaving locks the area: nothing of the manager's data stays on screen.
    press(ui, "Close manager area");
    wait_gone(ui, "Report");
    wait_gone(ui, "Log row");
    press(ui, "Manager");
    wait_for(ui, "Manager PIN", None);
    wait_gone(ui, "Search the log");
    press(ui, "Close manager area");
}

/// A cashier signs in with her own id and PIN (a wrong PIN is refused and said), sells, and what
/// she does is journaled under her id; she signs out.
fn staff_scenario(till: &Till, rt: &tokio::runtime::Handle, ui: &slint::Weak<TillWindow>) {
    press(ui, "Sign in");
    type_into(ui, "Staff id", "ann");
    type_into(ui, "PIN", "4712");
    press(ui, "Sign in with this PIN");
    wait_for(ui, "Unknown staff id or wrong PIN", None);
    type_into(ui, "PIN", "4711");
    press(ui, "Sign in with this PIN");
    wait_for(ui, "Signed in", Some("Ann (ann)"));
    wait_gone(ui, "Sign in with this PIN");
    let journal = || {
        rt.block_on(
            till.agent()
                .terminal
                .store()
                .call(|db| db.journal_rows(0, 100_000)),
        )
        .expect("the journal")
    };
    let before = journal().last().map_or(0, |r| r.seq);
    press(ui, "Tote bag*");
    let deadline = Instant::now() + PATIENCE;
    let new_rows = loop {
        let rows: Vec<_> = journal().into_iter().filter(|r| r.seq > before).collect();
        if rows
            .iter()
            .any(|r| r.detail.to_string().contains("Tote bag"))
        {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "the tote bag was never journaled"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let operators: std::collections::BTreeSet<_> =
        new_rows.iter().map(|r| r.operator.as_str()).collect();
    let opened_by = operators.into_iter().collect::<Vec<_>>().join(",");
    assert_eq!(opened_by, "ann", "what a signed-in cashier does is hers");
    press(ui, "Sign out");
    wait_for(ui, "Sign in", None);
    wait_gone(ui, "Signed in");
}

#[test]
fn cashier_rings_up_pays_with_klarna_and_handles_decline_and_outage() {
    // One platform per process: this file has one test. Threading on, so the adapter's
    // `upgrade_in_event_loop` calls run exactly as they do under winit.
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: true,
        renderer_name: Some("software".into()),
    })))
    .expect("the testing platform is the first and only one");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Quick retries and a short breaker cool-down so that the outage scenario takes seconds.
    let till = rt.block_on(Till::start_with(Default::default(), |c| {
        c.outbox.backoff_base_ms = 20;
        c.outbox.backoff_cap_ms = 200;
        c.health.breaker_cooldown_ms = 200;
    }));
    // The manager area opens with the store's PIN, as set with `kassa manager set-pin`.
    rt.block_on(till.set_manager_pin("1234", "owner"));
    // A cashier with her own PIN, as `kassa staff add` makes one.
    let phc = kassa_agent::manager::hash_pin("4711").expect("hashes");
    rt.block_on(till.agent().terminal.store().call(move |db| {
        db.put_staff(
            "ann",
            "Ann",
            kassa_agent::store::staff::Role::Cashier,
            &phc,
            "it",
        )
    }))
    .expect("the cashier is added");
    let screens = Screens::open_with_devices(
        till.agent().terminal.clone(),
        rt.handle().clone(),
        ScreenOptions {
            language: Language::English,
            customer_view: CustomerViewMode::Split,
            products: demo_products(),
            ..Default::default()
        },
        Some(till.agent().devices.clone()),
    )
    .expect("the windows open");
    screens.show(false).expect("the windows show");
    let ui = screens.till.as_weak();

    let handle = rt.handle().clone();
    let cashier = std::thread::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            cashier_scenario(&till, &handle, &ui);
            counter_scenario(&till, &handle, &ui);
            live_status_scenario(&till, &handle, &ui);
            return_scenario(&till, &ui);
            manager_scenario(&till, &handle, &ui);
            staff_scenario(&till, &handle, &ui);
        }));
        // Stop the UI whatever happened, so that a failure is reported, not a hang.
        let _ = slint::quit_event_loop();
        (outcome, till)
    });
    slint::run_event_loop().expect("the event loop runs");
    let (outcome, till) = cashier.join().expect("the scenario thread ends");
    drop(screens);
    rt.block_on(async move { drop(till) });
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
