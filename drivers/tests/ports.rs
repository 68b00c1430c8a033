//! The devices over real pseudo-terminals, played by kassa-sim's simulated peripherals: what the
//! customer sees, what the printer prints, what the till receives when something is scanned or
//! swiped, and what happens when a cable is pulled and plugged back in.
//! All tests share one lock: pty pairs must not be created from several threads at once.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kassa_drivers::gs1::Gs1Field;
use kassa_drivers::{
    BarcodeScanner, CardBrand, CardReader, CardReaderConfig, CardSwipe, CustomerDisplay,
    DeviceState, DisplayCommandSet, DisplayConfig, DisplayScreen, DriverError, PortConfig,
    PrinterConfig, Receipt, ReceiptLine, ReceiptPrinter, Scan, ScanSuffix, ScannerConfig,
    Symbology,
};
use kassa_sim::devices::{
    SimCardReader, SimDisplay, SimDisplayCommandSet, SimPrinter, SimScanner, SimScannerSettings,
    wait_until,
};
use tokio::sync::watch;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Generous: CI machines are slow; the tests finish as soon as the outcome is there.
const DEADLINE: Duration = Duration::from_secs(10);

fn port(path: &std::path::Path) -> PortConfig {
    PortConfig {
        max_backoff_ms: 100,
        ..PortConfig::at(path)
    }
}

fn wait_state(
    state: &watch::Receiver<DeviceState>,
    want: impl Fn(&DeviceState) -> bool,
) -> DeviceState {
    wait_until(DEADLINE, || {
        let s = state.borrow().clone();
        want(&s).then_some(s)
    })
    .unwrap_or_else(|| panic!("device state stayed {:?}", *state.borrow()))
}

fn connected(state: &watch::Receiver<DeviceState>) {
    wait_state(state, |s| *s == DeviceState::Connected);
}

