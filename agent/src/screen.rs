//! The cashier's and customer's windows, driven by the terminal. The Slint event loop owns the
//! main thread; the terminal's events arrive on the tokio runtime and reach the windows through
//! `upgrade_in_event_loop`; buttons call the terminal on the runtime. The agent stays the truth.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kassa_ui::amount::Currency;
use kassa_ui::manager_area::{ManagerAccess, ManagerAreaModel};
use kassa_ui::sale_screen::{
    LineSnapshot, PaymentPhase, PaymentSnapshot, Product, Refusal, SaleSnapshot, SaleStatus,
};
use kassa_ui::screens::{CustomerWindow, DemoControls, ManagerArea, SaleScreen, TillWindow};
use kassa_ui::slint::{self, ComponentHandle};
use kassa_ui::status_bar::StatusBarModel;
use kassa_ui::{Language, SaleScreenModel, bind};
use tokio::runtime::Handle;
use tokio::sync::broadcast::error::RecvError;

use crate::payment::AttemptState;
use crate::store::{LineInput, SaleState, SaleView};
use crate::terminal::{Terminal, TerminalError};

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
    /// Opens the manager area; an empty PIN keeps it shut.
    pub manager_pin: String,
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
    _tick: slint::Timer,
}

impl Drop for Screens {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// State the UI thread and the runtime's tasks share. Locks are held only to read or update a
/// model, never across an `.await` or a call into Slint.
struct Shared {
    terminal: Terminal,
    rt: Handle,
    sale: Mutex<SaleScreenModel>,
    status: Mutex<StatusBarModel>,
    manager: Mutex<ManagerAccess>,
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
        currency: Currency::new(view.sale.currency.code(), view.sale.currency.exponent()),
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
        payment: view.payments.last().map(|a| PaymentSnapshot {
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

impl Screens {
    /// Makes the windows and wires them to the terminal. Call on the UI thread, with the
    /// platform already chosen (winit by default; the testing backend in tests).
    pub fn open(
        terminal: Terminal,
        rt: Handle,
        opts: ScreenOptions,
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

        let mut model = SaleScreenModel::new(
            opts.language,
            Currency::new(
                terminal.config().currency.code(),
                terminal.config().currency.exponent(),
            ),
        );
        model.set_products(opts.products.clone());
        let shared = Arc::new(Shared {
            terminal,
            rt: rt.clone(),
            sale: Mutex::new(model),
            status: Mutex::new(StatusBarModel::default()),
            manager: Mutex::new(ManagerAccess::new(opts.manager_pin.clone())),
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
        Ok(Screens {
            till,
            customer,
            shared,
            follower,
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
    sale.on_reprint_receipt(|| {
        tracing::info!("reprint asked for; receipts print once the printer driver is wired in");
    });

    let manager = till.global::<ManagerArea>();
    let s = Arc::clone(shared);
    manager.on_unlock(move |pin| {
        let answer = lock(&s.manager).try_pin(pin.as_str(), now_unix_ms());
        let unlocked = lock(&s.manager).is_unlocked();
        if let Some(w) = s.till.upgrade() {
            bind::show_pin_answer(&w, answer);
            bind::show_manager_area(&w, &ManagerAreaModel::default(), unlocked);
        }
    });
    let s = Arc::clone(shared);
    manager.on_close(move || {
        lock(&s.manager).lock();
        if let Some(w) = s.till.upgrade() {
            w.global::<ManagerArea>().set_open(false);
            bind::show_manager_area(&w, &ManagerAreaModel::default(), false);
        }
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
    let fullscreen = opts.fullscreen;
    let screens = Screens::open(terminal, rt, opts)?;
    screens.show(fullscreen)?;
    slint::run_event_loop()?;
    drop(screens);
    Ok(())
}
