//! The till's peripherals end to end: a whole agent against the Klarna sandbox, with a simulated
//! customer display, scanner and receipt printer on real pseudo-terminals.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kassa_agent::config::Config;
use kassa_agent::devices::{CatalogueItem, DeviceEvent};
use kassa_drivers::{DisplayConfig, PortConfig, PrinterConfig, ScannerConfig};
use kassa_sim::devices::{
    SimDisplay, SimDisplayCommandSet, SimPrinter, SimScanner, SimScannerSettings,
};
use kassa_sim::sandbox::SandboxConfig;
use kassa_tests::{CustomerAction, Till, last_payment};
use serde_json::{Value, json};

/// Pseudo-terminal pairs must not be created from several threads at once (devices.md); tests
/// run in parallel, so every plug-in goes through this lock.
static PTYS: Mutex<()> = Mutex::new(());

fn plug_in<T>(make: impl FnOnce() -> std::io::Result<T>) -> T {
    let _one_at_a_time = PTYS.lock().unwrap_or_else(PoisonError::into_inner);
    make().expect("a pseudo-terminal for the simulated device")
}

const T_SHIRT: &str = "7310000000010";
const SOCKS: &str = "7310000000027";
/// A valid EAN-13 that is not in the catalogue.
const NOT_SOLD_HERE: &str = "7310000000034";

/// The simulated counter: display, scanner and printer, each behind a stable symlink so that
/// it can be unplugged and plugged back in.
struct Counter {
    display: SimDisplay,
    scanner: SimScanner,
    printer: SimPrinter,
    display_link: PathBuf,
    scanner_link: PathBuf,
    printer_link: PathBuf,
    _links: tempfile::TempDir,
}

impl Counter {
    fn plug_in() -> Counter {
        let links = tempfile::tempdir().expect("tempdir");
        let link = |name: &str| links.path().join(name);
        let (display_link, scanner_link, printer_link) =
            (link("display"), link("scanner"), link("printer"));
        let (display, _) = plug_in(|| {
            SimDisplay::start_at(SimDisplayCommandSet::Epson, Some(display_link.as_path()))
        });
        let (scanner, _) = plug_in(|| {
            SimScanner::start_at(SimScannerSettings::default(), Some(scanner_link.as_path()))
        });
        let (printer, _) = plug_in(|| SimPrinter::start_at(Some(printer_link.as_path())));
        Counter {
            display,
            scanner,
            printer,
            display_link,
            scanner_link,
            printer_link,
            _links: links,
        }
    }

    /// Configures the till with these devices and a two-product catalogue.
    fn configure(&self, cfg: &mut Config) {
        let port = |p: &Path| PortConfig {
            max_backoff_ms: 50,
            ..PortConfig::at(p)
        };
        cfg.devices.display = Some(DisplayConfig {
            port: port(&self.display_link),
            ..Default::default()
        });
        cfg.devices.scanner = Some(ScannerConfig {
            port: port(&self.scanner_link),
            ..Default::default()
        });
        cfg.devices.printer = Some(PrinterConfig {
            port: port(&self.printer_link),
            status_interval_ms: 50,
            ..Default::default()
        });
        cfg.receipt.header = vec!["Demo Store".into()];
        let item = |gtin: &str, name: &str, unit_price| CatalogueItem {
            gtin: gtin.into(),
            name: name.into(),
            unit_price,
        };
        cfg.catalogue = vec![item(T_SHIRT, "T-shirt", 11800), item(SOCKS, "Socks", 4950)];
    }

    fn scan(&self, code: &str) {
        self.scanner
            .scan(code.as_bytes())
            .expect("scanner plugged in");
    }

    fn screen(&self) -> [String; 2] {
        let [a, b] = self.display.screen();
        [a.trim_end().to_string(), b.trim_end().to_string()]
    }
}