fn wait_screen(display: &SimDisplay, expected: [&str; 2]) {
    let expected = expected.map(String::from);
    wait_until(DEADLINE, || (display.screen() == expected).then_some(())).unwrap_or_else(|| {
        panic!(
            "display shows {:?}, expected {expected:?}",
            display.screen()
        )
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn the_customer_sees_the_item_and_total_on_an_epson_display() {
    let _serial = serial();
    let (sim, path) = SimDisplay::start(SimDisplayCommandSet::Epson).expect("sim display");
    let display = CustomerDisplay::open(&DisplayConfig {
        port: port(&path),
        ..DisplayConfig::default()
    })
    .expect("display");
    connected(&display.state());
    let labels = display.labels().clone();
    display
        .show(DisplayScreen::item(
            &labels,
            "Smörgås med räksallad",
            "89,00 kr",
            "118,00 kr",
        ))
        .expect("show");
    wait_screen(&sim, ["Smörgås med 89,00 kr", "Total      118,00 kr"]);
    assert_eq!(sim.code_table(), Some(19), "PC858 selected");

    // The same screen again sends nothing; a new total sends only the changed cells.
    let before = sim.bytes_received();
    display
        .show(DisplayScreen::item(
            &labels,
            "Smörgås med räksallad",
            "89,00 kr",
            "118,00 kr",
        ))
        .expect("show");
    display
        .show(DisplayScreen::item(
            &labels,
            "Smörgås med räksallad",
            "89,00 kr",
            "207,00 kr",
        ))
        .expect("show");
    wait_screen(&sim, ["Smörgås med 89,00 kr", "Total      207,00 kr"]);
    assert!(
        sim.bytes_received() - before < 20,
        "only changed cells re-sent"
    );
}

#[test]
fn the_customer_sees_the_qr_prompt_on_a_cd5220_display() {
    let _serial = serial();
    let (sim, path) = SimDisplay::start(SimDisplayCommandSet::Cd5220).expect("sim display");
    let display = CustomerDisplay::open(&DisplayConfig {
        port: port(&path),
        command_set: DisplayCommandSet::Cd5220,
        ..DisplayConfig::default()
    })
    .expect("display");
    connected(&display.state());
    display
        .show(DisplayScreen::scan_to_pay(display.labels(), "1 234,50 €"))
        .expect("show");
    wait_screen(&sim, ["  Scan the QR code  ", "to pay    1 234,50 €"]);
}

fn scanner(settings: SimScannerSettings, suffix: ScanSuffix) -> (SimScanner, BarcodeScanner) {
    let (sim, path) = SimScanner::start(settings).expect("sim scanner");
    let scanner = BarcodeScanner::open(&ScannerConfig {
        port: port(&path),
        suffix,
        timeout_ms: 50,
    })
    .expect("scanner");
    connected(&scanner.state());
    (sim, scanner)
}

fn next_scan(scanner: &mut BarcodeScanner) -> Scan {
    wait_until(DEADLINE, || scanner.try_next_scan()).expect("a scan arrives")
}

#[test]
fn scans_are_framed_by_suffix_with_aim_ids_and_noise() {
    let _serial = serial();
    let (sim, mut scanner) = scanner(
        SimScannerSettings {
            suffix: b"\r\n".to_vec(),
            noise: true,
        },
        ScanSuffix::CrLf,
    );
    sim.scan_with_aim(Some("]E0"), b"4006381333931")
        .expect("scan");
    sim.scan_with_aim(Some("]E4"), b"96385074").expect("scan");
    sim.scan_with_aim(Some("]d2"), b"01095060001343521726123110AB12\x1d21S1")
        .expect("scan");
    let txn = "krn:payment:eu1:transaction:6d1e4b9a-3f8e-4c7b-9a51-2f0c8d7e1a23";
    sim.scan_with_aim(Some("]Q1"), txn.as_bytes())
        .expect("scan");
    sim.scan_with_aim(Some("]Q1"), b"klarna-interop:tok_123")
        .expect("scan");
    assert_eq!(next_scan(&mut scanner), Scan::product("04006381333931"));
    assert_eq!(next_scan(&mut scanner), Scan::product("00000096385074"));
    assert_eq!(
        next_scan(&mut scanner),
        Scan::Product {
            gtin: "09506000134352".into(),
            batch: Some("AB12".into()),
            expiry: Some("261231".into()),
            serial: Some("S1".into()),
            addon: None,
            fields: [
                ("01", "09506000134352"),
                ("17", "261231"),
                ("10", "AB12"),
                ("21", "S1"),
            ]
            .map(|(ai, value)| Gs1Field {
                ai: ai.into(),
                value: value.into(),
            })
            .to_vec(),
            problems: Vec::new(),
        }
    );
    assert_eq!(
        next_scan(&mut scanner),
        Scan::Text {
            text: txn.into(),
            symbology: Some(Symbology::Qr)
        }
    );
    assert_eq!(
        next_scan(&mut scanner),
        Scan::Text {
            text: "klarna-interop:tok_123".into(),
            symbology: Some(Symbology::Qr)
        }
    );
}

#[test]
fn a_scanner_without_suffix_is_framed_by_silence() {
    let _serial = serial();
    let (sim, mut scanner) = scanner(
        SimScannerSettings {
            suffix: Vec::new(),
            noise: false,
        },
        ScanSuffix::Cr,
    );
    sim.scan(b"4006381333931").expect("scan");
    assert_eq!(next_scan(&mut scanner), Scan::product("04006381333931"));
    // A link that turns CR LF into LF LF, on a scanner set to CR LF.
    let (sim, mut scanner) = self::scanner(
        SimScannerSettings {
            suffix: b"\n\n".to_vec(),
            noise: false,
        },
        ScanSuffix::CrLf,
    );
    sim.scan(b"96385074").expect("scan");
    sim.scan(b"036000291452").expect("scan");
    assert_eq!(next_scan(&mut scanner), Scan::product("00000096385074"));
    assert_eq!(next_scan(&mut scanner), Scan::product("00036000291452"));
    assert_eq!(
        scanner.try_next_scan(),
        None,
        "LF LF is one terminator, no empty scans"
    );
}

#[test]
fn the_printed_receipt_carries_the_transaction_id_as_its_qr_code() {
    let _serial = serial();
    let (sim, path) = SimPrinter::start().expect("sim printer");
    let printer = ReceiptPrinter::open(&PrinterConfig {
        port: port(&path),
        width: 32,
        status_interval_ms: 50,
        ..PrinterConfig::default()
    })
    .expect("printer");
    connected(&printer.state());
    let txn = "krn:payment:eu1:transaction:6d1e4b9a-3f8e-4c7b-9a51-2f0c8d7e1a23";
    let receipt = Receipt {
        header: vec!["Kafé Ängen".into()],
        lines: vec![
            ReceiptLine::new("Kaffe", "25,00"),
            ReceiptLine::new("Kanelbulle", "35,00"),
        ],
        totals: vec![ReceiptLine::new("Totalt", "60,00 kr")],
        payment: vec!["Betalt med Klarna".into()],
        qr_data: Some(txn.into()),
        footer: vec!["Välkommen åter!".into()],
        ..Default::default()
    };
    let rt = runtime();
    rt.block_on(printer.print(receipt)).expect("printed");
    rt.block_on(printer.open_drawer()).expect("drawer");
    let printed = wait_until(DEADLINE, || sim.receipts().pop()).expect("a receipt");
    assert_eq!(printed.qr_codes, vec![txn.to_string()]);
    assert!(printed.cut);
    assert!(
        printed.lines.contains(&"Kafé Ängen".to_string()),
        "{:?}",
        printed.lines
    );
    assert!(
        printed
            .lines
            .contains(&"Kanelbulle                 35,00".to_string()),
        "{:?}",
        printed.lines
    );
    assert!(
        printed.lines.contains(&"Välkommen åter!".to_string()),
        "{:?}",
        printed.lines
    );
    wait_until(DEADLINE, || (sim.drawer_kicks() == 1).then_some(())).expect("drawer kicked");
}

#[test]
fn paper_out_and_cover_open_become_device_states_and_refuse_receipts() {
    let _serial = serial();
    let (sim, path) = SimPrinter::start().expect("sim printer");
    let printer = ReceiptPrinter::open(&PrinterConfig {
        port: port(&path),
        status_interval_ms: 20,
        ..PrinterConfig::default()
    })
    .expect("printer");
    connected(&printer.state());
    let rt = runtime();

    sim.set_paper_out(true);
    wait_state(&printer.state(), |s| *s == DeviceState::PaperOut);
    let refused = rt.block_on(printer.print(Receipt {
        header: vec!["x".into()],
        ..Receipt::default()
    }));
    assert!(matches!(refused, Err(DriverError::PaperOut)), "{refused:?}");
    assert!(sim.receipts().is_empty());

    sim.set_paper_out(false);
    sim.set_cover_open(true);
    wait_state(&printer.state(), |s| *s == DeviceState::CoverOpen);
    sim.set_cover_open(false);
    connected(&printer.state());
    rt.block_on(printer.print(Receipt {
        header: vec!["x".into()],
        ..Receipt::default()
    }))
    .expect("printed");
}

#[test]
fn an_unplugged_display_comes_back_and_shows_the_latest_screen() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("ttyUSB0");
    let (mut sim, path) =
        SimDisplay::start_at(SimDisplayCommandSet::Epson, Some(&link)).expect("sim display");
    assert_eq!(path, link);
    let display = CustomerDisplay::open(&DisplayConfig {
        port: port(&path),
        ..DisplayConfig::default()
    })
    .expect("display");
    let state = display.state();
    connected(&state);
    display
        .show(DisplayScreen::text("before", "unplug"))
        .expect("show");
    wait_screen(&sim, ["before              ", "unplug              "]);

    sim.port().unplug();
    wait_state(&state, |s| matches!(s, DeviceState::Disconnected { .. }));
    // The sale goes on while the display is away.
    display
        .show(DisplayScreen::text("while", "unplugged"))
        .expect("show");

    sim.port().replug().expect("replug");
    connected(&state);
    wait_screen(&sim, ["while               ", "unplugged           "]);
    display
        .show(DisplayScreen::text("after", "replug"))
        .expect("show");
    wait_screen(&sim, ["after               ", "replug              "]);
}

#[test]
fn an_unplugged_printer_refuses_receipts_until_it_returns() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("ttyUSB1");
    let (mut sim, path) = SimPrinter::start_at(Some(&link)).expect("sim printer");
    let printer = ReceiptPrinter::open(&PrinterConfig {
        port: port(&path),
        status_interval_ms: 50,
        ..PrinterConfig::default()
    })
    .expect("printer");
    let state = printer.state();
    connected(&state);
    sim.port().unplug();
    wait_state(&state, |s| matches!(s, DeviceState::Disconnected { .. }));
    let rt = runtime();
    let refused = rt.block_on(printer.print(Receipt {
        header: vec!["x".into()],
        ..Receipt::default()
    }));
    assert!(
        matches!(refused, Err(DriverError::Disconnected(_))),
        "{refused:?}"
    );
    sim.port().replug().expect("replug");
    connected(&state);
    rt.block_on(printer.print(Receipt {
        header: vec!["again".into()],
        ..Receipt::default()
    }))
    .expect("printed");
    let printed = wait_until(DEADLINE, || sim.receipts().pop()).expect("a receipt");
    assert_eq!(printed.lines.first().map(String::as_str), Some("again"));
}

#[test]
fn a_payment_card_swipe_yields_only_brand_and_last_four() {
    let _serial = serial();
    let (sim, path) = SimCardReader::start().expect("sim reader");
    let mut reader = CardReader::open(&CardReaderConfig {
        port: port(&path),
        loyalty_prefixes: vec!["9752".into()],
        timeout_ms: 50,
    })
    .expect("reader");
    connected(&reader.state());
    sim.swipe(
        Some("%B4111111111111111^DOE/JOHN^29121010000000000000?"),
        Some(";4111111111111111=29121010000000000000?"),
    )
    .expect("swipe");
    let swipe = wait_until(DEADLINE, || reader.try_next_swipe()).expect("a swipe");
    let CardSwipe::Payment(card) = &swipe else {
        panic!("expected a payment card, got {swipe:?}");
    };
    assert_eq!((card.brand(), card.last4()), (CardBrand::Visa, "1111"));
    let shown = format!("{swipe:?} {swipe:#?} {card:?}");
    assert!(
        !shown.contains("4111111111111111") && !shown.contains("DOE"),
        "{shown}"
    );

    sim.swipe(None, Some(";9752000012345678=0000?"))
        .expect("swipe");
    let swipe = wait_until(DEADLINE, || reader.try_next_swipe()).expect("a swipe");
    assert!(
        matches!(&swipe, CardSwipe::Loyalty(l) if l.number == "9752000012345678"),
        "{swipe:?}"
    );
}
