//! The cashier's and customer's windows, driven by the terminal. The Slint event loop owns the
//! main thread; the terminal's events and a once-a-second status poll arrive on the tokio runtime
//! and reach the windows through `upgrade_in_event_loop`; buttons call the terminal on the runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::money::Currency;
use kassa_ui::amount::format_amount;
use kassa_ui::manager_area::{
    DeviceRow, HealthRow, LogKindChoice, LogPane, LogQuery, ManagerAccess, ManagerAreaModel,
    OutboxRow, PinAnswer, PinCheck, ReportPane, TransactionRow,
};
use kassa_ui::return_screen::{PurchaseLineSnapshot, PurchaseSnapshot, ReturnScreenModel};
use kassa_ui::sale_screen::{
    LineSnapshot, PaymentPhase, PaymentSnapshot, Product, Refusal, SaleSnapshot, SaleStatus,
};
use kassa_ui::screens::{
    CustomerWindow, DemoControls, ManagerArea, ReturnScreen, SaleScreen, TillWindow,
};
use kassa_ui::slint::{self, ComponentHandle};
use kassa_ui::status_bar::{KlarnaHealth, StatusBarModel};
use kassa_ui::{Language, SaleScreenModel, bind};
use tokio::runtime::Handle;
use tokio::sync::broadcast::error::RecvError;

use crate::devices::{DeviceEvent, DeviceRole, DeviceStatus, Devices};
use crate::health::{CategoryFigures, KlarnaState, Window};
use crate::manager::ManagerError;
use crate::outbox::OutboxState;
use crate::payment::AttemptState;
use crate::reports::DayReport;
use crate::returns::{ManagerApproval, Purchase, ReturnLine, ReturnRequest};
use crate::store::{LineInput, LogEntry, LogError, LogFilter, LogKind, SaleState, SaleView};
use crate::terminal::{KlarnaStatus, Terminal, TerminalError};

/// How often the status bar (and an open manager area) asks the agent for Klarna's state, the
/// outbox and the devices: often enough that the cashier sees an outage within a second or two.
const STATUS_POLL: Duration = Duration::from_secs(1);
/// Rows in the manager area's outbox pane, and in each page of its transaction log ("Show
/// older" adds the next page); more would not fit on screen.
const PANE_ROWS: usize = 30;
/// Who the manager area's actions are journaled as: the PIN pad knows no names.
const MANAGER: &str = "manager";

/// Where the customer sees the sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CustomerViewMode {
    /// A window of its own, for a second screen facing the customer.
    #[default]
    Window,
    /// Beside the cashier's screen, for terminals with one screen.
    Split,
    /// Nowhere (the pole display alone shows the total).
    Off,
}

impl std::str::FromStr for CustomerViewMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "window" => Ok(CustomerViewMode::Window),
            "split" => Ok(CustomerViewMode::Split),
            "off" => Ok(CustomerViewMode::Off),
            other => Err(format!("customer view {other:?}: use window, split or off")),
        }
    }
}

/// What the demo's customer does on their phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoCustomer {
    Opens,
    Approves,
    Declines,
}

/// Acts as the customer on the Klarna payment request with the given id.
pub type PlayCustomer = dyn Fn(&str, DemoCustomer) -> Result<(), String> + Send + Sync;

/// Lets `kassa demo` play the customer and Klarna's outages from the till's screen; the screen
/// itself knows nothing of the sandbox.
#[derive(Clone)]
pub struct DemoHooks {
    /// Acts as the customer on the Klarna payment request with this id.
    pub customer: Arc<PlayCustomer>,
    /// Takes Klarna down (true) or brings it back (false).
    pub klarna_down: Arc<dyn Fn(bool) + Send + Sync>,
}

