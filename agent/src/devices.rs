//! The till's peripherals at work: opens the devices of `[devices]`, keeps the customer display in
//! step with the sale, prints the receipt once it is paid (journaling whether it printed), turns
//! scans into sale lines from a small product catalogue, and reports every device's state.

pub use crate::config::{CatalogueItem, ReceiptConfig};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kassa_drivers::{
    BarcodeScanner, CardReader, CardSwipe, CustomerDisplay, DeviceState, DevicesConfig,
    DisplayScreen, DriverError, PortConfig, ReceiptLine, ReceiptPrinter, Scan, ScreenLabels,
};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::money::{KLARNA_MAX_AMOUNT, Money};
use crate::payment::AttemptState;
use crate::store::{JournalEntry, JournalKind, LineInput, SaleLine, SaleState, SaleView};
use crate::terminal::{SaleEvent, Terminal, TerminalError};

/// How long "thank you" stays on the customer display before it welcomes the next customer.
const THANK_YOU_FOR: Duration = Duration::from_secs(8);

/// How many paid sales the printing task remembers having printed, so that a repeated "paid"
/// event does not print twice; a day of sales fits many times over.
const PRINTED_REMEMBERED: usize = 4096;

/// Longest unknown scan text kept in a log line or event (a jammed scanner can send kilobytes).
const UNKNOWN_SCAN_SHOWN: usize = 64;

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

// ---------------------------------------------------------------- configuration

// ---------------------------------------------------------------- catalogue

/// Products by GTIN-14, the form the scanner reports every product code in.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    by_gtin: HashMap<String, CatalogueItem>,
}

/// `code` as the 14-digit GTIN the scanner reports, if it is a product code with a valid check
/// digit (a typo in the catalogue would otherwise never match a scan, silently).
pub fn normalise_gtin(code: &str) -> Option<String> {
    let code = code.trim();
    let plausible =
        matches!(code.len(), 8 | 12 | 13 | 14) && code.bytes().all(|b| b.is_ascii_digit());
    if !plausible || !kassa_drivers::gs1::mod10_valid(code) {
        return None;
    }
    Some(format!("{code:0>14}"))
}

impl Catalogue {
    /// The configured products: the CSV file's first, then `[[catalogue]]` entries, which win.
    pub fn load(items: &[CatalogueItem], file: Option<&Path>) -> Result<Self, DevicesError> {
        let mut all = Vec::new();
        if let Some(path) = file {
            let f = std::fs::File::open(path).map_err(|e| {
                DevicesError::Catalogue(format!("cannot read {}: {e}", path.display()))
            })?;
            all.extend(Self::parse_csv(f, &path.display().to_string())?);
        }
        all.extend(items.iter().cloned());
        Self::build(all)
    }

    /// Rows of a catalogue CSV: header `gtin,name,unit_price`, `#` starts a comment line.
    pub fn parse_csv(reader: impl Read, origin: &str) -> Result<Vec<CatalogueItem>, DevicesError> {
        let mut csv = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(reader);
        csv.deserialize()
            .map(|row| row.map_err(|e| DevicesError::Catalogue(format!("{origin}: {e}"))))
            .collect()
    }

    /// Checks every item; a later item with the same GTIN replaces an earlier one.
    pub fn build(items: impl IntoIterator<Item = CatalogueItem>) -> Result<Self, DevicesError> {
        let mut by_gtin = HashMap::new();
        for item in items {
            let bad = |why: &str| DevicesError::Catalogue(format!("{:?}: {why}", item.gtin));
            let gtin = normalise_gtin(&item.gtin)
                .ok_or_else(|| bad("not an EAN-8/UPC-A/EAN-13/GTIN-14 with a valid check digit"))?;
            if item.name.trim().is_empty() || item.name.len() > 255 {
                return Err(bad("name must be 1 to 255 characters"));
            }
            if !(0..=KLARNA_MAX_AMOUNT).contains(&item.unit_price) {
                return Err(bad("unit_price must be 0 to 2147483647 minor units"));
            }
            by_gtin.insert(gtin, item);
        }
        Ok(Self { by_gtin })
    }

