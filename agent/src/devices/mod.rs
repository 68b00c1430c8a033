//! The till's peripherals at work: opens the devices of `[devices]`, keeps the customer display in
//! step with the sale, prints the receipt once it is paid (journaling whether it printed), turns
//! scans into sale lines from a small product catalogue, and reports every device's state.
//!
//! This file is the surface the API, the screens and the CLI use (`Devices`, its events and
//! statuses) and the state the service's tasks share; `service` runs those tasks, `catalogue`
//! says what a scan becomes, `codes` which scanned text is a Klarna code, `presentation` what
//! the customer display and the receipt show.

pub use crate::config::{CatalogueItem, ReceiptConfig};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kassa_drivers::{
    CustomerDisplay, DeviceState, DevicesConfig, DriverError, PortConfig, ReceiptPrinter,
};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::terminal::{Terminal, TerminalError};

mod catalogue;
pub mod codes;
mod presentation;
mod service;

pub use catalogue::{Catalogue, normalise_gtin};
pub use presentation::{quantities, receipt_for, screen_for};

/// What went wrong with the peripherals, in words the person at the till (or IT) can act on.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    /// The product catalogue (`[[catalogue]]` or `catalogue_file`) cannot be used; fix it.
    #[error("product catalogue: {0}")]
    Catalogue(String),
    /// A device's configuration cannot work (e.g. no `path` and no `usb`); fix `[devices.<role>]`.
    #[error("{role}: {source}")]
    Device {
        role: DeviceRole,
        source: DriverError,
    },
    #[error("no receipt printer is configured ([devices.printer])")]
    NoPrinter,
    /// The receipt was not printed (paper out, cover open, unplugged); the journal says so and
    /// `POST /v1/sales/{id}/receipt` prints it again once the printer is ready.
    #[error("the receipt was not printed: {0}; print it again once the printer is ready")]
    NotPrinted(DriverError),
    /// A report was not printed; it stays in the database (`kassa report`) and can be printed
    /// again.
    #[error("the report was not printed: {0}; print it again once the printer is ready")]
    ReportNotPrinted(DriverError),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
}

/// Which peripheral, in the words of the configuration (`[devices.<role>]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRole {
    Display,
    Scanner,
    Printer,
    CardReader,
}

impl DeviceRole {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceRole::Display => "display",
            DeviceRole::Scanner => "scanner",
            DeviceRole::Printer => "printer",
            DeviceRole::CardReader => "card_reader",
        }
    }
}

impl fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------- what the API and CLI see

/// One configured device and what it is doing now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceStatus {
    pub role: DeviceRole,
    /// Where it is configured: a path, a USB id, or both.
    pub port: String,
    /// `connected`, `disconnected`, `paper_out`, `cover_open` or `offline`.
    pub state: &'static str,
    /// Whether it can do its job now.
    pub ready: bool,
    /// Since when it is disconnected (RFC 3339).
    pub since: Option<String>,
    /// Why it is disconnected (e.g. the port is missing).
    pub reason: Option<String>,
}

/// `GET /v1/devices`: every configured device, the customer display's two lines, and the sales
/// whose receipt still waits to be printed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DevicesReport {
    pub devices: Vec<DeviceStatus>,
    /// The two lines last sent to the customer display (shown again after a replug).
    pub display_lines: Option<[String; 2]>,
    /// Paid sales whose receipt could not be printed; `POST /v1/sales/{id}/receipt` prints one.
    pub receipts_not_printed: Vec<String>,
}

/// What the receipt printer did with a sale's receipt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReceiptPrinted {
    pub sale_id: String,
    pub receipt_no: Option<i64>,
    /// The Klarna payment transaction id printed as the QR code.
    pub klarna_transaction_id: Option<String>,
}