/// How the windows are set up.
#[derive(Clone, Default)]
pub struct ScreenOptions {
    pub language: Language,
    pub customer_view: CustomerViewMode,
    /// Kiosk mode: the cashier's window covers the whole screen.
    pub fullscreen: bool,
    /// Product buttons on the sale screen (the demo's catalogue).
    pub products: Vec<Product>,
    pub demo: Option<DemoHooks>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("cannot open the till's window: {0}")]
    Platform(#[from] slint::PlatformError),
    #[error("the till's window stopped: {0}")]
    EventLoop(#[from] slint::EventLoopError),
}

/// The open windows and what drives them. Must be made and dropped on the UI thread.
pub struct Screens {
    pub till: TillWindow,
    pub customer: Option<CustomerWindow>,
    shared: Arc<Shared>,
    follower: tokio::task::JoinHandle<()>,
    status_poll: tokio::task::JoinHandle<()>,
    scans: Option<tokio::task::JoinHandle<()>>,
    _tick: slint::Timer,
}

impl Drop for Screens {
    fn drop(&mut self) {
        self.follower.abort();
        self.status_poll.abort();
        if let Some(scans) = &self.scans {
            scans.abort();
        }
    }
}

/// State the UI thread and the runtime's tasks share. Locks are held only to read or update a
/// model, never across an `.await` or a call into Slint.
struct Shared {
    terminal: Terminal,
    rt: Handle,
    sale: Mutex<SaleScreenModel>,
    status: Mutex<StatusBarModel>,
    /// The manager area's PIN pad; the store's PIN is checked by `crate::manager`.
    manager: Mutex<ManagerAccess>,
    /// The manager area's panes as last read from the agent; refreshed while it is unlocked.
    panes: Mutex<ManagerAreaModel>,
    /// The transaction log pane's filter and pages; its rows are shown as `panes.transactions`.
    log: Mutex<LogPane>,
    /// The X/Z report pane, and the report it shows (kept for "Print").
    reports: Mutex<ReportPane>,
    report: Mutex<Option<DayReport>>,
    /// The return screen.
    returns: Mutex<ReturnScreenModel>,
    /// The peripherals, for their states and the reprint button; `None` in setups without them.
    devices: Option<Devices>,
    /// Serialises the cashier's changes to the sale, so two quick taps open one sale, not two.
    changing_sale: tokio::sync::Mutex<()>,
    till: slint::Weak<TillWindow>,
    customer: Option<slint::Weak<CustomerWindow>>,
    demo: Option<DemoHooks>,
    klarna_down: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not freeze the till: the models stay usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn phase(state: AttemptState) -> PaymentPhase {
    match state {
        AttemptState::Requested => PaymentPhase::Requested,
        AttemptState::AwaitingCustomer => PaymentPhase::AwaitingCustomer,
        AttemptState::CustomerOpened => PaymentPhase::CustomerOpened,
        AttemptState::Completed => PaymentPhase::Approved,
        AttemptState::Paid => PaymentPhase::Paid,
        AttemptState::Declined => PaymentPhase::Declined,
        AttemptState::Expired => PaymentPhase::Expired,
        AttemptState::Canceled => PaymentPhase::Canceled,
        AttemptState::Failed => PaymentPhase::Failed,
        AttemptState::InDoubt => PaymentPhase::InDoubt,
    }
}

/// The terminal's view of a sale, in the screen's terms.
pub fn snapshot(view: &SaleView) -> SaleSnapshot {
    SaleSnapshot {
        sale_id: view.sale.id.clone(),
        status: match view.sale.state {
            SaleState::Open => SaleStatus::Open,
            SaleState::Paid => SaleStatus::Paid,
            SaleState::Abandoned => SaleStatus::Abandoned,
        },
        currency: view.sale.currency,
        lines: view
            .lines
            .iter()
            .map(|l| LineSnapshot {
                name: l.name.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
                total: l.total_amount,
            })
            .collect(),
        total: view.total,
        receipt_no: view.sale.receipt_no,
        attempts: view.payments.len(),
        // The payment in flight if there is one (an older attempt may have been written after
        // it, a retired draft), else the last to end.
        payment: view
            .live_attempt()
            .or(view.payments.last())
            .map(|a| PaymentSnapshot {
                attempt_id: a.id.clone(),
                phase: phase(a.state),
                url: a.payment_request_url.clone(),
                deadline_unix_ms: chrono::DateTime::parse_from_rfc3339(&a.deadline_at)
                    .ok()
                    .map(|t| t.timestamp_millis()),
                reason: a.reason.clone(),
            }),
    }
}

/// "Printer: out of paper", for the status bar; `None` for a device that can do its job.
fn device_problem(d: &DeviceStatus) -> Option<String> {
    if d.ready {
        return None;
    }
    let device = match d.role.as_str() {
        "display" => "Customer display",
        "scanner" => "Scanner",
        "printer" => "Printer",
        _ => "Card reader",
    };
    let problem = match d.state {
        "paper_out" => "out of paper",
        "cover_open" => "cover open",
        "disconnected" => "not connected",
        other => other,
    };
    Some(format!("{device}: {problem}"))
}

/// The start and end of a maintenance window in the till's local time ("Sat 12 Apr 22:00–23:30").
fn maintenance_text(m: &crate::health::Maintenance) -> String {
    let (start, end) = (
        m.start.with_timezone(&chrono::Local),
        m.end.with_timezone(&chrono::Local),
    );
    let end = if end.date_naive() == start.date_naive() {
        end.format("%H:%M").to_string()
    } else {
        end.format("%a %d %b %H:%M").to_string()
    };
    let mut text = format!("{}–{end}", start.format("%a %d %b %H:%M"));
    if !m.note.is_empty() {
        text.push_str(&format!(" ({})", m.note));
    }
    text
}

/// What the status bar shows, from the agent's Klarna status and the devices' states.
pub fn status_bar(status: &KlarnaStatus, devices: &[DeviceStatus]) -> StatusBarModel {
    StatusBarModel {
        klarna: match status.klarna {
            KlarnaState::Online => KlarnaHealth::Online,
            KlarnaState::Degraded => KlarnaHealth::Degraded,
            KlarnaState::Offline => KlarnaHealth::Offline,
        },
        // A cancel Klarna has yet to confirm waits to be sent as much as a queued refund.
        pending_operations: u32::try_from(status.outbox.pending + status.outbox.cancels_waiting)
            .unwrap_or(0),
        operations_need_attention: u32::try_from(status.outbox.needs_attention).unwrap_or(0),
        device_problems: devices.iter().filter_map(device_problem).collect(),
        maintenance_window: status.maintenance.as_ref().map(maintenance_text),
    }
}

fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%d %b %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// An amount read back from the journal, with its currency's ISO 4217 exponent; a code kassa
/// does not know (a row no version of kassa wrote) is shown as it is, in minor units.
fn money(minor: i64, currency: &str, language: Language) -> String {
    match currency.parse::<Currency>() {
        Ok(c) => format_amount(minor, &c, language),
        Err(_) => format!("{minor} {currency}"),
    }
}

/// "14:02" for a time today, "19 Nov 14:02" before, in the till's local time.
fn log_time(rfc3339: &str, now: chrono::DateTime<chrono::Local>) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => {
            let t = t.with_timezone(&chrono::Local);
            if t.date_naive() == now.date_naive() {
                t.format("%H:%M").to_string()
            } else {
                t.format("%d %b %H:%M").to_string()
            }
        }
        Err(_) => rfc3339.to_owned(),
    }
}

