//! Renders every screen, in every state a cashier meets, at every window size a till or a
//! customer display has, in every customer-view mode and every language, and fails on what a
//! cashier would see as broken: a control or text outside the window, covered, cut or broken
//! mid-word (see `support/layout_check.rs`). The pictures are kept under `target/screenshots/`
//! for a person to look at. Run with `cargo test -p kassa-ui --test layouts`.

#[path = "support/layout_check.rs"]
mod layout_check;

use std::path::PathBuf;

use i_slint_backend_testing::testing_backend::{TestingBackend, TestingBackendOptions};
use kassa_ui::Language;
use kassa_ui::amount::Currency;
use kassa_ui::bind;
use kassa_ui::manager_area::{
    DeviceRow, HealthRow, LogPaneView, ManagerAreaModel, OutboxRow, ReportPaneView, TransactionRow,
};
use kassa_ui::return_screen::{PurchaseLineSnapshot, PurchaseSnapshot, ReturnScreenModel};
use kassa_ui::sale_screen::{
    LineSnapshot, PaymentPhase, PaymentSnapshot, Product, Refusal, SaleScreenModel, SaleSnapshot,
    SaleStatus, TenderKind, TenderSnapshot,
};
use kassa_ui::screens::{CustomerWindow, ManagerArea, SaleScreen, TillWindow};
use kassa_ui::slint::{self, ComponentHandle, SharedPixelBuffer};
use kassa_ui::status_bar::{KlarnaHealth, StatusBarModel};
use kassa_ui::words::{tr as tr_rs, trf};

/// The cashier's window: the smallest a till's screen is, the usual ones, full HD.
const TILL_SIZES: [(u32, u32); 4] = [(800, 600), (1024, 768), (1280, 800), (1920, 1080)];
/// A customer display: the same, and a portrait screen on a stand.
const CUSTOMER_SIZES: [(u32, u32); 5] = [
    (800, 600),
    (1024, 768),
    (1280, 800),
    (1920, 1080),
    (1080, 1920),
];

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("screenshots").join("layouts");
    std::fs::create_dir_all(&dir).expect("target/screenshots can be made");
    dir
}

fn save(name: &str, pixels: &SharedPixelBuffer<slint::Rgba8Pixel>) {
    let path = screenshot_dir().join(format!("{name}-{}x{}.png", pixels.width(), pixels.height()));
    let file = std::fs::File::create(&path).expect("the screenshot file can be written");
    let mut png = png::Encoder::new(
        std::io::BufWriter::new(file),
        pixels.width(),
        pixels.height(),
    );
    png.set_color(png::ColorType::Rgba);
    png.set_depth(png::BitDepth::Eight);
    png.set_compression(png::Compression::Fast);
    let mut writer = png.write_header().expect("PNG header");
    writer
        .write_image_data(pixels.as_bytes())
        .expect("PNG data");
}

fn sek() -> Currency {
    "SEK".parse().expect("SEK")
}

fn line(line_no: i64, name: &str, quantity: i64, unit_price: i64) -> LineSnapshot {
    LineSnapshot {
        line_no,
        name: name.into(),
        quantity,
        unit_price,
        total: quantity * unit_price,
    }
}

fn sale(lines: Vec<LineSnapshot>) -> SaleSnapshot {
    let total = lines.iter().map(|l| l.total).sum();
    SaleSnapshot {
        sale_id: "0b9a3f0e-5d1c-4c1e-9a57-3d7e1a0c2b11".into(),
        status: SaleStatus::Open,
        currency: sek(),
        lines,
        total,
        due: total,
        tenders: vec![],
        receipt_no: None,
        attempts: 0,
        revision: 1,
        payment: None,
    }
}

fn basket() -> Vec<LineSnapshot> {
    vec![
        line(1, "T-shirt", 1, 11_800),
        line(2, "Socks, organic cotton, 3-pack", 2, 4_950),
        line(3, "Coffee mug", 1, 8_900),
        line(4, "Rain jacket", 1, 129_900),
    ]
}

fn products() -> Vec<Product> {
    [
        ("T-shirt", 11_800),
        ("Socks", 4_950),
        ("Coffee mug", 8_900),
        ("Rain jacket", 129_900),
        ("Tote bag", 2_500),
        ("Gift card", 50_000),
    ]
    .into_iter()
    .map(|(name, unit_price)| Product {
        name: name.into(),
        reference: name.to_lowercase(),
        unit_price,
    })
    .collect()
}

