//! The cashier's and customer's windows, driven by the terminal. The Slint event loop owns the
//! main thread; the terminal's events and a once-a-second status poll arrive on the tokio runtime
//! and reach the windows through `upgrade_in_event_loop`; buttons call the terminal on the runtime.

mod callbacks;
mod controller;
mod manager;
mod presenters;
mod staff;
mod window;

use callbacks::wire;
use controller::{follow_sales, follow_scans, poll_status};
pub use presenters::{log_event_name, log_state_name, snapshot, status_bar};
use presenters::{log_filter, log_row, manager_panes, purchase_snapshot, screen_error};
pub use window::{quit, run, run_with_devices};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::money::Currency;
use controller::TenderPress;
use kassa_core::sale::LineEdit;
use kassa_core::tender::TenderInput;
use kassa_ui::amount::format_amount;
use kassa_ui::manager_area::{
    DeviceRow, HealthRow, LogKindChoice, LogPane, LogQuery, ManagerAccess, ManagerAreaModel,
    OutboxRow, PinAnswer, PinCheck, ReportPane, TransactionRow,
};
use kassa_ui::return_screen::{PurchaseLineSnapshot, PurchaseSnapshot, ReturnScreenModel};
use kassa_ui::sale_screen::{
    LineSnapshot, PaymentPhase, PaymentSnapshot, Product, Refusal, Reprint, SaleSnapshot,
    SaleStatus, TenderKind, TenderSnapshot,
};
use kassa_ui::screens::{
    CustomerWindow, DemoControls, ManagerArea, ReturnScreen, SaleScreen, Staff, TillWindow,
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
    /// Who is signed in at this screen (see `staff.rs`).
    staff: Mutex<staff::ScreenStaff>,
    /// The till sale the return screen shows (it comes back by its receipt), and its line
    /// numbers by the screen's line index; `None` for a purchase found by its Klarna id.
    /// (The code it was found by, the sale, its line numbers.)
    returning_sale: Mutex<Option<(String, String, Vec<i64>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not freeze the till: the models stay usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
