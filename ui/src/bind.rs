//! Copies the controllers' views into the Slint globals of a window (the cashier's or the
//! customer's). Runs on the UI thread only; everything it needs arrives as plain, `Send` values.

use slint::{ComponentHandle, Global, Image, Model, ModelRc, SharedString, VecModel};

use crate::manager_area::{ManagerAreaModel, PinAnswer};
use crate::qr;
use crate::sale_screen::{Outcome, PaymentPhase, SaleScreenView, Screen};
use crate::screens;
use crate::status_bar::{KlarnaHealth, StatusBarModel};

fn model<T: Clone + 'static>(rows: Vec<T>) -> ModelRc<T> {
    ModelRc::new(VecModel::from(rows))
}

fn screen(s: Screen) -> (screens::Screen, screens::Outcome) {
    let outcome = |o| match o {
        Outcome::Paid => screens::Outcome::Paid,
        Outcome::Declined => screens::Outcome::Declined,
        Outcome::Expired => screens::Outcome::Expired,
        Outcome::Canceled => screens::Outcome::Canceled,
        Outcome::Failed => screens::Outcome::Failed,
        Outcome::KlarnaOffline => screens::Outcome::KlarnaOffline,
        Outcome::NotOffered => screens::Outcome::NotOffered,
        Outcome::Refused => screens::Outcome::Refused,
    };
    match s {
        Screen::Sale => (screens::Screen::Sale, screens::Outcome::Paid),
        Screen::Payment => (screens::Screen::Payment, screens::Outcome::Paid),
        Screen::Result(o) => (screens::Screen::Result, outcome(o)),
    }
}

fn phase(p: PaymentPhase) -> screens::PaymentPhase {
    match p {
        PaymentPhase::Requested => screens::PaymentPhase::Requested,
        PaymentPhase::AwaitingCustomer => screens::PaymentPhase::AwaitingCustomer,
        PaymentPhase::CustomerOpened => screens::PaymentPhase::CustomerOpened,
        PaymentPhase::Approved => screens::PaymentPhase::Approved,
        PaymentPhase::Paid => screens::PaymentPhase::Paid,
        PaymentPhase::Declined => screens::PaymentPhase::Declined,
        PaymentPhase::Expired => screens::PaymentPhase::Expired,
        PaymentPhase::Canceled => screens::PaymentPhase::Canceled,
        PaymentPhase::Failed => screens::PaymentPhase::Failed,
    }
}

/// The QR code for `url` as a Slint image; `None` if the link cannot be encoded.
pub fn qr_image(url: &str) -> Option<Image> {
    qr::payment_qr(url, qr::PIXELS_PER_MODULE)
        .ok()
        .map(Image::from_rgb8)
}

/// Shows the sale, payment or result screen as `view` says. The QR code is drawn again only
/// when the payment link changes.
pub fn show_sale<C>(window: &C, view: &SaleScreenView)
where
    C: ComponentHandle,
    for<'a> screens::SaleScreen<'a>: Global<'a, C>,
{
    let g = window.global::<screens::SaleScreen>();
    let (screen, outcome) = screen(view.screen);
    g.set_screen(screen);
    g.set_outcome(outcome);
    g.set_lines(model(
        view.lines
            .iter()
            .map(|l| screens::LineItem {
                name: l.name.as_str().into(),
                quantity: l.quantity.as_str().into(),
                amount: l.amount.as_str().into(),
            })
            .collect(),
    ));
    g.set_total(view.total.as_str().into());
    g.set_has_sale(view.has_sale);
    g.set_can_pay(view.can_pay);
    if g.get_products().row_count() != view.products.len() {
        g.set_products(model(
            view.products
                .iter()
                .map(|(name, price)| screens::Product {
                    name: name.as_str().into(),
                    price: price.as_str().into(),
                })
                .collect(),
        ));
    }
    g.set_phase(phase(view.phase));
    let url = view.payment_url.as_deref().unwrap_or("");
    if g.get_payment_url() != url {
        match view.payment_url.as_deref().and_then(qr_image) {
            Some(image) => {
                g.set_qr(image);
                g.set_has_qr(true);
            }
            None => {
                g.set_qr(Image::default());
                g.set_has_qr(false);
            }
        }
        g.set_payment_url(url.into());
    }
    g.set_countdown(view.countdown.as_str().into());
    g.set_receipt_no(view.receipt_no.as_str().into());
    g.set_reason(view.reason.as_str().into());
}