fn with_payment(mut s: SaleSnapshot, phase: PaymentPhase, reason: Option<&str>) -> SaleSnapshot {
    s.attempts += 1;
    s.payment = Some(PaymentSnapshot {
        attempt_id: format!("attempt-{}", s.attempts),
        phase,
        url: Some(
            "https://pay.klarna.com/eu/requests/krn:payment:eu1:request:6d1c2f3a/continue".into(),
        ),
        deadline_unix_ms: Some(NOW + 4 * 60_000),
        reason: reason.map(Into::into),
    });
    if phase == PaymentPhase::Paid {
        s.status = SaleStatus::Paid;
        s.receipt_no = Some(1042);
        s.due = 0;
    }
    s
}

const NOW: i64 = 1_796_000_000_000;

/// Everything a screen shows in one state: the sale screen's model, and what the agent pushes
/// to the other panes.
struct Scene {
    name: &'static str,
    sale: SaleScreenModel,
    manager: Option<ManagerScene>,
    returns: Option<ReturnScreenModel>,
    /// Nobody signed in and the till is locked, with the last refusal.
    locked: Option<&'static str>,
    selected_line: i32,
    /// "Cancel sale" was pressed: the question is up.
    confirm_void: bool,
}

#[derive(Clone, Copy)]
enum ManagerScene {
    Pin,
    Log,
    Reports,
    CloseDay,
    Status,
}

fn scenes(language: Language) -> Vec<Scene> {
    let model = || {
        let mut m = SaleScreenModel::new(language, sek());
        m.set_products(products());
        m
    };
    let scene = |name, sale| Scene {
        name,
        sale,
        manager: None,
        returns: None,
        locked: None,
        selected_line: -1,
        confirm_void: false,
    };
    let mut out = vec![];
    out.push(scene("sale-empty", model()));
    let mut m = model();
    m.sale_changed(sale(basket()));
    out.push(scene("sale", m.clone()));
    out.push(Scene {
        selected_line: 1,
        ..scene("sale-line-selected", m.clone())
    });
    out.push(Scene {
        confirm_void: true,
        ..scene("sale-confirm-cancel", m.clone())
    });
    let mut long = model();
    long.sale_changed(sale(
        (1..=24)
            .map(|i| line(i, &format!("Item number {i}"), i, 1_990 * i))
            .collect(),
    ));
    out.push(scene("sale-many-lines", long));

    let mut t = m.clone();
    t.open_tender();
    for k in ["2", "0", "0"] {
        t.keypad(k);
    }
    out.push(scene("tender-cash", t.clone()));
    t.set_card_mode(true);
    out.push(scene("tender-card", t));
    let mut p = m.clone();
    p.open_price(1);
    for k in ["3", "9"] {
        p.keypad(k);
    }
    out.push(scene("price", p));
    let mut d = m.clone();
    d.open_discount();
    d.keypad("1");
    d.keypad("0");
    out.push(scene("discount", d));

    let mut pay = m.clone();
    pay.sale_changed(with_payment(
        sale(basket()),
        PaymentPhase::AwaitingCustomer,
        None,
    ));
    out.push(scene("payment", pay.clone()));
    let mut opened = m.clone();
    opened.sale_changed(with_payment(
        sale(basket()),
        PaymentPhase::CustomerOpened,
        None,
    ));
    out.push(scene("payment-customer-opened", opened));

    let mut paid_sale = sale(basket());
    paid_sale.tenders = vec![TenderSnapshot {
        kind: TenderKind::Cash,
        amount: 20_000,
        given: 20_000,
        change: 0,
    }];
    let mut paid = m.clone();
    paid.sale_changed(with_payment(paid_sale, PaymentPhase::Paid, None));
    out.push(scene("result-paid", paid.clone()));
    paid.reprint_done(kassa_ui::sale_screen::Reprint::Failed(tr_rs(
        language,
        "cover open",
    )));
    out.push(scene("result-paid-reprint", paid));
    for (name, phase, reason) in [
        (
            "result-declined",
            PaymentPhase::Declined,
            Some("declined by the customer"),
        ),
        ("result-expired", PaymentPhase::Expired, None),
        ("result-in-doubt", PaymentPhase::InDoubt, None),
    ] {
        let mut r = m.clone();
        r.sale_changed(with_payment(sale(basket()), phase, reason));
        out.push(scene(name, r));
    }
    let mut off = m.clone();
    off.payment_starting();
    off.payment_refused(Refusal::KlarnaOffline);
    out.push(scene("result-klarna-offline", off));

    let mut locked = scene("sign-in", model());
    locked.locked = Some("wrong_pin");
    out.push(locked);

    for (name, which) in [
        ("manager-pin", ManagerScene::Pin),
        ("manager-log", ManagerScene::Log),
        ("manager-reports", ManagerScene::Reports),
        ("manager-close-day", ManagerScene::CloseDay),
        ("manager-status", ManagerScene::Status),
    ] {
        out.push(Scene {
            manager: Some(which),
            ..scene(name, model())
        });
    }

    let mut r = ReturnScreenModel::new(language);
    r.open();
    out.push(Scene {
        returns: Some(r.clone()),
        ..scene("return-find", model())
    });
    let transaction = "krn:payment:eu1:transaction:6d1c2f3a-0c4e-4a8e-9c1f-5b2e7d9a1c30";
    r.set_transaction_id(transaction);
    assert!(r.finding().is_some(), "the id is looked up");
    r.purchase_found(PurchaseSnapshot {
        transaction_id: transaction.into(),
        currency: sek(),
        refundable_amount: 160_500,
        lines: basket()
            .into_iter()
            .enumerate()
            .map(|(index, l)| PurchaseLineSnapshot {
                index,
                name: l.name,
                unit_price: l.unit_price,
                returnable: l.quantity,
            })
            .collect(),
    });
    r.add(0);
    r.add(1);
    assert!(r.has_purchase(), "the purchase is on the screen");
    out.push(Scene {
        returns: Some(r.clone()),
        ..scene("return-choose", model())
    });
    r.set_reason("Wrong size");
    assert!(r.refunding(false), "the refund is asked for");
    r.manager_needed("A refund above 1 000,00 kr needs a manager");
    out.push(Scene {
        returns: Some(r.clone()),
        ..scene("return-manager", model())
    });
    assert!(r.refunding(true), "the refund is asked for with a manager");
    r.refunded("REFUND\nT-shirt 1 × 118,00 kr\nSocks 1 × 49,50 kr\nTotal 167,50 kr");
    out.push(Scene {
        returns: Some(r),
        ..scene("return-done", model())
    });
    out
}