async fn till_at(counter: &Counter) -> Till {
    Till::start_with(SandboxConfig::default(), |cfg| counter.configure(cfg)).await
}

/// Polls `f` until it gives a value (deadline 20 s, generous for a loaded CI machine).
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn device_state(till: &Till, role: &str) -> String {
    let (status, report) = till.get("/v1/devices").await;
    assert_eq!(status, 200, "{report}");
    report["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["role"] == role)
        .and_then(|d| d["state"].as_str())
        .unwrap_or("not listed")
        .to_string()
}

async fn wait_device(till: &Till, role: &str, state: &str) {
    eventually(&format!("{role} {state}"), async || {
        (device_state(till, role).await == state).then_some(())
    })
    .await;
}

async fn wait_screen(counter: &Counter, expected: [&str; 2]) {
    eventually(&format!("the display to show {expected:?}"), async || {
        (counter.screen() == expected).then_some(())
    })
    .await;
}

/// The sale the scans went into, once it has `lines` lines.
async fn scanned_sale(till: &Till, lines: usize) -> Value {
    eventually(&format!("a sale with {lines} scanned lines"), async || {
        let id = till.agent().devices.current_sale()?;
        let sale = till.sale(&id).await;
        (sale["lines"].as_array().map(Vec::len) == Some(lines)).then_some(sale)
    })
    .await
}

async fn pay(till: &Till, sale_id: &str) -> String {
    let (status, attempt) = till.start_payment(sale_id).await;
    assert_eq!(status, 201, "{attempt}");
    let request = attempt["klarna_request_id"].as_str().expect("request id");
    till.sandbox
        .customer(request, CustomerAction::Approve)
        .expect("the customer approves");
    let sale = till
        .wait_sale(sale_id, "paid", |v| v["state"] == "paid")
        .await;
    last_payment(&sale)["klarna_transaction_id"]
        .as_str()
        .expect("a Klarna transaction id")
        .to_string()
}

/// The `printed` flags of the sale's receipt journal rows, in order.
async fn receipt_prints(till: &Till, sale_id: &str) -> Vec<bool> {
    let id = sale_id.to_string();
    let rows = till
        .agent()
        .terminal
        .store()
        .call(move |db| db.journal_for_sale(&id))
        .await
        .expect("journal");
    rows.iter()
        .filter(|r| r.kind == "receipt_printed")
        .filter_map(|r| r.detail["printed"].as_bool())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanned_products_become_sale_lines_and_the_display_shows_each_item_with_the_total() {
    let counter = Counter::plug_in();
    let till = till_at(&counter).await;
    wait_device(&till, "scanner", "connected").await;
    wait_device(&till, "display", "connected").await;
    wait_screen(&counter, ["      Welcome", ""]).await;

    counter.scan(T_SHIRT);
    wait_screen(&counter, ["T-shirt   118.00 SEK", "Total     118.00 SEK"]).await;
    let sale = scanned_sale(&till, 1).await;
    assert_eq!(sale["state"], "open");
    assert_eq!(sale["lines"][0]["name"], "T-shirt");
    assert_eq!(sale["lines"][0]["unit_price"], 11800);
    assert_eq!(sale["lines"][0]["reference"], T_SHIRT);

    counter.scan(SOCKS);
    wait_screen(&counter, ["Socks      49.50 SEK", "Total     167.50 SEK"]).await;
    let sale = scanned_sale(&till, 2).await;
    assert_eq!(sale["total"], 16750);

    // A product the store does not sell: a clear event, nothing added, the till carries on.
    let mut events = till.agent().devices.subscribe();
    counter.scan(NOT_SOLD_HERE);
    let event = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(e @ DeviceEvent::UnknownProduct { .. }) => return e,
                Ok(_) => {}
                Err(e) => panic!("device events stopped: {e}"),
            }
        }
    })
    .await
    .expect("an unknown-product event");
    assert_eq!(
        event,
        DeviceEvent::UnknownProduct {
            gtin: format!("0{NOT_SOLD_HERE}")
        }
    );
    // The socks again: one line of two (issue 17), shown as the item on the display.
    counter.scan(SOCKS);
    wait_screen(&counter, ["2x Socks   99.00 SEK", "Total     217.00 SEK"]).await;
    let sale = scanned_sale(&till, 2).await;
    assert_eq!(sale["total"], 21700, "{sale:#}");
    assert_eq!(sale["lines"][1]["quantity"], 2, "{sale:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_sale_prints_a_receipt_whose_qr_code_is_the_klarna_transaction_and_the_display_thanks_the_customer()
 {
    let counter = Counter::plug_in();
    let till = till_at(&counter).await;
    wait_device(&till, "scanner", "connected").await;
    wait_device(&till, "printer", "connected").await;

    counter.scan(T_SHIRT);
    counter.scan(SOCKS);
    let sale = scanned_sale(&till, 2).await;
    let sale_id = sale["id"].as_str().expect("sale id").to_string();
    // The customer shows their Klarna app's code: the next payment passes it to Klarna.
    let mut events = till.agent().devices.subscribe();
    counter.scan("klarna-interop:customer-token-1");
    tokio::time::timeout(Duration::from_secs(20), async {
        while !matches!(events.recv().await, Ok(DeviceEvent::CustomerCodeScanned)) {}
    })
    .await
    .expect("the customer code is read");

    let (status, attempt) = till.start_payment(&sale_id).await;
    assert_eq!(status, 201, "{attempt}");
    let kept = till
        .agent()
        .terminal
        .attempt(attempt["id"].as_str().expect("attempt id"))
        .await
        .expect("attempt");
    assert_eq!(kept.interop_token.as_deref(), Some("customer-token-1"));
    wait_screen(&counter, ["  Scan the QR code", "to pay    167.50 SEK"]).await;
    till.sandbox
        .customer(
            attempt["klarna_request_id"].as_str().expect("request id"),
            CustomerAction::Approve,
        )
        .expect("the customer approves");
    let paid = till
        .wait_sale(&sale_id, "paid", |v| v["state"] == "paid")
        .await;
    let transaction = last_payment(&paid)["klarna_transaction_id"]
        .as_str()
        .expect("transaction id")
        .to_string();

    wait_screen(&counter, ["     Thank you!", "    Welcome back"]).await;
    let receipt = eventually("a printed receipt", async || {
        counter.printer.receipts().into_iter().next()
    })
    .await;
    assert_eq!(receipt.qr_codes, vec![transaction]);
    assert!(receipt.cut);
    let text = receipt.lines.join("\n");
    for expected in [
        "Demo Store",
        "T-shirt",
        "Socks",
        "167.50 SEK",
        "Paid with Klarna",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
    eventually("the print in the journal", async || {
        (receipt_prints(&till, &sale_id).await == [true]).then_some(())
    })
    .await;
    // The sale has one receipt (its number) and one print of it, each journaled once.
    let kinds: Vec<String> = till
        .journal_kinds(&sale_id)
        .await
        .into_iter()
        .filter(|k| k.starts_with("receipt_"))
        .collect();
    assert_eq!(kinds, ["receipt_issued", "receipt_printed"]);
    assert_eq!(till.verify_journal().await.first_broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_the_printer_could_not_print_is_journaled_and_reprinted_once_paper_is_back() {
    let counter = Counter::plug_in();
    let till = till_at(&counter).await;
    counter.printer.set_paper_out(true);
    wait_device(&till, "printer", "paper_out").await;

    let sale_id = till.open_sale().await;
    let transaction = pay(&till, &sale_id).await;
    eventually("the failed print in the journal", async || {
        (receipt_prints(&till, &sale_id).await == [false]).then_some(())
    })
    .await;
    assert!(counter.printer.receipts().is_empty());
    let (_, report) = till.get("/v1/devices").await;
    assert_eq!(
        report["receipts_not_printed"],
        json!([sale_id]),
        "{report:#}"
    );

    // Still no paper: the reprint is refused and says why.
    let (status, body) = till
        .post(&format!("/v1/sales/{sale_id}/receipt"), json!({}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_printed");

    counter.printer.set_paper_out(false);
    wait_device(&till, "printer", "connected").await;
    let (status, body) = till
        .post(
            &format!("/v1/sales/{sale_id}/receipt"),
            json!({"operator": "anna"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["klarna_transaction_id"], transaction.as_str());
    let receipt = eventually("the reprinted receipt", async || {
        counter.printer.receipts().into_iter().next()
    })
    .await;
    assert_eq!(receipt.qr_codes, vec![transaction]);
    assert_eq!(receipt_prints(&till, &sale_id).await, [false, false, true]);
    let (_, report) = till.get("/v1/devices").await;
    assert_eq!(report["receipts_not_printed"], json!([]), "{report:#}");

    // Only a paid sale has a receipt.
    let open = till.open_sale().await;
    let (status, body) = till
        .post(&format!("/v1/sales/{open}/receipt"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_display_shows_the_current_sale_again_when_it_is_plugged_back_in() {
    let mut counter = Counter::plug_in();
    let till = till_at(&counter).await;
    wait_device(&till, "display", "connected").await;
    counter.scan(T_SHIRT);
    wait_screen(&counter, ["T-shirt   118.00 SEK", "Total     118.00 SEK"]).await;

    counter.display.port().unplug();
    wait_device(&till, "display", "disconnected").await;
    let (_, report) = till.get("/v1/devices").await;
    let display = &report["devices"][0];
    assert_eq!(display["role"], "display");
    assert_eq!(display["ready"], false);
    assert!(display["reason"].is_string(), "{report:#}");

    // The sale goes on while the display is away.
    counter.scan(SOCKS);
    scanned_sale(&till, 2).await;

    plug_in(|| counter.display.port().replug());
    wait_device(&till, "display", "connected").await;
    wait_screen(&counter, ["Socks      49.50 SEK", "Total     167.50 SEK"]).await;
}

/// The manager actions journaled for report prints: (report, printed).
async fn report_prints(till: &Till) -> Vec<(String, bool)> {
    let rows = till
        .agent()
        .terminal
        .store()
        .call(|db| db.journal_rows(0, 10_000))
        .await
        .expect("journal");
    rows.iter()
        .filter(|r| r.kind == "manager_action" && r.detail["action"] == "print_report")
        .map(|r| {
            (
                r.detail["report"].as_str().unwrap_or("?").to_string(),
                r.detail["printed"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_and_z_reports_print_on_the_receipt_printer_at_its_width() {
    let counter = Counter::plug_in();
    // 58 mm paper: 32 characters a line.
    let till = Till::start_with(SandboxConfig::default(), |cfg| {
        counter.configure(cfg);
        if let Some(p) = cfg.devices.printer.as_mut() {
            p.width = 32;
        }
    })
    .await;
    wait_device(&till, "printer", "connected").await;

    // No paper: the print is refused, says why, and the manager's log shows it was not printed.
    counter.printer.set_paper_out(true);
    wait_device(&till, "printer", "paper_out").await;
    let (status, body) = till.post("/v1/reports/x/print", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_printed");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("report was not printed")),
        "{body}"
    );
    assert_eq!(report_prints(&till).await, [("x".to_string(), false)]);
    counter.printer.set_paper_out(false);
    wait_device(&till, "printer", "connected").await;

    // One paid sale of 118.00, then the X-report on paper.
    let sale_id = till.open_sale().await;
    pay(&till, &sale_id).await;
    eventually("the sale's receipt", async || {
        (counter.printer.receipts().len() == 1).then_some(())
    })
    .await;
    let (status, x) = till
        .post("/v1/reports/x/print?operator=mia", json!({}))
        .await;
    assert_eq!(status, 200, "{x}");
    let printed = eventually("the printed X-report", async || {
        counter.printer.receipts().into_iter().nth(1)
    })
    .await;
    assert!(printed.cut, "a whole report, cut off the roll");
    assert!(
        printed.lines.iter().any(|l| l.contains("X-REPORT")),
        "{printed:#?}"
    );
    let sales = printed
        .lines
        .iter()
        .find(|l| l.starts_with("Sales "))
        .unwrap_or_else(|| panic!("a Sales line in {printed:#?}"));
    let total = x["currencies"][0]["sales"]["amount"]
        .as_i64()
        .expect("sales amount");
    assert!(
        sales.contains(" 1 ") && sales.ends_with(&format!("{}.{:02}", total / 100, total % 100)),
        "{sales:?}"
    );
    assert!(
        printed.lines.iter().all(|l| l.chars().count() <= 32),
        "every line fits 58 mm paper: {printed:#?}"
    );

    // Close the day, then print its Z-report by number; an unknown close is a clear 404.
    let z = till
        .agent()
        .terminal
        .store()
        .call(|db| db.close_day("mia"))
        .await
        .expect("closed");
    let n = z.close_no.expect("a close number");
    let (status, body) = till
        .post(&format!("/v1/reports/z/{n}/print"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chain_head"], z.chain_head.as_str());
    let printed = eventually("the printed Z-report", async || {
        counter.printer.receipts().into_iter().nth(2)
    })
    .await;
    let text = printed.lines.join("\n");
    assert!(
        text.contains(&format!("Z-REPORT (DAY CLOSE) #{n}")),
        "{text}"
    );
    assert!(
        text.contains(&z.chain_head[..32]) && text.contains(&z.chain_head[32..]),
        "the chain head an auditor compares is on paper: {text}"
    );
    let (status, body) = till
        .post(&format!("/v1/reports/z/{}/print", n + 1), json!({}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        report_prints(&till).await,
        [
            ("x".to_string(), false),
            ("x".to_string(), true),
            ("z".to_string(), true)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cash_opens_the_drawer_and_a_split_receipt_shows_each_tender_and_its_own_code() {
    let counter = Counter::plug_in();
    let till = till_at(&counter).await;
    wait_device(&till, "scanner", "connected").await;
    wait_device(&till, "printer", "connected").await;
    counter.scan(T_SHIRT);
    counter.scan(SOCKS);
    let sale = scanned_sale(&till, 2).await;
    let sale_id = sale["id"].as_str().expect("sale id").to_string();
    // 100.00 in cash: the drawer on the printer's kick-out port opens.
    let (status, t) = till
        .post(
            &format!("/v1/sales/{sale_id}/tenders"),
            json!({"kind": "cash", "given": 10_000}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["drawer_opened"], true, "{t}");
    eventually("the drawer kicked", async || {
        (counter.printer.drawer_kicks() == 1).then_some(())
    })
    .await;
    // Klarna the rest.
    let (status, attempt) = till.start_payment(&sale_id).await;
    assert_eq!(status, 201, "{attempt}");
    till.sandbox
        .customer(
            attempt["klarna_request_id"].as_str().expect("request id"),
            CustomerAction::Approve,
        )
        .expect("the customer approves");
    till.wait_sale(&sale_id, "paid", |v| v["state"] == "paid")
        .await;
    let receipt = eventually("a printed receipt", async || {
        counter.printer.receipts().into_iter().next()
    })
    .await;
    let text = receipt.lines.join("\n");
    for expected in ["Cash", "100.00 SEK", "Klarna", "67.50 SEK", "167.50 SEK"] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
    // Its code names the sale: it comes back by its receipt, each part the way it came.
    assert_eq!(receipt.qr_codes, vec![format!("kassa:sale:{sale_id}")]);
}