    /// The product with this code, in any of its lengths.
    pub fn find(&self, gtin: &str) -> Option<&CatalogueItem> {
        self.by_gtin.get(&normalise_gtin(gtin)?)
    }

    pub fn len(&self) -> usize {
        self.by_gtin.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_gtin.is_empty()
    }
}

// ---------------------------------------------------------------- what the customer sees

fn line_label(line: &SaleLine) -> String {
    if line.quantity > 1 {
        format!("{}x {}", line.quantity, line.name)
    } else {
        line.name.clone()
    }
}

/// What the customer display shows for `sale`. `lines_before` is how many lines the sale had
/// when it was last shown (`None` if it was not): a new line shows as the item and its price
/// above the running total; anything else shows the total, the QR prompt, or thank you.
pub fn screen_for(
    labels: &ScreenLabels,
    sale: &SaleView,
    lines_before: Option<usize>,
) -> DisplayScreen {
    let total = sale.total_money().to_string();
    match sale.sale.state {
        SaleState::Paid => DisplayScreen::thank_you(labels),
        SaleState::Abandoned => DisplayScreen::welcome(labels),
        SaleState::Open if sale.live_attempt().is_some() => {
            DisplayScreen::scan_to_pay(labels, &total)
        }
        SaleState::Open => match sale.lines.last() {
            Some(line) if lines_before.is_none_or(|n| sale.lines.len() > n) => {
                let price = Money::new(line.total_amount, sale.sale.currency).to_string();
                DisplayScreen::item(labels, &line_label(line), &price, &total)
            }
            _ => DisplayScreen::total(labels, &total),
        },
    }
}