/// The panes as the agent's presenters fill them (in the screen's language).
fn manager_panes(language: Language) -> ManagerAreaModel {
    let t = |en: &str| tr_rs(language, en);
    ManagerAreaModel {
        transactions: (0..12)
            .map(|i| TransactionRow {
                time: format!("14:{i:02}"),
                amount: "1 605,00 kr".into(),
                state: format!(
                    "{} · {} · {}",
                    t("Receipt issued"),
                    trf(language, "Receipt {}", &[&format!("{}", 1040 + i)]),
                    t("paid")
                ),
            })
            .collect(),
        outbox: vec![OutboxRow {
            operation: format!("{} 49,50 kr", t("Refund")),
            state: trf(language, "waiting, next try {}", &["2026-12-07 14:05:00"]),
            attempts: trf(language, "{} tries", &["3"]),
        }],
        health: vec![HealthRow {
            category: t("Payment Request"),
            state: trf(
                language,
                "{} % of {} calls answered, slowest 1 % over {} ms",
                &["99,5", "212", "840"],
            ),
        }],
        devices: vec![DeviceRow {
            device: format!("{} (/dev/ttyUSB0)", t("Receipt printer")),
            state: t("out of paper"),
        }],
        no_devices: false,
    }
}

fn show(till: &TillWindow, customer: &CustomerWindow, scene: &Scene, language: Language) {
    let view = scene.sale.view(NOW);
    bind::show_sale(till, &view);
    bind::show_sale(customer, &view);
    till.global::<SaleScreen>()
        .set_selected_line(scene.selected_line);
    till.global::<SaleScreen>()
        .set_confirm_void(scene.confirm_void);
    let returns = scene.returns.as_ref().map(|r| r.view()).unwrap_or_default();
    bind::show_return(till, &returns);
    match scene.locked {
        Some(problem) => bind::show_staff(till, "", true, problem, false),
        None => bind::show_staff(till, "Ann Andersson (ann)", false, "", false),
    }
    let area = till.global::<ManagerArea>();
    match scene.manager {
        None => {
            area.set_open(false);
            bind::show_manager_area(till, &ManagerAreaModel::default(), false);
        }
        Some(which) => {
            area.set_open(true);
            let unlocked = !matches!(which, ManagerScene::Pin);
            bind::show_manager_area(till, &manager_panes(language), unlocked);
            bind::show_log_pane(
                till,
                &LogPaneView {
                    can_show_older: true,
                    ..LogPaneView::default()
                },
            );
            let report = matches!(which, ManagerScene::Reports | ManagerScene::CloseDay);
            bind::show_report_pane(
                till,
                &ReportPaneView {
                    text: if report {
                        self::report(language)
                    } else {
                        String::new()
                    },
                    confirming: matches!(which, ManagerScene::CloseDay),
                    still_open: if matches!(which, ManagerScene::CloseDay) {
                        [
                            trf(
                                language,
                                "Sale opened {} · lines: {} · {}",
                                &["14:02", "3", "167,50 kr"],
                            ),
                            trf(language, "Payments still in progress: {}", &["1"]),
                            trf(
                                language,
                                "Operations waiting for Klarna or a manager: {}",
                                &["2"],
                            ),
                        ]
                        .join("\n")
                    } else {
                        String::new()
                    },
                    can_ask: true,
                    has_printer: true,
                    can_print: report,
                    ..ReportPaneView::default()
                },
            );
            if report {
                click(till, &tr(language, "Reports"));
            } else if matches!(which, ManagerScene::Status) {
                click(till, &tr(language, "Till status"));
            } else if unlocked {
                click(till, &tr(language, "Transaction log"));
            }
        }
    }
}

