//! Screenshots of every main screen, drawn by Slint's software renderer without a display, saved
//! as PNG under `target/screenshots/` at 1024×768 and 1920×1080; the payment screen's QR code is
//! read back from the pixels and must be exactly the payment link. Regenerate with
//! `cargo test -p kassa-tests --test ui_screenshots`.

use std::path::PathBuf;

use i_slint_backend_testing::testing_backend::{TestingBackend, TestingBackendOptions};
use i_slint_backend_testing::{ElementHandle, ElementRoot};
use kassa_agent::demo::demo_products;
use kassa_agent::payment::AttemptState;
use kassa_agent::screen::snapshot;
use kassa_agent::store::LineInput;
use kassa_agent::terminal::DoubtResolution;
use kassa_tests::{CustomerAction, Till};
use kassa_ui::amount::Currency;
use kassa_ui::manager_area::{DeviceRow, HealthRow, ManagerAreaModel, OutboxRow, TransactionRow};
use kassa_ui::sale_screen::{Refusal, SaleScreenModel};
use kassa_ui::screens::{CustomerWindow, ManagerArea, SaleScreen, TillWindow};
use kassa_ui::slint::{self, ComponentHandle, SharedPixelBuffer};
use kassa_ui::status_bar::{KlarnaHealth, StatusBarModel};
use kassa_ui::{Language, bind};

const SIZES: [(u32, u32); 2] = [(1024, 768), (1920, 1080)];

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots can be made");
    dir
}

/// Draws the window at `width`×`height` and returns its pixels.
fn draw(window: &slint::Window, width: u32, height: u32) -> SharedPixelBuffer<slint::Rgba8Pixel> {
    window.set_size(slint::PhysicalSize::new(width, height));
    window
        .take_snapshot()
        .expect("the software renderer draws the window")
}

fn save(name: &str, pixels: &SharedPixelBuffer<slint::Rgba8Pixel>) -> PathBuf {
    let path = screenshot_dir().join(format!("{name}-{}x{}.png", pixels.width(), pixels.height()));
    let file = std::fs::File::create(&path).expect("the screenshot file can be written");
    let mut png = png::Encoder::new(
        std::io::BufWriter::new(file),
        pixels.width(),
        pixels.height(),
    );
    png.set_color(png::ColorType::Rgba);
    png.set_depth(png::BitDepth::Eight);
    let mut writer = png.write_header().expect("PNG header");
    writer
        .write_image_data(pixels.as_bytes())
        .expect("PNG data");
    path
}

fn shoot(name: &str, window: &slint::Window) {
    for (w, h) in SIZES {
        save(name, &draw(window, w, h));
    }
}

/// Every QR code in the picture, decoded.
fn read_qr_codes(pixels: &SharedPixelBuffer<slint::Rgba8Pixel>) -> Vec<String> {
    let (w, h) = (pixels.width() as usize, pixels.height() as usize);
    let px = pixels.as_slice();
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = px[y * w + x];
        ((u16::from(p.r) * 3 + u16::from(p.g) * 6 + u16::from(p.b)) / 10) as u8
    });
    img.detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, content)| content))
        .collect()
}

fn has_label(window: &impl ElementRoot, label: &str) -> bool {
    ElementHandle::find_by_accessible_label(window, label)
        .next()
        .is_some()
}