/// Something a peripheral did that the rest of the till may care about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeviceEvent {
    /// A scanned product became a line of `sale_id`.
    ProductAdded {
        sale_id: String,
        gtin: String,
        name: String,
    },
    /// A product code that is not in the catalogue: nothing was added.
    UnknownProduct {
        gtin: String,
    },
    /// A known product could not be added (e.g. a payment is in progress).
    ScanRefused {
        gtin: String,
        reason: String,
    },
    /// A kassa receipt's QR code or a Klarna transaction id, for the returns flow.
    ReceiptScanned {
        code: String,
    },
    /// A Klarna customer code; the next payment passes it to Klarna.
    CustomerCodeScanned,
    /// A code the till does not understand (shortened).
    UnknownScan {
        text: String,
    },
    /// A payment card: only its brand and last four digits, never more.
    PaymentCardSwiped {
        brand: String,
        last4: String,
    },
    LoyaltyCardSwiped {
        number: String,
    },
    UnreadableSwipe,
    ReceiptPrinted {
        sale_id: String,
    },
    /// Kept for a reprint: the journal says so too.
    ReceiptNotPrinted {
        sale_id: String,
        reason: String,
    },
}

/// A device's configured place, for people.
pub fn port_label(port: &PortConfig) -> String {
    let usb = port.usb.as_ref().map(|u| {
        let serial = u
            .serial_number
            .as_deref()
            .map(|s| format!(" serial {s}"))
            .unwrap_or_default();
        format!("usb {:04x}:{:04x}{serial}", u.vid, u.pid)
    });
    let path = port.path.as_ref().map(|p| p.display().to_string());
    match (usb, path) {
        (Some(usb), Some(path)) => format!("{usb}, else {path}"),
        (Some(usb), None) => usb,
        (None, Some(path)) => path,
        (None, None) => "(no path or usb)".into(),
    }
}

/// The devices a configuration names, in a fixed order, with where each is.
pub fn configured(cfg: &DevicesConfig) -> Vec<(DeviceRole, String)> {
    let mut out = Vec::new();
    if let Some(d) = &cfg.display {
        out.push((DeviceRole::Display, port_label(&d.port)));
    }
    if let Some(s) = &cfg.scanner {
        out.push((DeviceRole::Scanner, port_label(&s.port)));
    }
    if let Some(p) = &cfg.printer {
        out.push((DeviceRole::Printer, port_label(&p.port)));
    }
    if let Some(c) = &cfg.card_reader {
        out.push((DeviceRole::CardReader, port_label(&c.port)));
    }
    out
}

fn state_name(state: &DeviceState) -> &'static str {
    match state {
        DeviceState::Connected => "connected",
        DeviceState::Disconnected { .. } => "disconnected",
        DeviceState::PaperOut => "paper_out",
        DeviceState::CoverOpen => "cover_open",
        DeviceState::Offline => "offline",
    }
}