/// The receipt of a paid sale; the QR code holds the Klarna payment transaction id, which the
/// scanner recognises again when the goods come back.
pub fn receipt_for(
    sale: &SaleView,
    words: &ReceiptConfig,
    store_id: &str,
    terminal_id: &str,
) -> kassa_drivers::Receipt {
    let money = |minor| Money::new(minor, sale.sale.currency).to_string();
    let paid = sale
        .payments
        .iter()
        .rev()
        .find(|a| a.state == AttemptState::Paid);
    let transaction = paid.and_then(|a| a.klarna_transaction_id.clone());
    let when = sale
        .sale
        .closed_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Local))
        .unwrap_or_else(chrono::Local::now);
    let mut header = if words.header.is_empty() {
        vec![store_id.to_string()]
    } else {
        words.header.clone()
    };
    header.push(match sale.sale.receipt_no {
        Some(no) => format!("Receipt {no}  till {terminal_id}"),
        None => format!("Till {terminal_id}"),
    });
    header.push(when.format("%Y-%m-%d %H:%M").to_string());
    let mut payment = vec!["Paid with Klarna".to_string()];
    if let Some(tx) = &transaction {
        // The last segment is what Klarna's merchant portal and the customer's app show.
        payment.push(format!("Ref {}", tx.rsplit(':').next().unwrap_or(tx)));
    }
    kassa_drivers::Receipt {
        header,
        lines: sale
            .lines
            .iter()
            .map(|l| ReceiptLine::new(line_label(l), money(l.total_amount)))
            .collect(),
        totals: vec![ReceiptLine::new(&words.total_label, money(sale.total))],
        payment,
        qr_data: transaction,
        footer: words.footer.clone(),
        ..Default::default()
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

// ---------------------------------------------------------------- the service

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
    /// The open sale scans go into; set by scans and by sale events, cleared when it closes.
    current_sale: Mutex<Option<String>>,
    /// The two lines last sent to the display.
    shown: Mutex<Option<[String; 2]>>,
    events: broadcast::Sender<DeviceEvent>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking task must not take the display or the scanner down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Devices {
    /// Opens the configured devices and starts following `terminal`'s sales. Devices that are
    /// unplugged do not stop the till; a configuration that cannot work does.
    pub fn start(terminal: Terminal) -> Result<Devices, DevicesError> {
        let cfg = terminal.config().clone();
        let catalogue = Catalogue::load(&cfg.catalogue, cfg.catalogue_file.as_deref())?;
        let open_err = |role| move |source| DevicesError::Device { role, source };
        let mut states = Vec::new();
        let display = cfg
            .devices
            .display
            .as_ref()
            .map(|c| CustomerDisplay::open(c).map_err(open_err(DeviceRole::Display)))
            .transpose()?;
        if let (Some(d), Some(c)) = (&display, &cfg.devices.display) {
            states.push((DeviceRole::Display, port_label(&c.port), d.state()));
        }
        let scanner = cfg
            .devices
            .scanner
            .as_ref()
            .map(|c| BarcodeScanner::open(c).map_err(open_err(DeviceRole::Scanner)))
            .transpose()?;
        if let (Some(s), Some(c)) = (&scanner, &cfg.devices.scanner) {
            states.push((DeviceRole::Scanner, port_label(&c.port), s.state()));
        }
        let printer = cfg
            .devices
            .printer
            .as_ref()
            .map(|c| ReceiptPrinter::open(c).map_err(open_err(DeviceRole::Printer)))
            .transpose()?;
        if let (Some(p), Some(c)) = (&printer, &cfg.devices.printer) {
            states.push((DeviceRole::Printer, port_label(&c.port), p.state()));
        }
        let reader = cfg
            .devices
            .card_reader
            .as_ref()
            .map(|c| CardReader::open(c).map_err(open_err(DeviceRole::CardReader)))
            .transpose()?;
        if let (Some(r), Some(c)) = (&reader, &cfg.devices.card_reader) {
            states.push((DeviceRole::CardReader, port_label(&c.port), r.state()));
        }
        if scanner.is_some() && catalogue.is_empty() {
            tracing::warn!(
                "a barcode scanner is configured but the product catalogue is empty: every product scan will be unknown"
            );
        }
        // Subscribed before any task runs, so no sale change between here and there is missed.
        let sales = terminal.subscribe();
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            terminal,
            display,
            printer,
            states,
            catalogue,
            current_sale: Mutex::new(None),
            shown: Mutex::new(None),
            events,
        });
        if let Some(d) = &shared.display {
            shared.show(DisplayScreen::welcome(d.labels()));
        }
        let mut tasks = vec![tokio::spawn(shared.clone().follow_sales(sales)).abort_handle()];
        if let Some(scanner) = scanner {
            tasks.push(tokio::spawn(shared.clone().read_scans(scanner)).abort_handle());
        }
        if let Some(reader) = reader {
            tasks.push(tokio::spawn(shared.clone().read_swipes(reader)).abort_handle());
        }
        tracing::info!(
            devices = shared.states.len(),
            products = shared.catalogue.len(),
            "peripherals started"
        );
        Ok(Devices {
            shared,
            _tasks: Arc::new(Tasks(tasks)),
        })
    }

    /// Scans, swipes and prints as they happen (receipt scans feed the returns flow from here).
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.shared.events.subscribe()
    }

    /// The open sale that scanned products go into, if any.
    pub fn current_sale(&self) -> Option<String> {
        self.shared.current_sale()
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
            .call(|db| {
                // The lookup indexes hold every row once the journal's tail is indexed.
                db.index_journal(None)?;
                let mut st = db.conn.prepare_cached(
                    "SELECT l.sale_id FROM journal_lookup l JOIN journal j ON j.seq = l.seq
                     WHERE l.kind = 'receipt_printed' AND json_extract(j.detail, '$.printed') = 0
                       AND NOT EXISTS (SELECT 1 FROM journal_lookup m JOIN journal k ON k.seq = m.seq
                           WHERE m.sale_id = l.sale_id AND m.kind = 'receipt_printed'
                             AND json_extract(k.detail, '$.printed') = 1 AND m.seq > l.seq)
                     GROUP BY l.sale_id ORDER BY MIN(l.seq) LIMIT 100",
                )?;
                let rows = st.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
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
                .to_text_width(width)
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
    fn labels(&self) -> Option<&ScreenLabels> {
        self.display.as_ref().map(CustomerDisplay::labels)
    }

    fn show(&self, screen: DisplayScreen) {
        let Some(display) = &self.display else {
            return;
        };
        *lock(&self.shown) = Some(screen.lines());
        if display.show(screen).is_err() {
            tracing::error!("the customer display's thread has stopped");
        }
    }

    fn current_sale(&self) -> Option<String> {
        lock(&self.current_sale).clone()
    }

    fn publish(&self, event: DeviceEvent) {
        // Nobody listening is normal: the event is also in the log or the journal.
        let _ = self.events.send(event);
    }

    /// Follows every sale change: the current sale, the display, and printing once paid.
    async fn follow_sales(self: Arc<Self>, mut sales: broadcast::Receiver<SaleEvent>) {
        // (sale id, line count) last shown, to tell a new line from any other change.
        let mut shown: Option<(String, usize)> = None;
        let mut welcome_at: Option<tokio::time::Instant> = None;
        // Sales whose receipt this process has already printed (or tried to).
        let mut printed: HashSet<String> = HashSet::new();
        loop {
            let sale = tokio::select! {
                ev = sales.recv() => match ev {
                    Ok(ev) => ev.sale,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        // Every event carries the whole sale: the next one catches up.
                        tracing::warn!(skipped = n, "peripherals fell behind the sale events");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = sleep_until(welcome_at) => {
                    welcome_at = None;
                    shown = None;
                    if let Some(labels) = self.labels() {
                        self.show(DisplayScreen::welcome(labels));
                    }
                    continue;
                }
            };
            let id = sale.sale.id.clone();
            let state = sale.sale.state;
            let current = {
                let mut current = lock(&self.current_sale);
                let before = current.clone();
                match state {
                    SaleState::Open => *current = Some(id.clone()),
                    _ if before.as_deref() == Some(id.as_str()) => *current = None,
                    _ => {}
                }
                before
            };
            // A late change to an older sale must not take the display from the customer at
            // the counter now.
            let someone_else =
                state != SaleState::Open && current.as_ref().is_some_and(|c| *c != id);
            if let Some(labels) = self.labels()
                && !someone_else
            {
                let before = shown.as_ref().filter(|(s, _)| *s == id).map(|(_, n)| *n);
                self.show(screen_for(labels, &sale, before));
                shown = Some((id.clone(), sale.lines.len()));
                welcome_at =
                    (state == SaleState::Paid).then(|| tokio::time::Instant::now() + THANK_YOU_FOR);
            }
            if state == SaleState::Abandoned && !someone_else {
                // A customer code scanned for this sale must not pay the next customer's.
                self.terminal.keep_customer_token(None);
            }
            if printed.len() > PRINTED_REMEMBERED {
                // Only a repeated event for a just-paid sale can come back; old ids may go.
                printed.clear();
            }
            if state == SaleState::Paid && self.printer.is_some() && printed.insert(id.clone()) {
                let shared = self.clone();
                tokio::spawn(async move {
                    // The outcome is journaled and published inside; nothing more to do here.
                    let _ = shared.print_receipt(&id, None, false).await;
                });
            }
        }
    }

    /// Prints `sale_id`'s receipt and journals whether it came out.
    async fn print_receipt(
        &self,
        sale_id: &str,
        operator: Option<String>,
        reprint: bool,
    ) -> Result<ReceiptPrinted, DevicesError> {
        let operator = self.terminal.operator(operator)?;
        let printer = self.printer.as_ref().ok_or(DevicesError::NoPrinter)?;
        let sale = self.terminal.sale(sale_id).await?;
        if sale.sale.state != SaleState::Paid {
            return Err(TerminalError::Conflict(format!(
                "sale {sale_id} is not paid: only a paid sale has a receipt"
            ))
            .into());
        }
        let cfg = self.terminal.config();
        let receipt = receipt_for(&sale, &cfg.receipt, &cfg.store_id, &cfg.terminal_id);
        let transaction = receipt.qr_data.clone();
        let result = printer.print(receipt).await;
        let mut e = JournalEntry::new(JournalKind::ReceiptPrinted, &operator);
        e.sale_id = Some(sale.sale.id.clone());
        e.amount = Some(sale.total);
        e.currency = Some(sale.sale.currency.code().to_string());
        e.klarna_transaction_id = transaction.clone();
        e.detail = serde_json::json!({
            "receipt_no": sale.sale.receipt_no,
            "printed": result.is_ok(),
            "reprint": reprint,
            "reason": result.as_ref().err().map(ToString::to_string),
        });
        let journaled = self
            .terminal
            .store()
            .call(move |db| db.write(|w| w.journal(e)))
            .await;
        if let Err(err) = journaled {
            tracing::error!(sale = %sale_id, "cannot journal the receipt print: {err}");
        }
        match result {
            Ok(()) => {
                tracing::info!(sale = %sale_id, reprint, "receipt printed");
                self.publish(DeviceEvent::ReceiptPrinted {
                    sale_id: sale_id.to_string(),
                });
                Ok(ReceiptPrinted {
                    sale_id: sale_id.to_string(),
                    receipt_no: sale.sale.receipt_no,
                    klarna_transaction_id: transaction,
                })
            }
            Err(err) => {
                tracing::warn!(sale = %sale_id, "receipt not printed, kept for a reprint: {err}");
                self.publish(DeviceEvent::ReceiptNotPrinted {
                    sale_id: sale_id.to_string(),
                    reason: err.to_string(),
                });
                Err(DevicesError::NotPrinted(err))
            }
        }
    }

    async fn read_scans(self: Arc<Self>, mut scanner: BarcodeScanner) {
        while let Some(scan) = scanner.next_scan().await {
            self.scanned(scan).await;
        }
        tracing::error!("the barcode scanner's thread has stopped; scans are no longer read");
    }

    async fn scanned(&self, scan: Scan) {
        match scan {
            Scan::Product { gtin, problems, .. } => {
                // A GS1 field that does not read never hides the product (it is still sold);
                // it is reported, so a label printer's fault can be found.
                for p in &problems {
                    tracing::warn!(gtin = %gtin, field = %p.data, "GS1 field left out of a scan: {}", p.error);
                }
                self.sell(gtin).await
            }
            Scan::Receipt(code) => {
                tracing::info!("receipt code scanned (for a return)");
                self.publish(DeviceEvent::ReceiptScanned { code });
            }
            Scan::KlarnaCustomerToken(token) => {
                // The token identifies a customer to Klarna: it goes to Klarna, not into logs.
                tracing::info!("Klarna customer code scanned; the next payment passes it on");
                self.terminal.keep_customer_token(Some(token));
                self.publish(DeviceEvent::CustomerCodeScanned);
            }
            Scan::Unknown(text) => {
                let text: String = text.chars().take(UNKNOWN_SCAN_SHOWN).collect();
                tracing::warn!(%text, "scanned code not understood");
                self.publish(DeviceEvent::UnknownScan { text });
            }
        }
    }

    /// Adds one of the scanned product to the open sale, or opens a sale for it.
    async fn sell(&self, gtin: String) {
        let Some(item) = self.catalogue.find(&gtin) else {
            tracing::warn!(%gtin, "scanned product is not in the catalogue; nothing added");
            self.publish(DeviceEvent::UnknownProduct { gtin });
            return;
        };
        let line = LineInput {
            name: item.name.clone(),
            reference: Some(item.gtin.clone()),
            quantity: 1,
            unit_price: item.unit_price,
        };
        let open = match self.current_sale() {
            Some(id) => match self.terminal.sale(&id).await {
                Ok(v) if v.sale.state == SaleState::Open => Some(id),
                _ => None,
            },
            None => None,
        };
        let result = match &open {
            Some(id) => self.terminal.add_lines(id, None, vec![line]).await,
            None => self.terminal.open_sale(None, None, vec![line]).await,
        };
        match result {
            Ok(view) => {
                *lock(&self.current_sale) = Some(view.sale.id.clone());
                self.publish(DeviceEvent::ProductAdded {
                    sale_id: view.sale.id,
                    gtin,
                    name: item.name.clone(),
                });
            }
            Err(e) => {
                tracing::warn!(%gtin, "scanned product not added: {e}");
                self.publish(DeviceEvent::ScanRefused {
                    gtin,
                    reason: e.to_string(),
                });
            }
        }
    }

    async fn read_swipes(self: Arc<Self>, mut reader: CardReader) {
        while let Some(swipe) = reader.next_swipe().await {
            match swipe {
                CardSwipe::Payment(card) => {
                    let brand = format!("{:?}", card.brand());
                    let last4 = card.last4().to_string();
                    tracing::info!(%brand, %last4, "payment card swiped; kassa takes payments through Klarna only");
                    self.publish(DeviceEvent::PaymentCardSwiped { brand, last4 });
                }
                CardSwipe::Loyalty(card) => {
                    tracing::info!("loyalty card swiped");
                    self.publish(DeviceEvent::LoyaltyCardSwiped {
                        number: card.number,
                    });
                }
                CardSwipe::Unreadable => {
                    tracing::info!("card swipe unreadable; ask for another swipe");
                    self.publish(DeviceEvent::UnreadableSwipe);
                }
            }
        }
        tracing::error!("the card reader's thread has stopped; swipes are no longer read");
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AttemptRow, SaleRow};

    fn sale(state: SaleState, lines: &[(&str, i64, i64)], paying: bool) -> SaleView {
        let currency = "SEK".parse().expect("SEK");
        let lines: Vec<SaleLine> = lines
            .iter()
            .enumerate()
            .map(|(i, (name, quantity, unit_price))| SaleLine {
                line_no: i as i64 + 1,
                name: name.to_string(),
                reference: None,
                quantity: *quantity,
                unit_price: *unit_price,
                total_amount: quantity * unit_price,
            })
            .collect();
        let total = lines.iter().map(|l| l.total_amount).sum();
        let attempt = |state| AttemptRow {
            id: "a1".into(),
            sale_id: "s1".into(),
            state,
            amount: total,
            currency: "SEK".into(),
            correlation_id: "c".into(),
            authorize_key: String::new(),
            finalize_key: String::new(),
            authorize_body: String::new(),
            interop_token: None,
            klarna_request_id: None,
            payment_request_url: None,
            expires_at: None,
            deadline_at: String::new(),
            klarna_transaction_id: Some("krn:payment:eu1:transaction:6a2f".into()),
            cancel_confirmed: false,
            reason: None,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let payments = match (state, paying) {
            (SaleState::Paid, _) => vec![attempt(AttemptState::Paid)],
            (_, true) => vec![attempt(AttemptState::AwaitingCustomer)],
            _ => vec![],
        };
        SaleView {
            sale: SaleRow {
                id: "s1".into(),
                currency,
                state,
                operator: "cashier".into(),
                opened_at: "2025-05-01T10:00:00Z".into(),
                closed_at: None,
                receipt_no: (state == SaleState::Paid).then_some(42),
            },
            lines,
            total,
            payments,
        }
    }

    fn check(sale: &SaleView, lines_before: Option<usize>, expected: [&str; 2]) {
        let shown = screen_for(&ScreenLabels::default(), sale, lines_before).lines();
        assert_eq!(
            [shown[0].trim_end(), shown[1].trim_end()],
            expected,
            "{shown:?}"
        );
    }

    #[test]
    fn the_display_follows_the_sale_from_first_item_to_thank_you() {
        let one = sale(SaleState::Open, &[("T-shirt", 1, 11800)], false);
        check(&one, None, ["T-shirt   118.00 SEK", "Total     118.00 SEK"]);
        let two = sale(
            SaleState::Open,
            &[("T-shirt", 1, 11800), ("Socks", 2, 4950)],
            false,
        );
        check(
            &two,
            Some(1),
            ["2x Socks   99.00 SEK", "Total     217.00 SEK"],
        );
        // The same sale again without a new line (say, a declined payment): the total alone.
        check(&two, Some(2), ["Total", "          217.00 SEK"]);
        let paying = sale(SaleState::Open, &[("T-shirt", 1, 11800)], true);
        check(
            &paying,
            Some(1),
            ["  Scan the QR code", "to pay    118.00 SEK"],
        );
        let paid = sale(SaleState::Paid, &[("T-shirt", 1, 11800)], false);
        check(&paid, Some(1), ["     Thank you!", "    Welcome back"]);
        let gone = sale(SaleState::Abandoned, &[("T-shirt", 1, 11800)], false);
        check(&gone, Some(1), ["      Welcome", ""]);
    }

    #[test]
    fn the_receipt_carries_the_klarna_transaction_id_as_its_qr_code() {
        let paid = sale(
            SaleState::Paid,
            &[("T-shirt", 1, 11800), ("Socks", 2, 4950)],
            false,
        );
        let r = receipt_for(&paid, &ReceiptConfig::default(), "Store 7", "till-1");
        assert_eq!(r.header[0], "Store 7");
        assert_eq!(r.header[1], "Receipt 42  till till-1");
        assert_eq!(r.lines[1], ReceiptLine::new("2x Socks", "99.00 SEK"));
        assert_eq!(r.totals, vec![ReceiptLine::new("Total", "217.00 SEK")]);
        assert_eq!(r.payment, vec!["Paid with Klarna", "Ref 6a2f"]);
        assert_eq!(
            r.qr_data.as_deref(),
            Some("krn:payment:eu1:transaction:6a2f")
        );
    }

    #[test]
    fn catalogue_codes_match_scans_in_any_length_and_typos_are_refused() {
        let csv = "# unit_price in minor units\ngtin,name,unit_price\n7310865004703, Coffee 500 g ,3900\n96385074,Gum,1500\n";
        let items = Catalogue::parse_csv(csv.as_bytes(), "test.csv").expect("valid csv");
        let cat = Catalogue::build(items).expect("valid catalogue");
        assert_eq!(
            cat.find("07310865004703").map(|i| i.name.as_str()),
            Some("Coffee 500 g")
        );
        assert_eq!(cat.find("00000096385074").map(|i| i.unit_price), Some(1500));
        assert!(cat.find("7310865004704").is_none());
        let typo = CatalogueItem {
            gtin: "7310865004704".into(),
            name: "Coffee".into(),
            unit_price: 3900,
        };
        assert!(Catalogue::build([typo]).is_err());
        let err = Catalogue::parse_csv("gtin,name,unit_price\n123,x,abc\n".as_bytes(), "bad.csv")
            .expect_err("a price that is no number");
        assert!(err.to_string().contains("bad.csv"), "{err}");
    }

    #[test]
    fn the_shipped_demo_catalogue_is_valid() {
        let csv = include_str!("../../assets/catalogue.example.csv");
        let items = Catalogue::parse_csv(csv.as_bytes(), "catalogue.example.csv").expect("parses");
        assert!(Catalogue::build(items).expect("valid").len() >= 4);
    }
}
