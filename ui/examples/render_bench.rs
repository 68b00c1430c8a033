//! Benchmarks the screens' two hot paths with Slint's software renderer, no display needed:
//! a sale's state change until its frame is drawn at 1280×800, and QR code generation plus upload.
//! Run with `cargo run -p kassa-ui --release --example render_bench`; prints p50/p99/max.

use std::time::{Duration, Instant};

use i_slint_backend_testing::testing_backend::{TestingBackend, TestingBackendOptions};
use kassa_ui::amount::Currency;
use kassa_ui::sale_screen::{
    LineSnapshot, PaymentPhase, PaymentSnapshot, SaleScreenModel, SaleSnapshot, SaleStatus,
};
use kassa_ui::screens::TillWindow;
use kassa_ui::slint::{self, ComponentHandle};
use kassa_ui::{Language, bind, qr};

const URL: &str =
    "https://pay.klarna.com/eu/requests/2b1f0c7e-8d4f-4f6e-9a57-0c3a1d2b7e11/qr?token=Zm9vYmFy";

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{what}: n={} p50={:.3} ms p99={:.3} ms max={:.3} ms",
        samples.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
    );
}

fn sale(lines: usize, phase: Option<PaymentPhase>) -> SaleSnapshot {
    SaleSnapshot {
        sale_id: "bench".into(),
        status: SaleStatus::Open,
        currency: Currency::new("SEK", 2),
        lines: (0..lines)
            .map(|i| LineSnapshot {
                name: format!("Item {i}"),
                quantity: 1 + i as i64 % 3,
                unit_price: 4950,
                total: 4950 * (1 + i as i64 % 3),
            })
            .collect(),
        total: 4950 * lines as i64,
        receipt_no: None,
        attempts: usize::from(phase.is_some()),
        payment: phase.map(|phase| PaymentSnapshot {
            attempt_id: "a1".into(),
            phase,
            url: Some(URL.into()),
            deadline_unix_ms: Some(300_000),
            reason: None,
        }),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    })))?;
    let window = TillWindow::new()?;
    window.show()?;
    window
        .window()
        .set_size(slint::PhysicalSize::new(1280, 800));

    // State change → frame: each iteration applies a new sale state (a line added, or the
    // payment moving on) and draws the whole window into a buffer.
    let mut frames = Vec::new();
    for i in 0..400usize {
        let mut model = SaleScreenModel::new(Language::Swedish, Currency::new("SEK", 2));
        let snapshot = match i % 4 {
            0 => sale(3 + i % 10, None),
            1 => sale(3 + i % 10, Some(PaymentPhase::AwaitingCustomer)),
            2 => sale(3 + i % 10, Some(PaymentPhase::CustomerOpened)),
            _ => sale(3 + i % 10, Some(PaymentPhase::Declined)),
        };
        let start = Instant::now();
        model.sale_changed(snapshot);
        bind::show_sale(&window, &model.view(0));
        let frame = window.window().take_snapshot()?;
        std::hint::black_box(frame);
        frames.push(start.elapsed());
    }
    report(
        "state change -> rendered frame (1280x800, software)",
        frames,
    );

    // QR generation and upload: encode, draw the pixels, make the Slint image.
    let mut codes = Vec::new();
    for i in 0..1000 {
        let url = format!("{URL}{i}");
        let start = Instant::now();
        let image = slint::Image::from_rgb8(qr::payment_qr(&url, qr::PIXELS_PER_MODULE)?);
        std::hint::black_box(image);
        codes.push(start.elapsed());
    }
    report("QR generation + upload", codes);
    Ok(())
}
