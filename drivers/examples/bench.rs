//! Benchmark (figures, not pass/fail) for issue 4: scan-to-event latency over a real
//! pseudo-terminal, with suffix-terminated and with timeout-terminated framing, and the bytes a
//! customer display update costs after a line is added, against a full redraw in the same run.
//!
//! Run: `cargo run --release -p kassa-drivers --example bench [-- SCANS]`

use std::time::{Duration, Instant};

use kassa_drivers::display::DisplayEncoder;
use kassa_drivers::{
    BarcodeScanner, CustomerDisplay, DeviceState, DisplayCommandSet, DisplayConfig, DisplayScreen,
    PortConfig, ScanSuffix, ScannerConfig, ScreenLabels,
};
use kassa_sim::devices::{SimDisplay, SimDisplayCommandSet, SimScanner, SimScannerSettings};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The scanner's inter-character timeout: the driver's default.
const SILENCE_MS: u64 = 50;

fn main() -> BenchResult<()> {
    let scans: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 300,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("kassa-drivers bench: {scans} scans per framing, pseudo-terminals, {build} build");
    println!("load average at start: {}", load_average());

    let suffix = rt.block_on(scan_latency(b"\r\n", scans))?;
    report(
        "scan to event, CR LF suffix",
        &suffix,
        "(no timeout involved)",
    );
    let silence = rt.block_on(scan_latency(b"", scans))?;
    report(
        "scan to event, no suffix (timeout)",
        &silence,
        &format!(
            "(target p99 <= {} ms = timeout {SILENCE_MS} ms + 5 ms)",
            SILENCE_MS + 5
        ),
    );

    display_bytes();
    display_bytes_on_the_wire()?;
    println!("load average at end: {}", load_average());
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn wait_connected(state: &tokio::sync::watch::Receiver<DeviceState>) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while *state.borrow() != DeviceState::Connected {
        if Instant::now() > deadline {
            return Err(format!("device never connected: {:?}", *state.borrow()).into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Time from the simulated scanner writing a whole scan to the master side of the pty until the
/// driver hands the classified `Scan` to async code.
async fn scan_latency(suffix: &[u8], n: usize) -> BenchResult<Vec<Duration>> {
    let (sim, path) = SimScanner::start(SimScannerSettings {
        suffix: suffix.to_vec(),
        noise: false,
    })?;
    let mut scanner = BarcodeScanner::open(&ScannerConfig {
        port: PortConfig::at(&path),
        suffix: ScanSuffix::CrLf,
        timeout_ms: SILENCE_MS,
    })?;
    wait_connected(&scanner.state())?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let code = format!("krn:payment:eu1:transaction:bench-{i:06}");
        let start = Instant::now();
        sim.scan_with_aim(Some("]Q1"), code.as_bytes())?;
        let scan = tokio::time::timeout(Duration::from_secs(5), scanner.next_scan())
            .await?
            .ok_or("the scanner thread stopped")?;
        samples.push(start.elapsed());
        let sent = kassa_drivers::Scan::Text {
            text: code,
            symbology: Some(kassa_drivers::Symbology::Qr),
        };
        if scan != sent {
            return Err(format!("scan {i} came out as {scan:?}").into());
        }
        // Scans by a person are at least this far apart; keeps frames from joining.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(samples)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, samples: &[Duration], note: &str) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<38} n={:<4} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  {note}",
        sorted.len(),
        ms(percentile(&sorted, 0.50)),
        ms(percentile(&sorted, 0.99)),
        ms(sorted[sorted.len() - 1]),
    );
}

/// A sale growing line by line, as the agent shows it: each scan shows the new item on the upper
/// line and the new total below.
fn sale_screens(labels: &ScreenLabels) -> Vec<DisplayScreen> {
    let items = [
        ("T-shirt", "118.00 SEK", "118.00 SEK"),
        ("Socks", "49.50 SEK", "167.50 SEK"),
        ("Socks", "49.50 SEK", "217.00 SEK"),
        ("Coffee mug", "89.00 SEK", "306.00 SEK"),
        ("Tote bag", "149.00 SEK", "455.00 SEK"),
        ("Ekologisk havredryck", "21.90 SEK", "476.90 SEK"),
    ];
    items
        .iter()
        .map(|(name, price, total)| DisplayScreen::item(labels, name, price, total))
        .collect()
}

/// Bytes per update from the encoder alone, for both command sets, against a full redraw of the
/// same screen (what a driver without diffing would send).
fn display_bytes() {
    let labels = ScreenLabels::default();
    let screens = sale_screens(&labels);
    for set in [DisplayCommandSet::Epson, DisplayCommandSet::Cd5220] {
        let mut diffing = DisplayEncoder::new(set);
        let mut full = DisplayEncoder::new(set);
        let _ = diffing.initialize();
        let _ = full.initialize();
        let _ = diffing.render(&screens[0]);
        let (mut sent, mut redraw) = (Vec::new(), Vec::new());
        for screen in &screens[1..] {
            sent.push(diffing.render(screen).len());
            full.forget();
            redraw.push(full.render(screen).len());
        }
        let total = |v: &[usize]| v.iter().sum::<usize>();
        println!(
            "display {set:?}: bytes per line added {sent:?} (mean {:.1}); full redraw {redraw:?} (mean {:.1}); unchanged screen re-sent: {} bytes",
            total(&sent) as f64 / sent.len() as f64,
            total(&redraw) as f64 / redraw.len() as f64,
            diffing.render(&screens[screens.len() - 1]).len(),
        );
    }
}

/// The same over a pseudo-terminal: bytes the simulated display actually received per update.
fn display_bytes_on_the_wire() -> BenchResult<()> {
    let (sim, path) = SimDisplay::start(SimDisplayCommandSet::Epson)?;
    let display = CustomerDisplay::open(&DisplayConfig {
        port: PortConfig::at(&path),
        ..DisplayConfig::default()
    })?;
    wait_connected(&display.state())?;
    let labels = display.labels().clone();
    let screens = sale_screens(&labels);
    let mut per_update = Vec::new();
    for screen in &screens {
        let before = sim.bytes_received();
        display.show(screen.clone())?;
        let want = screen.lines();
        let deadline = Instant::now() + Duration::from_secs(5);
        while sim.screen() != want {
            if Instant::now() > deadline {
                return Err(format!("display shows {:?}, wanted {want:?}", sim.screen()).into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        per_update.push(sim.bytes_received() - before);
    }
    println!(
        "display Epson over a pty: bytes received per update {:?} (first is the first item on a welcome screen)",
        per_update
    );
    Ok(())
}
