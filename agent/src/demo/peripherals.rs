//! The demo's serial peripherals: a simulated customer display, scanner, receipt printer and card
//! reader on pseudo-terminals, configured into the demo till exactly as real ones would be.

use std::sync::Arc;
use std::time::Duration;

use kassa_drivers::{CardReaderConfig, DisplayConfig, PortConfig, PrinterConfig, ScannerConfig};
use kassa_sim::devices::{
    PrintedReceipt, SimCardReader, SimDisplay, SimDisplayCommandSet, SimPrinter, SimScanner,
    SimScannerSettings,
};

use super::DemoResult;
use crate::app::Agent;
use crate::config::Config;
use crate::devices::{Catalogue, DeviceEvent, DeviceRole};
use crate::store::SaleView;

/// What the demo's cashier scans: T-shirt, socks, socks (GTINs of `assets/catalogue.example.csv`).
const DEMO_SCANS: [&str; 3] = ["7310000000010", "7310000000027", "7310000000027"];

/// How long the demo waits for a simulated device before it carries on without it.
const DEVICE_PATIENCE: Duration = Duration::from_secs(5);

/// The four simulated devices; dropping this unplugs them.
pub struct DemoPeripherals {
    display: Arc<SimDisplay>,
    display_path: std::path::PathBuf,
    scanner: SimScanner,
    scanner_path: std::path::PathBuf,
    printer: SimPrinter,
    printer_path: std::path::PathBuf,
    card_reader: SimCardReader,
    card_reader_path: std::path::PathBuf,
    /// Prints the customer display's lines as they change; stopped on drop.
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for DemoPeripherals {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

impl DemoPeripherals {
    /// Plugs in the simulated devices (one pseudo-terminal pair each, made one after another).
    pub fn start() -> std::io::Result<Self> {
        let (display, display_path) = SimDisplay::start(SimDisplayCommandSet::Epson)?;
        let (scanner, scanner_path) = SimScanner::start(SimScannerSettings::default())?;
        let (printer, printer_path) = SimPrinter::start()?;
        let (card_reader, card_reader_path) = SimCardReader::start()?;
        Ok(Self {
            display: Arc::new(display),
            display_path,
            scanner,
            scanner_path,
            printer,
            printer_path,
            card_reader,
            card_reader_path,
            watcher: None,
        })
    }

    /// Points `cfg`'s `[devices]` at the simulated devices and loads the demo catalogue.
    pub fn configure(&self, cfg: &mut Config) -> DemoResult<()> {
        cfg.devices.display = Some(DisplayConfig {
            port: PortConfig::at(&self.display_path),
            ..Default::default()
        });
        cfg.devices.scanner = Some(ScannerConfig {
            port: PortConfig::at(&self.scanner_path),
            ..Default::default()
        });
        cfg.devices.printer = Some(PrinterConfig {
            port: PortConfig::at(&self.printer_path),
            ..Default::default()
        });
        cfg.devices.card_reader = Some(CardReaderConfig {
            port: PortConfig::at(&self.card_reader_path),
            ..Default::default()
        });
        cfg.receipt.header = vec!["kassa demo store".into(), "Storgatan 1, Stockholm".into()];
        cfg.catalogue = Catalogue::parse_csv(
            include_str!("../../../assets/catalogue.example.csv").as_bytes(),
            "catalogue.example.csv",
        )?;
        Ok(())
    }

    /// From now on, prints the customer display's two lines whenever they change.
    pub fn print_display_changes(&mut self) {
        let display = self.display.clone();
        self.watcher = Some(tokio::spawn(async move {
            let mut last = display.screen();
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = display.screen();
                if now != last {
                    println!("  customer display  [{}]", now[0]);
                    println!("                    [{}]", now[1]);
                    last = now;
                }
            }
        }));
    }

    /// The cashier scans the demo products; returns the sale they went into, or `None` if the
    /// scanner did not deliver (the demo then opens the sale through the API instead).
    pub async fn scan_sale(&self, agent: &Agent) -> Option<SaleView> {
        ready(agent, DeviceRole::Scanner).await?;
        let mut events = agent.devices.subscribe();
        let mut sale_id = None;
        for gtin in DEMO_SCANS {
            println!("(scanner) beep: {gtin}");
            self.scanner.scan(gtin.as_bytes()).ok()?;
            let added = tokio::time::timeout(DEVICE_PATIENCE, async {
                loop {
                    match events.recv().await {
                        Ok(DeviceEvent::ProductAdded { sale_id, .. }) => return Some(sale_id),
                        Ok(
                            DeviceEvent::UnknownProduct { .. } | DeviceEvent::ScanRefused { .. },
                        ) => {
                            return None;
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return None,
                    }
                }
            })
            .await
            .ok()??;
            sale_id = Some(added);
            // Time for the display watcher to show each item before the next beep.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        agent.terminal.sale(&sale_id?).await.ok()
    }

    /// A customer swipes a payment card at the counter: the till sees only brand and last four.
    pub async fn swipe_card(&self, agent: &Agent) {
        if ready(agent, DeviceRole::CardReader).await.is_none() {
            return;
        }
        let mut events = agent.devices.subscribe();
        let track2 = ";4111111111111111=29121010000000000000?";
        if self.card_reader.swipe(None, Some(track2)).is_err() {
            return;
        }
        let seen = tokio::time::timeout(DEVICE_PATIENCE, async {
            loop {
                match events.recv().await {
                    Ok(DeviceEvent::PaymentCardSwiped { brand, last4 }) => {
                        return Some(format!("{brand} •••• {last4}"));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return None,
                }
            }
        })
        .await;
        if let Ok(Some(card)) = seen {
            println!(
                "(card reader) {card} swiped: kassa keeps only this much, and takes payment through Klarna"
            );
        }
    }

    /// The first receipt the printer cut, waiting for it a little.
    pub async fn printed_receipt(&self) -> Option<PrintedReceipt> {
        let deadline = tokio::time::Instant::now() + DEVICE_PATIENCE;
        loop {
            if let Some(r) = self.printer.receipts().into_iter().next() {
                return Some(r);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until the agent has the device open; `None` if it does not come up in time.
async fn ready(agent: &Agent, role: DeviceRole) -> Option<()> {
    let mut state = agent.devices.state(role)?;
    tokio::time::timeout(DEVICE_PATIENCE, state.wait_for(|s| s.is_ready()))
        .await
        .ok()?
        .ok()?;
    Some(())
}
