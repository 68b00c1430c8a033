//! Benchmarks the screens' two hot paths the way a till runs them, no display needed: a sale's
//! state change applied through `bind` until the 1280×800 window's next frame is drawn by the
//! software renderer, and the payment QR code's generation plus upload.
//! Run with `cargo run -p kassa-ui --release --example render_bench`; prints p50/p99/max.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kassa_ui::amount::Currency;
use kassa_ui::sale_screen::{
    LineSnapshot, PaymentPhase, PaymentSnapshot, SaleScreenModel, SaleSnapshot, SaleStatus,
};
use kassa_ui::screens::TillWindow;
use kassa_ui::slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use kassa_ui::slint::platform::{Platform, WindowAdapter};
use kassa_ui::slint::{self, ComponentHandle, PlatformError, Rgb8Pixel};
use kassa_ui::{Language, bind};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;
/// Sale cycles in the state-change run; each is about a dozen state changes.
const CYCLES: usize = 60;
const URL: &str =
    "https://pay.klarna.com/eu/requests/2b1f0c7e-8d4f-4f6e-9a57-0c3a1d2b7e11/qr?token=Zm9vYmFy";

/// Hands out the bench's windows in the order the components are made: one per component,
/// like a till's platform (winit or linuxkms) gives each window its own surface.
struct BenchPlatform {
    windows: RefCell<VecDeque<Rc<MinimalSoftwareWindow>>>,
}

impl Platform for BenchPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, PlatformError> {
        match self.windows.borrow_mut().pop_front() {
            Some(w) => Ok(w),
            None => Err(PlatformError::Other(
                "the bench made more windows than it set up".into(),
            )),
        }
    }
}

/// A till window rendered by the software renderer into its own frame buffer.
struct Screen {
    ui: TillWindow,
    surface: Rc<MinimalSoftwareWindow>,
    buffer: Vec<Rgb8Pixel>,
    model: SaleScreenModel,
}

impl Screen {
    fn new(surface: Rc<MinimalSoftwareWindow>) -> Result<Screen, PlatformError> {
        let ui = TillWindow::new()?;
        surface.set_size(slint::PhysicalSize::new(WIDTH, HEIGHT));
        ui.show()?;
        let mut screen = Screen {
            ui,
            surface,
            buffer: vec![Rgb8Pixel::new(0, 0, 0); (WIDTH * HEIGHT) as usize],
            model: SaleScreenModel::new(Language::Swedish, "SEK".parse::<Currency>().unwrap()),
        };
        screen.frame();
        Ok(screen)
    }

    /// Draws the next frame if anything changed; only the dirty region when the window reuses
    /// its buffer. Returns whether anything was drawn.
    fn frame(&mut self) -> bool {
        slint::platform::update_timers_and_animations();
        let buffer = &mut self.buffer;
        self.surface.draw_if_needed(|renderer| {
            renderer.render(buffer, WIDTH as usize);
        })
    }

    /// One state change from the agent, shown and drawn; the time it took.
    fn change(&mut self, step: &Step, now_ms: i64) -> Duration {
        let start = Instant::now();
        match step {
            Step::Sale(s) => {
                self.model.sale_changed(SaleSnapshot::clone(s));
            }
            Step::NewSale => self.model.sale_closed(),
        }
        bind::show_sale(&self.ui, &self.model.view(now_ms));
        self.frame();
        start.elapsed()
    }
}

/// What the agent reports, in the order a cashier's sale produces it.
enum Step {
    Sale(Box<SaleSnapshot>),
    NewSale,
}

fn sale(id: &str, lines: usize, payment: Option<(PaymentPhase, String, usize)>) -> SaleSnapshot {
    let status = match payment {
        Some((PaymentPhase::Paid, _, _)) => SaleStatus::Paid,
        _ => SaleStatus::Open,
    };
    SaleSnapshot {
        sale_id: id.into(),
        status,
        currency: "SEK".parse::<Currency>().unwrap(),
        lines: (0..lines)
            .map(|i| LineSnapshot {
                line_no: i as i64 + 1,
                name: format!("Item {i}"),
                quantity: 1 + i as i64 % 3,
                unit_price: 4950,
                total: 4950 * (1 + i as i64 % 3),
            })
            .collect(),
        total: (0..lines).map(|i| 4950 * (1 + i as i64 % 3)).sum(),
        due: if matches!(status, SaleStatus::Paid) {
            0
        } else {
            (0..lines).map(|i| 4950 * (1 + i as i64 % 3)).sum()
        },
        tenders: vec![],
        revision: lines as i64,
        receipt_no: matches!(status, SaleStatus::Paid).then_some(1000),
        attempts: payment.as_ref().map_or(0, |p| p.2),
        payment: payment.map(|(phase, url, attempt)| PaymentSnapshot {
            attempt_id: format!("{id}-a{attempt}"),
            phase,
            url: Some(url),
            deadline_unix_ms: Some(300_000),
            reason: None,
        }),
    }
}