/// One log row as the manager reads it: when, what happened (and where it stands now), and
/// the amount.
fn log_row(
    e: &LogEntry,
    now: chrono::DateTime<chrono::Local>,
    language: Language,
) -> TransactionRow {
    let r = &e.row;
    let detail = |key: &str| r.detail.get(key).and_then(|v| v.as_str());
    let event = match r.kind.as_str() {
        // A manager action says which action (and whether it was refused).
        "manager_action" => {
            let action = detail("action")
                .unwrap_or("manager action")
                .replace('_', " ");
            match detail("outcome") {
                Some(outcome) => format!("{action} · {outcome}"),
                None => action,
            }
        }
        // An outbox row says which operation; its state follows.
        k if k.starts_with("outbox_") => detail("operation").unwrap_or("outbox").replace('_', " "),
        k => k.replace('_', " "),
    };
    let mut text = capitalised(&event);
    if let Some(state) = &e.state {
        text.push_str(" · ");
        text.push_str(&state.replace('_', " "));
    }
    TransactionRow {
        time: log_time(&r.at, now),
        amount: match (r.amount, r.currency.as_deref()) {
            (Some(a), Some(c)) => money(a, c, language),
            _ => String::new(),
        },
        state: text,
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The store's filter for what the log pane asks, exactly as `kassa log` would build it from
/// `--kind`, `--text` and `--from` (the start of the period's first local day).
fn log_filter(
    query: &LogQuery,
    now: chrono::DateTime<chrono::Local>,
) -> Result<LogFilter, LogError> {
    use kassa_ui::manager_area::LogKindChoice as K;
    let kind = match query.kind {
        K::All => None,
        K::Sales => Some(LogKind::Sale),
        K::Payments => Some(LogKind::Payment),
        K::Returns => Some(LogKind::Return),
        K::Refunds => Some(LogKind::Refund),
        K::Outbox => Some(LogKind::Outbox),
        K::Manager => Some(LogKind::Manager),
    };
    let mut filter = LogFilter {
        kinds: kind.into_iter().collect(),
        text: query.text.clone().filter(|t| !t.is_empty()),
        ..Default::default()
    };
    if let Some(days) = query.period.days() {
        filter = filter.from(&period_start(now, days).to_rfc3339())?;
    }
    filter.validate()?;
    Ok(filter)
}

/// Local midnight `days - 1` days before `now`'s day: the start of "today" or "the last 7 days".
fn period_start(
    now: chrono::DateTime<chrono::Local>,
    days: u32,
) -> chrono::DateTime<chrono::FixedOffset> {
    let day = now
        .date_naive()
        .checked_sub_days(chrono::Days::new(u64::from(days.saturating_sub(1))))
        .unwrap_or(chrono::NaiveDate::MIN);
    day.and_time(chrono::NaiveTime::MIN)
        .and_local_timezone(chrono::Local)
        // A day that starts in a daylight-saving gap starts at the gap's end.
        .earliest()
        .unwrap_or_else(|| now - chrono::Duration::days(i64::from(days)))
        .fixed_offset()
}

/// The manager area's read-only panes (outbox, Klarna's health, devices) from what the agent
/// holds; the log's rows come from the log pane.
fn manager_panes(
    outbox: &[crate::outbox::OutboxRow],
    health: &[CategoryFigures],
    devices: Option<&[DeviceStatus]>,
    language: Language,
) -> ManagerAreaModel {
    ManagerAreaModel {
        transactions: Vec::new(),
        outbox: outbox
            .iter()
            // The pane lists what still needs sending or a manager's decision.
            .filter(|o| matches!(o.state, OutboxState::Pending | OutboxState::NeedsAttention))
            .map(|o| OutboxRow {
                operation: format!(
                    "{} {}",
                    o.operation.as_str(),
                    money(o.amount, &o.currency, language)
                ),
                state: match o.state {
                    OutboxState::NeedsAttention => format!(
                        "needs a manager: {}",
                        o.error_message.as_deref().unwrap_or("refused")
                    ),
                    _ => format!("pending, next try {}", local_time(&o.next_attempt_at)),
                },
                attempts: format!("{} tries", o.attempts),
            })
            .collect(),
        health: health
            .iter()
            .map(|f| HealthRow {
                category: f.category.replace('_', " "),
                state: match (f.availability_percent, f.p99_ms) {
                    (None, _) => "no calls in 5 min".to_owned(),
                    (Some(a), Some(p99)) => {
                        format!("{a:.1} % of {} calls, p99 {p99:.0} ms", f.requests)
                    }
                    (Some(a), None) => format!("{a:.1} % of {} calls", f.requests),
                },
            })
            .collect(),
        devices: devices
            .unwrap_or_default()
            .iter()
            .map(|d| DeviceRow {
                device: format!("{} ({})", d.role.as_str().replace('_', " "), d.port),
                state: match &d.reason {
                    Some(reason) => format!("{}: {reason}", d.state.replace('_', " ")),
                    None => d.state.replace('_', " "),
                },
            })
            .collect(),
        no_devices: devices.is_none_or(<[DeviceStatus]>::is_empty),
    }
}

impl Shared {
    /// Sends the current views to the windows; they apply them in order on the UI thread.
    fn show(&self) {
        let view = lock(&self.sale).view(now_unix_ms());
        let status = lock(&self.status).clone();
        if let Some(customer) = &self.customer {
            let view = view.clone();
            let _ = customer.upgrade_in_event_loop(move |w| bind::show_sale(&w, &view));
        }
        // Fails only once the event loop is gone, when nobody is looking any more.
        let _ = self.till.upgrade_in_event_loop(move |w| {
            bind::show_sale(&w, &view);
            bind::show_status(&w, &status);
        });
    }

    /// A state of a sale from the terminal. The screen follows its own sale, or adopts a new
    /// open one (started through the local API) when it has none.
    fn sale_changed(&self, view: &SaleView) {
        let changed = {
            let mut model = lock(&self.sale);
            let ours = match model.sale() {
                Some(s) => s.sale_id == view.sale.id,
                None => view.sale.state == SaleState::Open,
            };
            ours && model.sale_changed(snapshot(view))
        };
        if changed {
            self.show();
        }
    }

    fn current_sale(&self) -> Option<String> {
        lock(&self.sale).sale_id().map(str::to_owned)
    }

    /// Asks the agent for Klarna's state, the outbox and the devices, and updates the status
    /// bar if anything changed. A store error leaves the bar as it was (and says so in the log).
    async fn refresh_status(&self) {
        let klarna = match self.terminal.klarna_status().await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("the status bar cannot read Klarna's status: {e}");
                return;
            }
        };
        let devices = self.devices.as_ref().map(Devices::statuses);
        let fresh = status_bar(&klarna, devices.as_deref().unwrap_or_default());
        {
            let mut status = lock(&self.status);
            if *status == fresh {
                return;
            }
            *status = fresh.clone();
        }
        let _ = self
            .till
            .upgrade_in_event_loop(move |w| bind::show_status(&w, &fresh));
    }

    /// Reads the manager area's panes from the agent and shows them, while it is unlocked.
    async fn refresh_manager(self: &Arc<Self>) {
        if !lock(&self.manager).is_unlocked() {
            return;
        }
        // The newest log rows too, unless the manager is paging through older ones.
        let query = lock(&self.log).refresh();
        self.ask_log(query);
        let read = self
            .terminal
            .store()
            .call(|db| db.outbox_for_manager(PANE_ROWS))
            .await;
        let outbox = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("the manager area cannot read the store: {e}");
                return;
            }
        };
        let health = self
            .terminal
            .health()
            .table(Window::FiveMinutes, chrono::Utc::now());
        let devices = self.devices.as_ref().map(Devices::statuses);
        let language = lock(&self.sale).language();
        let mut panes = manager_panes(&outbox, &health, devices.as_deref(), language);
        {
            let mut shown = lock(&self.panes);
            // The log's rows are the log pane's to change (`show_log`).
            panes.transactions = shown.transactions.clone();
            if *shown == panes {
                return;
            }
            *shown = panes;
        }
        self.show_manager_panes();
    }

    /// Sends the manager area's panes as they are now. The window reads them when it applies
    /// the update, so a late update never shows older rows over newer ones.
    fn show_manager_panes(self: &Arc<Self>) {
        let shared = Arc::clone(self);
        let _ = self.till.upgrade_in_event_loop(move |w| {
            // The manager may have left meanwhile: show nothing then.
            let unlocked = lock(&shared.manager).is_unlocked();
            let panes = lock(&shared.panes).clone();
            bind::show_manager_area(&w, &panes, unlocked);
        });
    }

    /// The agent's answer to a PIN entered on the pad: the store's hash decides, and the
    /// opening is journaled like every manager action (a refusal is journaled by `authorize`).
    async fn check_pin(self: &Arc<Self>, check: PinCheck, pin: String) {
        let store = self.terminal.store();
        let answer =
            match crate::manager::authorize(store, Some(pin), "open_manager_area", MANAGER).await {
                Ok(()) => {
                    let opened = lock(&self.manager).record(check, true, now_unix_ms());
                    // Every manager action is journaled: one that cannot be is not done.
                    if opened == Some(PinAnswer::Opened) && !self.journal_opening().await {
                        lock(&self.manager).lock();
                        Some(PinAnswer::Unavailable)
                    } else {
                        opened
                    }
                }
                // Locked out by wrong PINs at another door (the API): the pad pauses too.
                Err(ManagerError::WrongPin | ManagerError::LockedOut { .. }) => {
                    lock(&self.manager).record(check, false, now_unix_ms())
                }
                Err(ManagerError::NoPin) => {
                    lock(&self.manager).check_failed(check);
                    Some(PinAnswer::NoPin)
                }
                Err(e) => {
                    tracing::warn!("the manager PIN could not be checked: {e}");
                    lock(&self.manager).check_failed(check);
                    Some(PinAnswer::Unavailable)
                }
            };
        // `None`: the manager left while the PIN was checked; the pad shows nothing new.
        let Some(answer) = answer else { return };
        let _ = self.till.upgrade_in_event_loop(move |w| {
            bind::show_pin_answer(&w, answer);
        });
        if answer == PinAnswer::Opened {
            self.show_manager_panes();
            self.show_reports();
            let query = lock(&self.log).first_page();
            self.ask_log(Some(query));
            // Fresh figures now rather than at the next poll.
            self.refresh_manager().await;
        }
    }

    /// Journals that the manager area was opened; `false` if the journal cannot take it.
    async fn journal_opening(&self) -> bool {
        let detail = serde_json::json!({"action": "open_manager_area", "outcome": "ok"});
        let journaled = self
            .terminal
            .store()
            .call(move |db| db.journal_manager_action(MANAGER, detail))
            .await;
        match journaled {
            Ok(_) => true,
            Err(e) => {
                tracing::error!("the manager area stays shut: cannot journal its opening: {e}");
                false
            }
        }
    }

    /// Reads the log page `query` asks for (nothing if `None`) and shows it.
    fn ask_log(self: &Arc<Self>, query: Option<LogQuery>) {
        let Some(query) = query else { return };
        self.show_log();
        let shared = Arc::clone(self);
        self.rt.spawn(async move { shared.read_log(query).await });
    }

    async fn read_log(self: &Arc<Self>, query: LogQuery) {
        let now = chrono::Local::now();
        let read = match log_filter(&query, now) {
            Err(e) => Err(e.to_string()),
            Ok(filter) => {
                let before = query.before;
                let page = self
                    .terminal
                    .store()
                    .call(move |db| {
                        // Rows not indexed yet: index them so the filter can use the indexes
                        // (the answer is the same without, only slower, so a failure, e.g.
                        // another process writing, does not fail the read).
                        if let Err(e) = db.index_journal(None) {
                            tracing::warn!(error = %e, "log read with the journal's tail unindexed");
                        }
                        Ok(db.log_page(&filter, before, PANE_ROWS))
                    })
                    .await;
                match page {
                    Ok(Ok(page)) => Ok(page),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("the log cannot be read: {e}")),
                }
            }
        };
        let changed = match read {
            Ok(page) => {
                let language = lock(&self.sale).language();
                let rows = page
                    .entries
                    .iter()
                    .map(|e| log_row(e, now, language))
                    .collect();
                lock(&self.log).page_read(query.ticket, rows, page.next_before)
            }
            Err(message) => {
                tracing::info!("the manager area's log: {message}");
                lock(&self.log).page_failed(query.ticket, message)
            }
        };
        if changed {
            self.show_log();
        }
    }

    /// Sends the log pane (its filter, and its rows with the other panes) to the window.
    fn show_log(self: &Arc<Self>) {
        let view = {
            let log = lock(&self.log);
            lock(&self.panes).transactions = log.rows().to_vec();
            log.view()
        };
        let _ = self
            .till
            .upgrade_in_event_loop(move |w| bind::show_log_pane(&w, &view));
        self.show_manager_panes();
    }

    fn show_reports(&self) {
        let view = lock(&self.reports).view();
        let _ = self
            .till
            .upgrade_in_event_loop(move |w| bind::show_report_pane(&w, &view));
    }

    /// Shows `report` in the report pane (and keeps it for printing), or why there is none.
    fn report_read(&self, what: &str, report: Result<DayReport, crate::store::StoreError>) {
        match report {
            Ok(report) => {
                lock(&self.reports).report_shown(report.to_text());
                *lock(&self.report) = Some(report);
            }
            Err(e) => {
                tracing::warn!("the manager area's {what}: {e}");
                lock(&self.reports).report_failed(format!("The {what} could not be made: {e}"));
            }
        }
        self.show_reports();
    }

    /// The X-report: the totals since the last day close; changes nothing.
    fn x_report(self: &Arc<Self>) {
        if !lock(&self.manager).is_unlocked() || !lock(&self.reports).x_report() {
            return;
        }
        self.show_reports();
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            let report = shared.terminal.store().call(|db| db.x_report()).await;
            shared.report_read("X-report", report);
        });
    }

    /// The day close, once the manager confirmed it. The PIN was checked when the area opened;
    /// `close_day` journals the close itself.
    fn close_day(self: &Arc<Self>) {
        if !lock(&self.manager).is_unlocked() || !lock(&self.reports).confirm_close_day() {
            return;
        }
        self.show_reports();
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            let report = shared
                .terminal
                .store()
                .call(|db| db.close_day(MANAGER))
                .await;
            shared.report_read("Z-report", report);
        });
    }

    /// Prints the report shown on the receipt printer.
    fn print_report(self: &Arc<Self>) {
        let report = lock(&self.report).clone();
        let (Some(devices), Some(report)) = (self.devices.clone(), report) else {
            return;
        };
        if !lock(&self.manager).is_unlocked() || !lock(&self.reports).print() {
            return;
        }
        self.show_reports();
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            match devices.print_report(&report, Some(MANAGER.into())).await {
                Ok(()) => lock(&shared.reports).printed(),
                Err(e) => {
                    tracing::warn!("report not printed: {e}");
                    lock(&shared.reports).print_failed(e.to_string());
                }
            }
            shared.show_reports();
        });
    }

    /// Sends the return screen's view to the cashier's window.
    fn show_return(&self) {
        let view = lock(&self.returns).view();
        let _ = self
            .till
            .upgrade_in_event_loop(move |w| bind::show_return(&w, &view));
    }

    /// Asks the agent for the purchase with transaction id `id` and shows it, or why not.
    fn find_purchase(self: &Arc<Self>, id: String) {
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            match shared.terminal.find_purchase(&id).await {
                Ok(p) => match purchase_snapshot(&p) {
                    Ok(p) => lock(&shared.returns).purchase_found(p),
                    Err(e) => lock(&shared.returns).find_failed(e),
                },
                Err(e) => {
                    tracing::info!("return: purchase {id} not shown: {e}");
                    lock(&shared.returns).find_failed(e.to_string());
                }
            }
            shared.show_return();
        });
    }

    /// Refunds what the cashier chose, with the manager's approval when one was given.
    fn refund(self: &Arc<Self>, manager: Option<ManagerApproval>) {
        let request = {
            let mut model = lock(&self.returns);
            if !model.refunding(manager.is_some()) {
                return;
            }
            ReturnRequest {
                transaction_id: model.transaction_id().to_owned(),
                lines: model
                    .chosen()
                    .into_iter()
                    .map(|(index, quantity)| ReturnLine { index, quantity })
                    .collect(),
                reason: model.reason().to_owned(),
                restock: model.restock(),
                proof_of_purchase: true,
                operator: None,
                manager,
            }
        };
        self.show_return();
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            match shared.terminal.create_return(request).await {
                Ok(record) => lock(&shared.returns).refunded(record.receipt),
                Err(TerminalError::Forbidden(m)) => lock(&shared.returns).manager_needed(m),
                Err(e) => {
                    tracing::info!("return refused: {e}");
                    lock(&shared.returns).refund_failed(e.to_string());
                }
            }
            shared.show_return();
        });
    }

    /// Prints the current (paid) sale's receipt again on the receipt printer.
    fn reprint_receipt(self: &Arc<Self>) {
        let Some(id) = self.current_sale() else {
            return;
        };
        let Some(devices) = self.devices.clone() else {
            tracing::info!("reprint asked for, but this till has no receipt printer configured");
            return;
        };
        self.rt.spawn(async move {
            match devices.reprint_receipt(&id, None).await {
                Ok(printed) => tracing::info!(sale = %printed.sale_id, "receipt reprinted"),
                Err(e) => tracing::warn!(sale = %id, "receipt not reprinted: {e}"),
            }
        });
    }

    fn add_product(self: &Arc<Self>, index: usize) {
        let Some(product) = lock(&self.sale).product(index).cloned() else {
            return;
        };
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            let _one_at_a_time = shared.changing_sale.lock().await;
            let line = LineInput {
                name: product.name,
                reference: Some(product.reference),
                quantity: 1,
                unit_price: product.unit_price,
            };
            let open = lock(&shared.sale)
                .sale()
                .filter(|s| s.status == SaleStatus::Open)
                .map(|s| s.sale_id.clone());
            let result = match open {
                Some(id) => shared.terminal.add_lines(&id, None, vec![line]).await,
                None => {
                    lock(&shared.sale).sale_closed();
                    shared.terminal.open_sale(None, None, vec![line]).await
                }
            };
            match result {
                Ok(view) => {
                    lock(&shared.sale).sale_changed(snapshot(&view));
                    shared.show();
                }
                Err(e) => tracing::warn!("could not add {index}: {e}"),
            }
        });
    }

    fn pay(self: &Arc<Self>) {
        let id = {
            let mut model = lock(&self.sale);
            if !model.payment_starting() {
                return;
            }
            model.sale_id().map(str::to_owned)
        };
        let Some(id) = id else { return };
        self.show();
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            let started = shared
                .terminal
                .start_payment(&id, None, Default::default())
                .await;
            match started {
                Ok(_) => {
                    lock(&shared.status).klarna_reached();
                    // The attempt is in the sale now; show it from the source of truth.
                    match shared.terminal.sale(&id).await {
                        Ok(view) => {
                            lock(&shared.sale).sale_changed(snapshot(&view));
                        }
                        Err(e) => {
                            tracing::warn!("payment started but the sale cannot be read: {e}");
                            lock(&shared.sale).payment_started();
                        }
                    }
                }
                Err(e) => {
                    let refusal = match &e {
                        TerminalError::KlarnaUnavailable(_) => {
                            lock(&shared.status).klarna_unreachable();
                            Refusal::KlarnaOffline
                        }
                        TerminalError::NotEligible => Refusal::NotOffered,
                        other => Refusal::Refused(other.to_string()),
                    };
                    tracing::info!("payment not started: {e}");
                    lock(&shared.sale).payment_refused(refusal);
                }
            }
            shared.show();
        });
    }

    fn cancel_payment(self: &Arc<Self>) {
        let Some(id) = self.current_sale() else {
            return;
        };
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            // The canceled state arrives as an event; only failures need saying here.
            if let Err(e) = shared.terminal.cancel_payment(&id, None).await {
                tracing::warn!("could not cancel the payment: {e}");
            }
        });
    }

    /// Voids the sale in kassa (nothing was charged) and starts afresh; used for "Cancel sale"
    /// and for "Other payment method", where the money is taken outside kassa.
    fn close_sale_unpaid(self: &Arc<Self>) {
        let Some(id) = self.current_sale() else {
            return;
        };
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            let _one_at_a_time = shared.changing_sale.lock().await;
            match shared.terminal.abandon_sale(&id, None).await {
                Ok(_) => lock(&shared.sale).sale_closed(),
                Err(e) => tracing::warn!("could not close the sale: {e}"),
            }
            shared.show();
        });
    }

    fn demo_customer(self: &Arc<Self>, action: DemoCustomer) {
        let (Some(hooks), Some(id)) = (self.demo.clone(), self.current_sale()) else {
            return;
        };
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            let request = match shared.terminal.sale(&id).await {
                Ok(view) => view
                    .payments
                    .last()
                    .and_then(|a| a.klarna_request_id.clone()),
                Err(e) => {
                    tracing::warn!("demo: cannot read the sale: {e}");
                    None
                }
            };
            if let Some(request) = request
                && let Err(e) = (hooks.customer)(&request, action)
            {
                tracing::warn!("demo: the sandbox refused {action:?}: {e}");
            }
        });
    }
}