/// A report as the agent lays it out for the screen (labels in the till's language).
fn report(language: Language) -> String {
    let t = |en: &str| tr_rs(language, en);
    format!(
        "{:^40}\n{:<21}{:>19}\n\nSEK\n{:<18}{:>5} {:>14}\n  {:<16}{:>5} {:>14}\n  {:<16}{:>5} {:>14}\n{}\n  {:<17}{:>20}\n  {:<17}{:>20}\n",
        t("X-REPORT (NOT A CLOSE)"),
        t("Terminal"),
        "till-2",
        t("Sales"),
        12,
        "1605.00",
        "Klarna",
        10,
        "1405.00",
        t("cash"),
        2,
        "200.00",
        t("Cash drawer"),
        t("float"),
        "500.00",
        t("expected"),
        "650.50",
    )
}

/// The English texts a Swedish or German screen must not show: every `@tr` text and every text
/// of the Rust side's table whose translation differs from it (a word that is the same in both
/// languages, such as "Status", is no mistake). A text with arguments is matched by the part
/// before its first argument.
fn english_only(language: Language) -> Vec<String> {
    if language == Language::English {
        return Vec::new();
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("lang/{}/LC_MESSAGES/kassa-ui.po", language.code()));
    let text = std::fs::read_to_string(path).expect("the catalogue reads");
    let mut english = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(id) = line
            .strip_prefix("msgid \"")
            .and_then(|l| l.strip_suffix('"'))
            && let Some(t) = lines
                .peek()
                .and_then(|l| l.strip_prefix("msgstr \""))
                .and_then(|l| l.strip_suffix('"'))
            && !id.is_empty()
            && id != t
        {
            english.push(id.to_string());
        }
    }
    english.extend(
        kassa_ui::words::english_texts()
            .filter(|en| kassa_ui::words::tr(language, en) != *en)
            .map(str::to_string),
    );
    english
}

/// `text` is `en`, or (for a text with arguments) begins as `en` does before its first one.
fn says(text: &str, en: &str) -> bool {
    match en.split_once("{}") {
        None => text == en,
        // Short fragments ("{}: {}", "Receipt {}") say nothing on their own.
        Some((before, _)) => before.trim().chars().count() >= 6 && text.starts_with(before),
    }
}

/// `msgid` as the screens say it in `language`, from the catalogue the build bundles.
fn tr(language: Language, msgid: &str) -> String {
    if language == Language::English {
        return msgid.to_string();
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("lang/{}/LC_MESSAGES/kassa-ui.po", language.code()));
    let text = std::fs::read_to_string(path).expect("the catalogue reads");
    let wanted = format!("msgid \"{msgid}\"");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == wanted
            && let Some(translated) = lines
                .next()
                .and_then(|l| l.strip_prefix("msgstr \""))
                .and_then(|l| l.strip_suffix('"'))
        {
            return translated.to_string();
        }
    }
    panic!("{msgid:?} has no {language} translation");
}