#[test]
fn every_main_screen_renders_and_the_qr_code_reads_back_as_the_payment_link() {
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    })))
    .expect("the testing platform is the first and only one");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let till = rt.block_on(Till::start());
    let terminal = till.agent().terminal.clone();

    let till_window = TillWindow::new().expect("the cashier's window");
    let customer_window = CustomerWindow::new().expect("the customer's window");
    till_window.show().expect("shown");
    customer_window.show().expect("shown");
    bind::show_status(&till_window, &StatusBarModel::default());
    bind::show_manager_area(&till_window, &ManagerAreaModel::default(), false);
    let mut model = SaleScreenModel::new(Language::English, "SEK".parse::<Currency>().unwrap());
    model.set_products(demo_products());
    let now = chrono::Utc::now().timestamp_millis();
    let show = |model: &SaleScreenModel| {
        let view = model.view(now);
        bind::show_sale(&till_window, &view);
        bind::show_sale(&customer_window, &view);
    };

    // The sale screen with a few lines.
    let line = |name: &str, quantity, unit_price| LineInput {
        name: name.into(),
        reference: None,
        quantity,
        unit_price,
    };
    let sale = rt
        .block_on(terminal.open_sale(
            None,
            None,
            vec![
                line("T-shirt", 1, 11800),
                line("Socks", 2, 4950),
                line("Coffee mug", 1, 8900),
            ],
        ))
        .expect("sale opens");
    model.sale_changed(snapshot(&sale));
    show(&model);
    shoot("sale", till_window.window());

    // A tapped line gets the edit bar; the tender screen in cash and card mode, and in sv and de.
    till_window.global::<SaleScreen>().set_selected_line(1);
    assert!(has_label(&till_window, "Remove Socks"));
    shoot("sale-line-selected", till_window.window());
    till_window.global::<SaleScreen>().set_selected_line(-1);
    assert!(model.open_tender());
    for key in ["2", "0", "0"] {
        model.keypad(key);
    }
    show(&model);
    assert!(has_label(&till_window, "Take cash"));
    shoot("tender-cash", till_window.window());
    model.set_card_mode(true);
    show(&model);
    assert!(has_label(&till_window, "Card terminal reference"));
    shoot("tender-card", till_window.window());
    model.set_card_mode(false);
    for language in [Language::Swedish, Language::German] {
        language.select().expect("the catalogue is bundled");
        model.set_language(language);
        show(&model);
        shoot(&format!("tender-cash-{language}"), till_window.window());
    }
    Language::English.select().expect("English is always there");
    model.set_language(Language::English);
    model.close_tender();
    assert!(model.open_price(0));
    for key in ["1", "1", "0"] {
        model.keypad(key);
    }
    show(&model);
    assert!(has_label(&till_window, "Manager's PIN"));
    shoot("price", till_window.window());
    model.close_price();
    assert!(model.open_discount());
    for key in ["1", "0"] {
        model.keypad(key);
    }
    show(&model);
    assert!(has_label(&till_window, "Give discount"));
    shoot("discount", till_window.window());
    model.close_price();
    show(&model);

    // The payment screen: the QR code must read back as exactly the payment link.
    let attempt = rt
        .block_on(terminal.start_payment(&sale.sale.id, None, Default::default()))
        .expect("payment starts");
    let url = attempt
        .payment_request_url
        .clone()
        .expect("Klarna issued a payment link");
    let view = rt.block_on(terminal.sale(&sale.sale.id)).expect("sale");
    model.sale_changed(snapshot(&view));
    show(&model);
    for (w, h) in SIZES {
        let pixels = draw(till_window.window(), w, h);
        save("payment", &pixels);
        assert_eq!(
            read_qr_codes(&pixels),
            vec![url.clone()],
            "payment screen at {w}x{h}"
        );
        let pixels = draw(customer_window.window(), w, h);
        save("customer-payment", &pixels);
        assert_eq!(
            read_qr_codes(&pixels),
            vec![url.clone()],
            "customer window at {w}x{h}"
        );
    }

    // Split layout (one screen for both), as on a single-screen terminal.
    bind::use_split_layout(&till_window, true);
    shoot("payment-split", till_window.window());
    bind::use_split_layout(&till_window, false);

    // Declined: the retry choice.
    let request = attempt.klarna_request_id.clone().expect("request id");
    till.sandbox
        .customer(&request, CustomerAction::Decline)
        .expect("sandbox declines");
    let declined = rt.block_on(async {
        loop {
            let v = terminal.sale(&sale.sale.id).await.expect("sale");
            if v.payments.last().is_some_and(|a| a.state.is_final()) {
                break v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    model.sale_changed(snapshot(&declined));
    show(&model);
    assert!(has_label(&till_window, "Try again"));
    shoot("result-declined", till_window.window());

    // Klarna offline, said plainly; the status bar says it too.
    model.payment_starting();
    model.payment_refused(Refusal::KlarnaOffline);
    show(&model);
    bind::show_status(
        &till_window,
        &StatusBarModel {
            klarna: KlarnaHealth::Offline,
            pending_operations: 2,
            operations_need_attention: 1,
            device_problems: vec!["Printer: out of paper".into()],
            maintenance_window: Some("Sun 02:00–03:00".into()),
        },
    );
    assert!(has_label(&till_window, "Klarna is offline"));
    shoot("result-klarna-offline", till_window.window());
    bind::show_status(&till_window, &StatusBarModel::default());

    // Paid, with the receipt number.
    model.payment_starting();
    let retry = rt
        .block_on(terminal.start_payment(&sale.sale.id, None, Default::default()))
        .expect("payment starts again");
    let request = retry.klarna_request_id.clone().expect("request id");
    // Klarna charges, but its answer cannot be placed: the payment is in doubt, said plainly,
    // with no way to take a second payment; a manager then finds it at Klarna.
    till.sandbox.fault(
        Some("final_authorize"),
        kassa_tests::Fault::Unplaceable,
        None,
    );
    till.sandbox
        .customer(&request, CustomerAction::Approve)
        .expect("sandbox approves");
    let in_doubt = rt.block_on(async {
        loop {
            let v = terminal.sale(&sale.sale.id).await.expect("sale");
            if v.payments
                .last()
                .is_some_and(|a| a.state == AttemptState::InDoubt)
            {
                break v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    model.sale_changed(snapshot(&in_doubt));
    show(&model);
    assert!(has_label(&till_window, "Payment may have gone through"));
    assert!(!has_label(&till_window, "Try again"));
    assert!(!has_label(&till_window, "Other payment method"));
    shoot("result-in-doubt", till_window.window());
    for language in [Language::Swedish, Language::German] {
        language.select().expect("the catalogue is bundled");
        model.set_language(language);
        show(&model);
        shoot(&format!("result-in-doubt-{language}"), till_window.window());
    }
    Language::English.select().expect("English is always there");
    model.set_language(Language::English);
    rt.block_on(till.set_manager_pin("2468", "mia"));
    let tx = till.sandbox.transactions()[0]
        .payment_transaction_id
        .clone();
    let attempt_id = in_doubt.payments.last().expect("attempt").id.clone();
    rt.block_on(terminal.resolve_doubt(
        &attempt_id,
        DoubtResolution::Paid {
            klarna_transaction_id: tx,
        },
        "mia",
        Some("2468".into()),
        None,
    ))
    .expect("the manager finds the payment at Klarna");
    let paid = rt.block_on(async {
        loop {
            let v = terminal.sale(&sale.sale.id).await.expect("sale");
            if v.payments.last().is_some_and(|a| a.state.is_final()) {
                break v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    model.sale_changed(snapshot(&paid));
    show(&model);
    assert!(has_label(&till_window, "Reprint receipt"));
    shoot("result-paid", till_window.window());
    shoot("customer-paid", customer_window.window());

    // The manager area: the PIN pad, then the panes.
    till_window.global::<ManagerArea>().set_open(true);
    shoot("manager-pin", till_window.window());
    bind::show_manager_area(
        &till_window,
        &ManagerAreaModel {
            transactions: vec![TransactionRow {
                time: "14:02".into(),
                amount: "SEK 217.00".into(),
                state: "paid".into(),
            }],
            outbox: vec![OutboxRow {
                operation: "refund SEK 49.50".into(),
                state: "waiting for Klarna".into(),
                attempts: "3".into(),
            }],
            health: vec![HealthRow {
                category: "authorize".into(),
                state: "online".into(),
            }],
            devices: vec![DeviceRow {
                device: "Receipt printer".into(),
                state: "out of paper".into(),
            }],
            no_devices: false,
        },
        true,
    );
    shoot("manager", till_window.window());
    till_window.global::<ManagerArea>().set_open(false);

    // The till locked until a member of staff signs in, after a wrong PIN.
    bind::show_staff(&till_window, "", true, "wrong_pin", false);
    assert!(has_label(&till_window, "Unknown staff id or wrong PIN"));
    assert!(has_label(&till_window, "Staff id"));
    shoot("sign-in", till_window.window());
    bind::show_staff(&till_window, "Ann (ann)", false, "", false);
    assert!(!has_label(&till_window, "Staff id"));
    assert!(has_label(&till_window, "Signed in"));

    // Swedish and German, chosen at run time from the bundled catalogues.
    model.sale_closed();
    model.sale_changed(snapshot(&sale));
    for (language, pay) in [
        (Language::Swedish, "Betala med Klarna"),
        (Language::German, "Mit Klarna bezahlen"),
    ] {
        language.select().expect("the catalogue is bundled");
        model.set_language(language);
        show(&model);
        assert!(has_label(&till_window, pay), "{language}: {pay}");
        shoot(&format!("sale-{language}"), till_window.window());
    }
    Language::English.select().expect("English is always there");

    drop(till_window);
    drop(customer_window);
    rt.block_on(async move { drop(till) });
}