/// Follows the terminal's events for as long as the windows are open.
async fn follow_sales(shared: Arc<Shared>) {
    let mut events = shared.terminal.subscribe();
    loop {
        match events.recv().await {
            Ok(event) => shared.sale_changed(&event.sale),
            // Missed some events: the latest state of our sale says all they would have.
            Err(RecvError::Lagged(_)) => {
                if let Some(id) = shared.current_sale()
                    && let Ok(view) = shared.terminal.sale(&id).await
                {
                    shared.sale_changed(&view);
                }
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// Fills the return screen's transaction id when a receipt is scanned while it is open.
async fn follow_scans(shared: Arc<Shared>) {
    let Some(devices) = shared.devices.clone() else {
        return;
    };
    let mut events = devices.subscribe();
    loop {
        match events.recv().await {
            Ok(DeviceEvent::ReceiptScanned { code }) => {
                let found = {
                    let mut model = lock(&shared.returns);
                    if !model.is_open() {
                        continue;
                    }
                    model.set_transaction_id(&code);
                    model.finding()
                };
                shared.show_return();
                if let Some(id) = found {
                    shared.find_purchase(id);
                }
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => break,
        }
    }
}

/// The agent's purchase in the return screen's terms; a currency that is not ISO 4217 (as
/// Klarna reported it) cannot be shown or refunded here.
fn purchase_snapshot(p: &Purchase) -> Result<PurchaseSnapshot, String> {
    let currency = p.currency.parse::<Currency>().map_err(|_| {
        format!(
            "Klarna reports this purchase in {:?}, which is not a currency kassa knows",
            p.currency
        )
    })?;
    Ok(PurchaseSnapshot {
        transaction_id: p.transaction_id.clone(),
        currency,
        refundable_amount: p.refundable_amount,
        lines: p
            .lines
            .iter()
            .map(|l| PurchaseLineSnapshot {
                index: l.index,
                name: l.name.clone(),
                unit_price: l.unit_price,
                returnable: l.returnable_quantity,
            })
            .collect(),
    })
}

/// Keeps the status bar (and an open manager area) in step with the agent, once a second.
async fn poll_status(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(STATUS_POLL);
    // After a stall (a suspended VM, a busy store) one refresh is enough, not a burst.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        shared.refresh_status().await;
        shared.refresh_manager().await;
    }
}

impl Screens {
    /// Makes the windows and wires them to the terminal. Call on the UI thread, with the
    /// platform already chosen (winit by default; the testing backend in tests).
    pub fn open(
        terminal: Terminal,
        rt: Handle,
        opts: ScreenOptions,
    ) -> Result<Screens, ScreenError> {
        Screens::open_with_devices(terminal, rt, opts, None)
    }

    /// As `open`, with the till's peripherals: their states in the status bar and the manager
    /// area, and the reprint button printing on the receipt printer.
    pub fn open_with_devices(
        terminal: Terminal,
        rt: Handle,
        opts: ScreenOptions,
        devices: Option<Devices>,
    ) -> Result<Screens, ScreenError> {
        let till = TillWindow::new()?;
        let customer = match opts.customer_view {
            CustomerViewMode::Window => Some(CustomerWindow::new()?),
            CustomerViewMode::Split | CustomerViewMode::Off => None,
        };
        if let Err(e) = opts.language.select() {
            tracing::warn!("{e}; the screens stay in English");
        }
        bind::use_split_layout(&till, opts.customer_view == CustomerViewMode::Split);
        bind::show_demo_controls(&till, opts.demo.is_some(), false);
        bind::show_manager_area(&till, &ManagerAreaModel::default(), false);
        let has_printer = devices
            .as_ref()
            .is_some_and(|d| d.state(DeviceRole::Printer).is_some());
        let mut reports = ReportPane::new();
        reports.set_printer(has_printer);
        bind::show_report_pane(&till, &reports.view());

        let mut model = SaleScreenModel::new(opts.language, terminal.config().currency);
        model.set_products(opts.products.clone());
        let shared = Arc::new(Shared {
            terminal,
            rt: rt.clone(),
            sale: Mutex::new(model),
            status: Mutex::new(StatusBarModel::default()),
            manager: Mutex::new(ManagerAccess::new()),
            panes: Mutex::new(ManagerAreaModel::default()),
            log: Mutex::new(LogPane::new()),
            reports: Mutex::new(reports),
            report: Mutex::new(None),
            returns: Mutex::new(ReturnScreenModel::new(opts.language)),
            devices,
            changing_sale: tokio::sync::Mutex::new(()),
            till: till.as_weak(),
            customer: customer.as_ref().map(|c| c.as_weak()),
            demo: opts.demo.clone(),
            klarna_down: AtomicBool::new(false),
        });
        // Paint the first state now, so the first frame is right without waiting for the loop.
        let first = lock(&shared.sale).view(now_unix_ms());
        bind::show_sale(&till, &first);
        bind::show_status(&till, &lock(&shared.status));
        if let Some(c) = &customer {
            bind::show_sale(c, &first);
        }
        wire(&till, &shared);

        let tick = slint::Timer::default();
        {
            let shared = Arc::clone(&shared);
            tick.start(
                slint::TimerMode::Repeated,
                Duration::from_millis(250),
                move || {
                    let countdown = lock(&shared.sale).countdown(now_unix_ms());
                    if let Some(w) = shared.till.upgrade() {
                        bind::show_countdown(&w, &countdown);
                    }
                    if let Some(w) = shared.customer.as_ref().and_then(|c| c.upgrade()) {
                        bind::show_countdown(&w, &countdown);
                    }
                },
            );
        }
        let follower = rt.spawn(follow_sales(Arc::clone(&shared)));
        let status_poll = rt.spawn(poll_status(Arc::clone(&shared)));
        let scans = shared
            .devices
            .as_ref()
            .map(|_| rt.spawn(follow_scans(Arc::clone(&shared))));
        Ok(Screens {
            till,
            customer,
            shared,
            follower,
            status_poll,
            scans,
            _tick: tick,
        })
    }

    pub fn show(&self, fullscreen: bool) -> Result<(), ScreenError> {
        self.till.show()?;
        if fullscreen {
            self.till.window().set_fullscreen(true);
        }
        if let Some(c) = &self.customer {
            c.show()?;
        }
        Ok(())
    }

    /// Sends the current state again (after the tests poke the models, or a language change).
    pub fn refresh(&self) {
        self.shared.show();
    }
}

/// Connects the buttons of the cashier's window to the terminal.
fn wire(till: &TillWindow, shared: &Arc<Shared>) {
    let sale = till.global::<SaleScreen>();
    let s = Arc::clone(shared);
    sale.on_add_product(move |i| {
        if let Ok(i) = usize::try_from(i) {
            s.add_product(i);
        }
    });
    let s = Arc::clone(shared);
    sale.on_pay(move || s.pay());
    let s = Arc::clone(shared);
    sale.on_try_again(move || s.pay());
    let s = Arc::clone(shared);
    sale.on_cancel_payment(move || s.cancel_payment());
    let s = Arc::clone(shared);
    sale.on_other_method(move || s.close_sale_unpaid());
    let s = Arc::clone(shared);
    sale.on_void_sale(move || s.close_sale_unpaid());
    let s = Arc::clone(shared);
    sale.on_back_to_sale(move || {
        lock(&s.sale).dismiss_result();
        s.show();
    });
    let s = Arc::clone(shared);
    sale.on_new_sale(move || {
        lock(&s.sale).sale_closed();
        s.show();
    });
    let s = Arc::clone(shared);
    sale.on_reprint_receipt(move || s.reprint_receipt());

    let manager = till.global::<ManagerArea>();
    let s = Arc::clone(shared);
    manager.on_unlock(move |pin| {
        // An Enter on an empty pad is a slip, not a guess: nothing to check or journal.
        if pin.is_empty() {
            return;
        }
        let check = lock(&s.manager).begin_check(now_unix_ms());
        match check {
            Ok(check) => {
                if let Some(w) = s.till.upgrade() {
                    bind::show_pin_answer(&w, PinAnswer::Checking);
                }
                let shared = Arc::clone(&s);
                let pin = pin.to_string();
                s.rt.spawn(async move { shared.check_pin(check, pin).await });
            }
            Err(answer) => {
                if let Some(w) = s.till.upgrade() {
                    bind::show_pin_answer(&w, answer);
                }
            }
        }
    });
    let s = Arc::clone(shared);
    manager.on_close(move || {
        lock(&s.manager).lock();
        // Nothing of the manager's data is kept once the area is left.
        *lock(&s.panes) = ManagerAreaModel::default();
        lock(&s.log).clear();
        lock(&s.reports).clear();
        *lock(&s.report) = None;
        if let Some(w) = s.till.upgrade() {
            w.global::<ManagerArea>().set_open(false);
            // The next manager finds the pad without the last one's "wrong PIN".
            bind::show_pin_answer(&w, PinAnswer::Opened);
            bind::show_manager_area(&w, &ManagerAreaModel::default(), false);
            bind::show_log_pane(&w, &lock(&s.log).view());
            bind::show_report_pane(&w, &lock(&s.reports).view());
        }
    });
    let s = Arc::clone(shared);
    manager.on_log_text_edited(move |text| {
        let query = lock(&s.log).set_text(text.as_str());
        s.ask_log(query);
    });
    let s = Arc::clone(shared);
    manager.on_log_kind_chosen(move |i| {
        let query = LogKindChoice::from_index(i).and_then(|k| lock(&s.log).choose_kind(k));
        s.ask_log(query);
    });
    let s = Arc::clone(shared);
    manager.on_log_period_chosen(move |i| {
        let query = kassa_ui::manager_area::LogPeriod::from_index(i)
            .and_then(|p| lock(&s.log).choose_period(p));
        s.ask_log(query);
    });
    let s = Arc::clone(shared);
    manager.on_log_older(move || {
        let query = lock(&s.log).older();
        s.ask_log(query);
    });
    let s = Arc::clone(shared);
    manager.on_x_report(move || s.x_report());
    let s = Arc::clone(shared);
    manager.on_close_day(move || {
        lock(&s.reports).ask_close_day();
        s.show_reports();
    });
    let s = Arc::clone(shared);
    manager.on_cancel_close_day(move || {
        lock(&s.reports).cancel_close_day();
        s.show_reports();
    });
    let s = Arc::clone(shared);
    manager.on_confirm_close_day(move || s.close_day());
    let s = Arc::clone(shared);
    manager.on_print_report(move || s.print_report());

    let returns = till.global::<ReturnScreen>();
    let s = Arc::clone(shared);
    returns.on_open_returns(move || {
        lock(&s.returns).open();
        s.show_return();
    });
    let s = Arc::clone(shared);
    returns.on_close(move || {
        lock(&s.returns).close();
        s.show_return();
    });
    let s = Arc::clone(shared);
    returns.on_edited(move |text| {
        lock(&s.returns).set_transaction_id(text.as_str());
        s.show_return();
    });
    let s = Arc::clone(shared);
    returns.on_find(move || {
        let id = lock(&s.returns).finding();
        s.show_return();
        if let Some(id) = id {
            s.find_purchase(id);
        }
    });
    let s = Arc::clone(shared);
    returns.on_add(move |row| {
        if let Ok(row) = usize::try_from(row) {
            lock(&s.returns).add(row);
            s.show_return();
        }
    });
    let s = Arc::clone(shared);
    returns.on_remove(move |row| {
        if let Ok(row) = usize::try_from(row) {
            lock(&s.returns).remove(row);
            s.show_return();
        }
    });
    let s = Arc::clone(shared);
    returns.on_reason_edited(move |text| {
        lock(&s.returns).set_reason(text.as_str());
        s.show_return();
    });
    let s = Arc::clone(shared);
    returns.on_restock_changed(move |on| {
        lock(&s.returns).set_restock(on);
    });
    let s = Arc::clone(shared);
    returns.on_refund(move || s.refund(None));
    let s = Arc::clone(shared);
    returns.on_approve(move |name, pin| {
        s.refund(Some(ManagerApproval {
            name: name.to_string(),
            pin: pin.to_string(),
        }));
    });
    let s = Arc::clone(shared);
    returns.on_cancel_approval(move || {
        lock(&s.returns).manager_canceled();
        s.show_return();
    });

    let demo = till.global::<DemoControls>();
    let s = Arc::clone(shared);
    demo.on_customer_opens(move || s.demo_customer(DemoCustomer::Opens));
    let s = Arc::clone(shared);
    demo.on_customer_approves(move || s.demo_customer(DemoCustomer::Approves));
    let s = Arc::clone(shared);
    demo.on_customer_declines(move || s.demo_customer(DemoCustomer::Declines));
    let s = Arc::clone(shared);
    demo.on_set_klarna_down(move |down| {
        if let Some(hooks) = &s.demo {
            (hooks.klarna_down)(down);
            s.klarna_down.store(down, Ordering::Relaxed);
            if let Some(w) = s.till.upgrade() {
                bind::show_demo_controls(&w, true, down);
            }
        }
    });
}

/// Opens the windows and runs the UI on this (the main) thread until the cashier's window closes.
pub fn run(terminal: Terminal, rt: Handle, opts: ScreenOptions) -> Result<(), ScreenError> {
    run_with_devices(terminal, rt, opts, None)
}

/// Closes the windows `run` opened (from any thread), so it returns.
pub fn quit() {
    let _ = slint::invoke_from_event_loop(|| {
        let _ = slint::quit_event_loop();
    });
}

/// As `run`, with the till's peripherals (see `Screens::open_with_devices`).
pub fn run_with_devices(
    terminal: Terminal,
    rt: Handle,
    opts: ScreenOptions,
    devices: Option<Devices>,
) -> Result<(), ScreenError> {
    let fullscreen = opts.fullscreen;
    let screens = Screens::open_with_devices(terminal, rt, opts, devices)?;
    screens.show(fullscreen)?;
    slint::run_event_loop()?;
    drop(screens);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DeviceRole;
    use crate::health::{Breaker, Maintenance};
    use crate::outbox::OutboxSummary;
    use kassa_ui::manager_area::LogPeriod;

    fn klarna(state: KlarnaState, pending: i64, needs_attention: i64) -> KlarnaStatus {
        KlarnaStatus {
            klarna: state,
            breaker: Breaker::Closed,
            maintenance: None,
            outbox: OutboxSummary {
                pending,
                needs_attention,
                oldest_pending_at: None,
                oldest_pending_age_secs: None,
                pending_totals: Default::default(),
                fullest_limit_percent: 0,
                alert: false,
                cancels_waiting: 0,
            },
        }
    }

    fn device(role: DeviceRole, state: &'static str, ready: bool) -> DeviceStatus {
        DeviceStatus {
            role,
            port: "/dev/ttyUSB0".into(),
            state,
            ready,
            since: None,
            reason: None,
        }
    }

    #[test]
    fn the_status_bar_shows_klarna_the_outbox_and_only_devices_with_a_problem() {
        let bar = status_bar(
            &klarna(KlarnaState::Offline, 2, 1),
            &[
                device(DeviceRole::Printer, "paper_out", false),
                device(DeviceRole::Scanner, "connected", true),
            ],
        );
        assert_eq!(bar.klarna, KlarnaHealth::Offline);
        assert_eq!(bar.pending_operations, 2);
        assert_eq!(bar.operations_need_attention, 1);
        // A payment request's cancel that Klarna has not confirmed also waits to be sent.
        let mut status = klarna(KlarnaState::Offline, 2, 1);
        status.outbox.cancels_waiting = 1;
        assert_eq!(status_bar(&status, &[]).pending_operations, 3);
        assert_eq!(
            bar.device_problems,
            vec!["Printer: out of paper".to_string()]
        );
        assert_eq!(bar.maintenance_window, None);
    }

    #[test]
    fn an_upcoming_maintenance_window_is_shown_with_its_note() {
        let start = chrono::Utc::now() + chrono::Duration::days(1);
        let mut status = klarna(KlarnaState::Online, 0, 0);
        status.maintenance = Some(Maintenance {
            start,
            end: start + chrono::Duration::minutes(30),
            note: "Klarna upgrade".into(),
        });
        let text = status_bar(&status, &[])
            .maintenance_window
            .expect("the window is shown");
        let local = start.with_timezone(&chrono::Local);
        assert!(
            text.starts_with(&local.format("%a %d %b %H:%M").to_string()),
            "{text}"
        );
        assert!(text.ends_with("(Klarna upgrade)"), "{text}");
    }

    fn query(kind: LogKindChoice, period: LogPeriod, text: Option<&str>) -> LogQuery {
        LogQuery {
            ticket: 1,
            text: text.map(str::to_string),
            kind,
            period,
            before: None,
        }
    }

    #[test]
    fn the_log_panes_filters_are_the_ones_kassa_log_builds() {
        let now = chrono::Local::now();
        let midnight = now
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_local_timezone(chrono::Local)
            .earliest()
            .expect("today has a start");
        let cli = |from: Option<String>, kind: Option<&str>, text: Option<&str>| {
            crate::store::LogQuery {
                from,
                kind: kind.map(str::to_string),
                text: text.map(str::to_string),
                ..Default::default()
            }
            .filter()
            .expect("a valid filter")
        };
        assert_eq!(
            log_filter(
                &query(LogKindChoice::Sales, LogPeriod::Today, Some("mug")),
                now
            )
            .expect("valid"),
            cli(Some(midnight.to_rfc3339()), Some("sale"), Some("mug"))
        );
        let week = midnight.date_naive() - chrono::Days::new(6);
        assert_eq!(
            period_start(now, 7).date_naive(),
            week,
            "today and the six days before"
        );
        for (choice, kind) in [
            (LogKindChoice::Payments, "payment"),
            (LogKindChoice::Returns, "return"),
            (LogKindChoice::Refunds, "refund"),
            (LogKindChoice::Outbox, "outbox"),
            (LogKindChoice::Manager, "manager"),
        ] {
            assert_eq!(
                log_filter(&query(choice, LogPeriod::All, None), now).expect("valid"),
                cli(None, Some(kind), None)
            );
        }
        assert_eq!(
            log_filter(&query(LogKindChoice::All, LogPeriod::All, None), now).expect("valid"),
            LogFilter::default(),
            "everything, like `kassa log` without flags"
        );
    }

    fn entry(kind: &str, at: &str, amount: Option<i64>, detail: serde_json::Value) -> LogEntry {
        let row = crate::store::JournalRow {
            seq: 1,
            at: at.into(),
            terminal_id: "till-1".into(),
            operator: "manager".into(),
            kind: kind.into(),
            sale_id: None,
            attempt_id: None,
            amount,
            currency: amount.map(|_| "SEK".into()),
            klarna_request_id: None,
            klarna_transaction_id: None,
            correlation_id: None,
            detail: detail.clone(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        LogEntry::new(row, detail.to_string(), None)
    }

    #[test]
    fn a_log_row_says_what_happened_when_and_how_much() {
        let now = chrono::Local::now();
        let today = now.with_timezone(&chrono::Utc).to_rfc3339();
        let mut sale = entry(
            "receipt_issued",
            &today,
            Some(14_900),
            serde_json::json!({}),
        );
        sale.state = Some("paid".into());
        let row = log_row(&sale, now, Language::English);
        assert_eq!(
            row.time,
            now.format("%H:%M").to_string(),
            "today: the time alone"
        );
        assert_eq!(row.state, "Receipt issued · paid");
        assert_eq!(row.amount, "SEK\u{a0}149.00");

        let refused = entry(
            "manager_action",
            "2020-02-03T12:00:00Z",
            None,
            serde_json::json!({"action": "open_manager_area", "outcome": "refused"}),
        );
        let row = log_row(&refused, now, Language::English);
        assert_eq!(row.state, "Open manager area · refused");
        assert_eq!(row.amount, "");
        let then = chrono::DateTime::parse_from_rfc3339("2020-02-03T12:00:00Z")
            .expect("a time")
            .with_timezone(&chrono::Local);
        assert_eq!(
            row.time,
            then.format("%d %b %H:%M").to_string(),
            "another day: the date too"
        );

        let mut refund = entry(
            "outbox_queued",
            &today,
            Some(12_000),
            serde_json::json!({"operation": "refund", "outbox_id": 3}),
        );
        refund.state = Some("queued".into());
        assert_eq!(
            log_row(&refund, now, Language::English).state,
            "Refund · queued"
        );
    }

    #[test]
    fn a_till_without_devices_says_so_in_the_manager_area() {
        let panes = manager_panes(&[], &[], None, Language::English);
        assert!(panes.no_devices);
        let panes = manager_panes(
            &[],
            &[],
            Some(&[device(DeviceRole::Printer, "cover_open", false)]),
            Language::English,
        );
        assert!(!panes.no_devices);
        assert_eq!(panes.devices[0].state, "cover open");
    }
}