fn status_of(role: DeviceRole, port: &str, state: &DeviceState) -> DeviceStatus {
    let (since, reason) = match state {
        DeviceState::Disconnected { since, reason } => {
            let since: chrono::DateTime<chrono::Utc> = (*since).into();
            (
                Some(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                Some(reason.clone()),
            )
        }
        _ => (None, None),
    };
    DeviceStatus {
        role,
        port: port.to_string(),
        state: state_name(state),
        ready: state.is_ready(),
        since,
        reason,
    }
}

// ---------------------------------------------------------------- the shared state

/// The running peripherals service; cheap to clone. Dropping the last clone stops its tasks,
/// which drops the device handles and so stops their port threads.
#[derive(Clone)]
pub struct Devices {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

/// Aborts the service's tasks when the last `Devices` goes. Tasks hold `Shared`, never `Tasks`,
/// so there is no cycle keeping them alive.
struct Tasks(Vec<tokio::task::AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// What the service's tasks and every `Devices` clone share.
struct Shared {
    terminal: Terminal,
    /// Absent when not configured; written only through `show`.
    display: Option<CustomerDisplay>,
    /// Absent when not configured; used by automatic prints and reprints alike.
    printer: Option<ReceiptPrinter>,
    /// Every configured device's state, for the API; the scanner's and reader's handles live in
    /// their tasks.
    states: Vec<(DeviceRole, String, watch::Receiver<DeviceState>)>,
    catalogue: Catalogue,
    /// The two lines last sent to the display.
    shown: Mutex<Option<[String; 2]>>,
    events: broadcast::Sender<DeviceEvent>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking task must not take the display or the scanner down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Devices {
    /// Scans, swipes and prints as they happen (receipt scans feed the returns flow from here).
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.shared.events.subscribe()
    }

    /// The open sale that scanned products go into, if any: the till's sale at the counter.
    pub fn current_sale(&self) -> Option<String> {
        self.shared.terminal.counter_sale()
    }

    /// Every configured device's state now.
    pub fn statuses(&self) -> Vec<DeviceStatus> {
        self.shared
            .states
            .iter()
            .map(|(role, port, state)| status_of(*role, port, &state.borrow()))
            .collect()
    }

    /// The state of one device, to wait on (`None` if it is not configured).
    pub fn state(&self, role: DeviceRole) -> Option<watch::Receiver<DeviceState>> {
        self.shared
            .states
            .iter()
            .find(|(r, _, _)| *r == role)
            .map(|(_, _, s)| s.clone())
    }

    /// Device states, the display's lines and the receipts waiting for a reprint.
    pub async fn report(&self) -> Result<DevicesReport, DevicesError> {
        let display_lines = lock(&self.shared.shown).clone();
        Ok(DevicesReport {
            devices: self.statuses(),
            display_lines,
            receipts_not_printed: self.receipts_not_printed().await?,
        })
    }

    /// Paid sales whose latest print attempt failed, oldest first (at most 100).
    pub async fn receipts_not_printed(&self) -> Result<Vec<String>, DevicesError> {
        let ids = self
            .shared
            .terminal
            .store()
            .call(|db| db.receipts_not_printed())
            .await
            .map_err(TerminalError::from)?;
        Ok(ids)
    }

    /// Prints an X- or Z-report on the receipt printer, at the printer's width. Whether it
    /// printed is journaled as a manager action either way (a report is a manager's record).
    pub async fn print_report(
        &self,
        report: &crate::reports::DayReport,
        operator: Option<String>,
    ) -> Result<(), DevicesError> {
        self.print_report_in(report, operator, &|en| en.to_owned())
            .await
    }

    /// As `print_report`, with the report's labels put through `say` (the screen passes its
    /// language's words, so the paper says what the screen said).
    pub async fn print_report_in(
        &self,
        report: &crate::reports::DayReport,
        operator: Option<String>,
        say: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<(), DevicesError> {
        let operator = self.shared.terminal.operator(operator)?;
        let printer = self
            .shared
            .printer
            .as_ref()
            .ok_or(DevicesError::NoPrinter)?;
        let cfg = self.shared.terminal.config();
        let width = cfg.devices.printer.as_ref().map_or(48, |p| p.width);
        let receipt = kassa_drivers::Receipt {
            header: vec![
                cfg.receipt
                    .header
                    .first()
                    .cloned()
                    .unwrap_or_else(|| cfg.store_id.clone()),
            ],
            text: report
                .to_text_in(width, say)
                .lines()
                .map(str::to_string)
                .collect(),
            ..Default::default()
        };
        let result = printer.print(receipt).await;
        let detail = serde_json::json!({
            "action": "print_report",
            "report": report.kind,
            "close_no": report.close_no,
            "printed": result.is_ok(),
            "reason": result.as_ref().err().map(ToString::to_string),
        });
        let journaled = self
            .shared
            .terminal
            .store()
            .call(move |db| db.journal_manager_action(&operator, detail))
            .await;
        if let Err(err) = journaled {
            tracing::error!("cannot journal the report print: {err}");
        }
        result.map_err(DevicesError::ReportNotPrinted)
    }

    /// Opens the cash drawer on the receipt printer's kick-out port: cash was taken or paid
    /// out. False when there is no printer or it did not answer (the cashier opens it by key).
    pub async fn open_drawer(&self) -> bool {
        let Some(printer) = &self.shared.printer else {
            return false;
        };
        match printer.open_drawer().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "the cash drawer did not open");
                false
            }
        }
    }

    /// Prints a paid sale's receipt again (after paper out, or for a customer who asks).
    pub async fn reprint_receipt(
        &self,
        sale_id: &str,
        operator: Option<String>,
    ) -> Result<ReceiptPrinted, DevicesError> {
        self.shared.print_receipt(sale_id, operator, true).await
    }
}

impl Shared {
    fn publish(&self, event: DeviceEvent) {
        // Nobody listening is normal: the event is also in the log or the journal.
        let _ = self.events.send(event);
    }
}