/// A sale as the till sees it: items scanned one by one, a payment the customer opens and
/// declines, a retry with a new payment link that is approved and paid, then the next customer.
fn sale_cycle(n: usize) -> Vec<Step> {
    let id = format!("sale-{n}");
    let lines = 3 + n % 8;
    let mut steps: Vec<Step> = (1..=lines)
        .map(|l| Step::Sale(Box::new(sale(&id, l, None))))
        .collect();
    let (first, second) = (format!("{URL}&n={n}&a=1"), format!("{URL}&n={n}&a=2"));
    for (phase, url, attempt) in [
        (PaymentPhase::AwaitingCustomer, &first, 1),
        (PaymentPhase::CustomerOpened, &first, 1),
        (PaymentPhase::Declined, &first, 1),
        (PaymentPhase::AwaitingCustomer, &second, 2),
        (PaymentPhase::CustomerOpened, &second, 2),
        (PaymentPhase::Paid, &second, 2),
    ] {
        steps.push(Step::Sale(Box::new(sale(
            &id,
            lines,
            Some((phase, url.clone(), attempt)),
        ))));
    }
    steps.push(Step::NewSale);
    steps
}

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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Two windows: the till's (reused buffer, so only dirty regions are drawn, as on a real
    // till) and a baseline that repaints every pixel of every frame.
    let partial = MinimalSoftwareWindow::new(RepaintBufferType::ReusedBuffer);
    let full = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
    slint::platform::set_platform(Box::new(BenchPlatform {
        windows: RefCell::new(VecDeque::from([partial.clone(), full.clone()])),
    }))?;
    let mut till = Screen::new(partial)?;
    let mut baseline = Screen::new(full)?;
    println!(
        "kassa render bench: TillWindow at {WIDTH}x{HEIGHT}, Slint software renderer into an RGB8 \
         buffer; load average before: {}",
        load_average()
    );

    let (mut changes, mut full_frames, mut unchanged) = (Vec::new(), Vec::new(), Vec::new());
    let mut now_ms = 0;
    for n in 0..CYCLES {
        for step in sale_cycle(n) {
            now_ms += 1000;
            changes.push(till.change(&step, now_ms));
            full_frames.push(baseline.change(&step, now_ms));
            // The floor: a frame asked for with nothing changed.
            let start = Instant::now();
            till.surface.request_redraw();
            till.frame();
            unchanged.push(start.elapsed());
        }
    }
    report(
        "state change via bind -> next frame, dirty regions only (ReusedBuffer; the target)",
        changes,
    );
    report(
        "baseline: same state changes, every pixel repainted (NewBuffer)",
        full_frames,
    );
    report("baseline: frame with nothing changed", unchanged);

    // QR generation and upload: each payment attempt has a new link, so every call encodes,
    // draws the pixels and makes the Slint image.
    let mut codes = Vec::new();
    for i in 0..2000 {
        let url = format!("{URL}&n={i}");
        let start = Instant::now();
        let image = bind::qr_image(&url);
        codes.push(start.elapsed());
        assert!(image.is_some(), "a payment link fits in a QR code");
    }
    report(
        "QR generation + upload, new link each time (1 px per module)",
        codes,
    );
    let mut cached = Vec::new();
    for _ in 0..2000 {
        let start = Instant::now();
        std::hint::black_box(bind::qr_image(URL));
        cached.push(start.elapsed());
    }
    report(
        "baseline: QR for the link already shown (the other window, re-sent views)",
        cached,
    );
    println!("load average after: {}", load_average());
    Ok(())
}
