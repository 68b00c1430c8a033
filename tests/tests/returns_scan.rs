//! A return that starts from a receipt kassa printed: the QR code on the paper (simulated printer)
//! is scanned at the counter (simulated scanner) and leads to the right Klarna transaction, whose
//! refund reaches the sandbox exactly once.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kassa_agent::config::Config;
use kassa_agent::devices::DeviceEvent;
use kassa_drivers::{PortConfig, PrinterConfig, ScannerConfig};
use kassa_sim::devices::{SimPrinter, SimScanner, SimScannerSettings};
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

fn configure(cfg: &mut Config, printer: &Path, scanner: &Path) {
    let port = |p: &Path| PortConfig {
        max_backoff_ms: 50,
        ..PortConfig::at(p)
    };
    cfg.devices.printer = Some(PrinterConfig {
        port: port(printer),
        status_interval_ms: 50,
        ..Default::default()
    });
    cfg.devices.scanner = Some(ScannerConfig {
        port: port(scanner),
        ..Default::default()
    });
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

async fn device_connected(till: &Till, role: &str) {
    eventually(&format!("the {role} to be connected"), async || {
        let (_, report) = till.get("/v1/devices").await;
        report["devices"]
            .as_array()?
            .iter()
            .any(|d| d["role"] == role && d["state"] == "connected")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_receipt_qr_code_finds_the_purchase_and_its_refund_reaches_klarna_once() {
    let (printer, printer_path) = plug_in(SimPrinter::start);
    let (scanner, scanner_path) = plug_in(|| SimScanner::start(SimScannerSettings::default()));
    let till = Till::start_with(SandboxConfig::default(), |cfg| {
        configure(cfg, &printer_path, &scanner_path)
    })
    .await;
    device_connected(&till, "printer").await;
    device_connected(&till, "scanner").await;

    // A sale paid at this till: a T-shirt (118.00) and two pairs of socks (2 × 49.50).
    let sale_id = till.open_sale().await;
    let (status, attempt) = till.start_payment(&sale_id).await;
    assert_eq!(status, 201, "{attempt}");
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
        .expect("a Klarna transaction id")
        .to_string();

    // The customer comes back with the paper receipt; its QR code is what the scanner reads.
    let receipt = eventually("the printed receipt", async || {
        printer.receipts().into_iter().next()
    })
    .await;
    let [qr] = receipt.qr_codes.as_slice() else {
        panic!("one QR code on the receipt, got {:?}", receipt.qr_codes);
    };
    let mut events = till.agent().devices.subscribe();
    scanner
        .scan_with_aim(Some("]Q1"), qr.as_bytes())
        .expect("the scanner is plugged in");
    let code = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(DeviceEvent::ReceiptScanned { code }) => return code,
                Ok(_) => {}
                Err(e) => panic!("device events stopped: {e}"),
            }
        }
    })
    .await
    .expect("the till recognises the receipt");
    assert_eq!(code, transaction);

    // The purchase is read from Klarna by the scanned code, and one pair of socks comes back.
    let (status, purchase) = till.get(&format!("/v1/returns/purchases/{code}")).await;
    assert_eq!(status, 200, "{purchase}");
    assert_eq!(purchase["transaction_id"], transaction.as_str());
    let lines = purchase["lines"].as_array().expect("purchase lines");
    let socks = lines
        .iter()
        .find(|l| l["name"] == "Socks")
        .unwrap_or_else(|| panic!("socks on the purchase: {purchase:#}"));
    assert_eq!(socks["returnable_quantity"], 2, "{purchase:#}");
    let (status, ret) = till
        .post(
            "/v1/returns",
            json!({
                "transaction_id": code,
                "lines": [{"index": socks["index"], "quantity": 1}],
                "reason": "too small",
            }),
        )
        .await;
    assert_eq!(status, 201, "{ret}");
    assert_eq!(ret["amount"], 4950, "{ret}");
    let return_id = ret["id"].as_str().expect("return id").to_string();
    let sent: Value = eventually("the refund to be sent", async || {
        let (_, r) = till.get(&format!("/v1/returns/{return_id}")).await;
        (r["refund_state"] == "sent").then_some(r)
    })
    .await;
    assert_eq!(sent["amount"], 4950, "{sent}");

    let refunds: Vec<_> = till
        .sandbox
        .effects()
        .into_iter()
        .filter(|e| e.kind == "refund")
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].id, transaction);
    assert_eq!(refunds[0].amount, 4950);
    let at_klarna = till
        .sandbox
        .transactions()
        .into_iter()
        .find(|t| t.payment_transaction_id == transaction)
        .expect("the sale's transaction at Klarna");
    assert_eq!(at_klarna.refunded_amount, 4950);
}