/// Only the time left, for the once-a-second tick.
pub fn show_countdown<C>(window: &C, countdown: &str)
where
    C: ComponentHandle,
    for<'a> screens::SaleScreen<'a>: Global<'a, C>,
{
    let g = window.global::<screens::SaleScreen>();
    if g.get_countdown() != countdown {
        g.set_countdown(SharedString::from(countdown));
    }
}

pub fn show_status<C>(window: &C, status: &StatusBarModel)
where
    C: ComponentHandle,
    for<'a> screens::StatusBar<'a>: Global<'a, C>,
{
    let g = window.global::<screens::StatusBar>();
    g.set_klarna(match status.klarna {
        KlarnaHealth::Online => screens::KlarnaHealth::Online,
        KlarnaHealth::Degraded => screens::KlarnaHealth::Degraded,
        KlarnaHealth::Offline => screens::KlarnaHealth::Offline,
    });
    g.set_pending_operations(i32::try_from(status.pending_operations).unwrap_or(i32::MAX));
    g.set_device_problems(status.device_problems_text().into());
    g.set_maintenance_window(status.maintenance_window.clone().unwrap_or_default().into());
}

pub fn show_manager_area<C>(window: &C, panes: &ManagerAreaModel, unlocked: bool)
where
    C: ComponentHandle,
    for<'a> screens::ManagerArea<'a>: Global<'a, C>,
{
    let g = window.global::<screens::ManagerArea>();
    g.set_unlocked(unlocked);
    if !unlocked {
        // Nothing of the manager's data stays in the window while the area is locked.
        g.set_transactions(model(Vec::new()));
        g.set_outbox(model(Vec::new()));
        g.set_health(model(Vec::new()));
        g.set_devices(model(Vec::new()));
        return;
    }
    g.set_pin_state(screens::PinState::Waiting);
    g.set_transactions(model(
        panes
            .transactions
            .iter()
            .map(|t| screens::TransactionRow {
                time: t.time.as_str().into(),
                amount: t.amount.as_str().into(),
                state: t.state.as_str().into(),
            })
            .collect(),
    ));
    g.set_outbox(model(
        panes
            .outbox
            .iter()
            .map(|o| screens::OutboxRow {
                operation: o.operation.as_str().into(),
                state: o.state.as_str().into(),
                attempts: o.attempts.as_str().into(),
            })
            .collect(),
    ));
    g.set_health(model(
        panes
            .health
            .iter()
            .map(|h| screens::HealthRow {
                category: h.category.as_str().into(),
                state: h.state.as_str().into(),
            })
            .collect(),
    ));
    g.set_devices(model(
        panes
            .devices
            .iter()
            .map(|d| screens::DeviceRow {
                device: d.device.as_str().into(),
                state: d.state.as_str().into(),
            })
            .collect(),
    ));
}

pub fn show_pin_answer<C>(window: &C, answer: PinAnswer)
where
    C: ComponentHandle,
    for<'a> screens::ManagerArea<'a>: Global<'a, C>,
{
    window
        .global::<screens::ManagerArea>()
        .set_pin_state(match answer {
            PinAnswer::Opened => screens::PinState::Waiting,
            PinAnswer::Wrong => screens::PinState::Wrong,
            PinAnswer::Paused => screens::PinState::LockedOut,
        });
}

/// The demo's customer buttons and Klarna switch; never shown outside `kassa demo`.
pub fn show_demo_controls<C>(window: &C, enabled: bool, klarna_down: bool)
where
    C: ComponentHandle,
    for<'a> screens::DemoControls<'a>: Global<'a, C>,
{
    let g = window.global::<screens::DemoControls>();
    g.set_enabled(enabled);
    g.set_klarna_down(klarna_down);
}

/// Puts the customer's view beside the cashier's, for terminals with one screen.
pub fn use_split_layout<C>(window: &C, split: bool)
where
    C: ComponentHandle,
    for<'a> screens::ScreenLayout<'a>: Global<'a, C>,
{
    window
        .global::<screens::ScreenLayout>()
        .set_split_customer_view(split);
}