fn click(till: &TillWindow, label: &str) {
    i_slint_backend_testing::ElementHandle::find_by_accessible_label(till, label)
        .next()
        .unwrap_or_else(|| panic!("no {label:?} on the screen"))
        .invoke_accessible_default_action();
}

#[test]
fn every_screen_fits_every_size_mode_and_language() {
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    })))
    .expect("the testing platform is the first and only one");
    let till = TillWindow::new().expect("the cashier's window");
    let customer = CustomerWindow::new().expect("the customer's window");
    till.show().expect("shown");
    customer.show().expect("shown");

    let mut problems = Vec::new();
    let mut shots = 0;
    for language in Language::ALL {
        language.select().expect("the catalogue is bundled");
        let english = english_only(language);
        // The check below has teeth: it knows the English of this language's catalogues.
        if language != Language::English {
            assert!(english.iter().any(|en| says("Pay with Klarna", en)));
            assert!(english.iter().any(|en| says("Waiting to send: 2", en)));
            assert!(english.iter().any(|en| says("out of paper", en)));
        }
        let check_words = |name: &str, window: &slint::Window, problems: &mut Vec<String>| {
            if language == Language::English {
                return;
            }
            for text in layout_check::texts(window) {
                if let Some(en) = english.iter().find(|en| says(&text, en)) {
                    problems.push(format!(
                        "{name}: English {text:?} (from {en:?}) on a {language} screen"
                    ));
                }
            }
        };
        bind::show_status(
            &till,
            &StatusBarModel {
                klarna: KlarnaHealth::Degraded,
                pending_operations: 2,
                operations_need_attention: 1,
                device_problems: vec![trf(
                    language,
                    "{}: {}",
                    &[
                        &tr_rs(language, "Receipt printer"),
                        &tr_rs(language, "out of paper"),
                    ],
                )],
                maintenance_window: Some("2026-12-13 02:00–03:00".into()),
            },
        );
        for scene in scenes(language) {
            // While working on one screen: KASSA_LAYOUT_ONLY=sale checks the scenes named sale*.
            if let Ok(only) = std::env::var("KASSA_LAYOUT_ONLY")
                && !scene.name.starts_with(&only)
            {
                continue;
            }
            for split in [false, true] {
                for demo in [false, true] {
                    if demo && (split || language != Language::English) {
                        continue;
                    }
                    bind::use_split_layout(&till, split);
                    bind::show_demo_controls(&till, demo, false);
                    show(&till, &customer, &scene, language);
                    for (w, h) in TILL_SIZES {
                        till.window().set_size(slint::PhysicalSize::new(w, h));
                        let name = format!(
                            "{}{}{}-{language}",
                            scene.name,
                            if split { "-split" } else { "" },
                            if demo { "-demo" } else { "" }
                        );
                        // Drawn first: drawing brings every binding and `if` up to the new size,
                        // so the check sees what the picture shows.
                        let picture = till.window().take_snapshot().expect("drawn");
                        for p in layout_check::problems(till.window()) {
                            problems.push(format!("{name} {w}×{h}: {p}"));
                        }
                        if (w, h) == (1024, 768) {
                            check_words(&name, till.window(), &mut problems);
                        }
                        save(&name, &picture);
                        shots += 1;
                    }
                }
            }
            if scene.manager.is_none() && scene.returns.is_none() && scene.locked.is_none() {
                for (w, h) in CUSTOMER_SIZES {
                    customer.window().set_size(slint::PhysicalSize::new(w, h));
                    let name = format!("customer-{}-{language}", scene.name);
                    let picture = customer.window().take_snapshot().expect("drawn");
                    for p in layout_check::problems(customer.window()) {
                        problems.push(format!("{name} {w}×{h}: {p}"));
                    }
                    if (w, h) == (1024, 768) {
                        check_words(&name, customer.window(), &mut problems);
                    }
                    save(&name, &picture);
                    shots += 1;
                }
            }
        }
    }
    Language::English.select().expect("English");
    eprintln!(
        "{shots} screens checked and kept under {}",
        screenshot_dir().display()
    );
    assert!(
        problems.is_empty(),
        "{} layout problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
