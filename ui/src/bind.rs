//! Copies the controllers' views into the Slint globals of a window (the cashier's or the
//! customer's). Runs on the UI thread only; everything it needs arrives as plain, `Send` values.

use std::cell::RefCell;

use slint::{ComponentHandle, Global, Image, Model, ModelRc, SharedString, VecModel};

use crate::manager_area::{LogPaneView, ManagerAreaModel, PinAnswer, ReportPaneView};
use crate::qr;
use crate::return_screen::ReturnScreenView;
use crate::sale_screen::{Outcome, PaymentPhase, SaleScreenView, Screen};
use crate::screens;
use crate::status_bar::{KlarnaHealth, StatusBarModel};

/// Puts `rows` into a list property in place. The window keeps one `VecModel` per list and only
/// the rows that differ are written, so Slint re-lays out and redraws just those rows; a new
/// model per update would make it rebuild every row's items and repaint the whole list.
fn update_rows<T: Clone + PartialEq + 'static>(
    current: ModelRc<T>,
    rows: impl Iterator<Item = T>,
    set: impl FnOnce(ModelRc<T>),
) {
    let Some(list) = current.as_any().downcast_ref::<VecModel<T>>() else {
        // The first update (the property still holds Slint's empty default).
        set(ModelRc::new(VecModel::from(rows.collect::<Vec<T>>())));
        return;
    };
    let mut n = 0;
    for row in rows {
        if n < list.row_count() {
            if list.row_data(n).as_ref() != Some(&row) {
                list.set_row_data(n, row);
            }
        } else {
            list.push(row);
        }
        n += 1;
    }
    while list.row_count() > n {
        list.remove(list.row_count() - 1);
    }
}

/// Sets a string property only when its text changes: an unchanged value then costs neither a
/// string allocation nor a dirty region.
fn set_text(current: SharedString, new: &str, set: impl FnOnce(SharedString)) {
    if current != new {
        set(new.into());
    }
}

fn screen(s: Screen) -> (screens::Screen, screens::Outcome) {
    let outcome = |o| match o {
        Outcome::Paid => screens::Outcome::Paid,
        Outcome::Declined => screens::Outcome::Declined,
        Outcome::Expired => screens::Outcome::Expired,
        Outcome::Canceled => screens::Outcome::Canceled,
        Outcome::Failed => screens::Outcome::Failed,
        Outcome::InDoubt => screens::Outcome::InDoubt,
        Outcome::KlarnaOffline => screens::Outcome::KlarnaOffline,
        Outcome::NotOffered => screens::Outcome::NotOffered,
        Outcome::Refused => screens::Outcome::Refused,
    };
    match s {
        Screen::Sale => (screens::Screen::Sale, screens::Outcome::Paid),
        Screen::Tender => (screens::Screen::Tender, screens::Outcome::Paid),
        Screen::Price => (screens::Screen::Price, screens::Outcome::Paid),
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
        PaymentPhase::InDoubt => screens::PaymentPhase::InDoubt,
    }
}

thread_local! {
    /// The last payment link drawn and its image. Both windows show the same link and the
    /// adapter re-sends the whole view on every change, so the code is made once per payment
    /// attempt, not once per window per update. UI thread only, like every `Image`.
    static LAST_QR: RefCell<Option<(String, Image)>> = const { RefCell::new(None) };
}

/// The QR code for `url` as a Slint image, drawn at one pixel per module (the screen scales it
/// up with pixelated rendering); `None` if the link cannot be encoded.
pub fn qr_image(url: &str) -> Option<Image> {
    LAST_QR.with_borrow_mut(|last| {
        if let Some((cached, image)) = last.as_ref()
            && cached == url
        {
            return Some(image.clone());
        }
        let image = Image::from_rgb8(qr::payment_qr(url, qr::PIXELS_PER_MODULE).ok()?);
        *last = Some((url.to_owned(), image.clone()));
        Some(image)
    })
}

/// Shows the sale, payment or result screen as `view` says. Only what changed is written, so
/// that the software renderer redraws only the parts of the window that changed.
pub fn show_sale<C>(window: &C, view: &SaleScreenView)
where
    C: ComponentHandle,
    for<'a> screens::SaleScreen<'a>: Global<'a, C>,
{
    let g = window.global::<screens::SaleScreen>();
    let (screen, outcome) = screen(view.screen);
    if !view.has_sale && g.get_confirm_void() {
        // The sale is gone (cancelled, or closed elsewhere): nothing is left to confirm.
        g.set_confirm_void(false);
    }
    if g.get_screen() != screen {
        g.set_screen(screen);
    }
    if g.get_outcome() != outcome {
        g.set_outcome(outcome);
    }
    update_rows(
        g.get_lines(),
        view.lines.iter().map(|l| screens::LineItem {
            name: l.name.as_str().into(),
            quantity: l.quantity.as_str().into(),
            amount: l.amount.as_str().into(),
        }),
        |m| g.set_lines(m),
    );
    set_text(g.get_total(), &view.total, |t| g.set_total(t));
    if g.get_has_sale() != view.has_sale {
        g.set_has_sale(view.has_sale);
    }
    if g.get_can_pay() != view.can_pay {
        g.set_can_pay(view.can_pay);
    }
    update_rows(
        g.get_products(),
        view.products.iter().map(|(name, price)| screens::Product {
            name: name.as_str().into(),
            price: price.as_str().into(),
        }),
        |m| g.set_products(m),
    );
    let phase = phase(view.phase);
    if g.get_phase() != phase {
        g.set_phase(phase);
    }
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
    set_text(g.get_countdown(), &view.countdown, |t| g.set_countdown(t));
    set_text(g.get_receipt_no(), &view.receipt_no, |t| {
        g.set_receipt_no(t)
    });
    set_text(g.get_reason(), &view.reason, |t| g.set_reason(t));
    set_text(g.get_due(), &view.due, |t| g.set_due(t));
    update_rows(
        g.get_tenders(),
        view.tenders.iter().map(|t| SharedString::from(t.as_str())),
        |m| g.set_tenders(m),
    );
    set_text(g.get_change(), &view.change, |t| g.set_change(t));
    if g.get_lines_editable() != view.lines_editable {
        g.set_lines_editable(view.lines_editable);
    }
    // A new sale (or none) starts with no line selected.
    if !view.has_sale && g.get_selected_line() != -1 {
        g.set_selected_line(-1);
    }
    if g.get_card_mode() != view.card_mode {
        g.set_card_mode(view.card_mode);
    }
    set_text(g.get_entry(), &view.entry, |t| g.set_entry(t));
    set_text(g.get_tender_problem(), &view.tender_problem, |t| {
        g.set_tender_problem(t)
    });
    if g.get_discount_mode() != view.discount_mode {
        g.set_discount_mode(view.discount_mode);
    }
    set_text(g.get_pricing_name(), &view.pricing_name, |t| {
        g.set_pricing_name(t)
    });
    set_text(g.get_pricing_price(), &view.pricing_price, |t| {
        g.set_pricing_price(t)
    });
    // Off the price screen nothing typed there is kept: a manager's PIN least of all.
    if view.screen != Screen::Price
        && (!g.get_price_reason().is_empty()
            || !g.get_manager_name().is_empty()
            || !g.get_manager_pin().is_empty())
    {
        g.set_price_reason(SharedString::new());
        g.set_manager_name(SharedString::new());
        g.set_manager_pin(SharedString::new());
    }
    if view.screen != Screen::Tender && !g.get_card_reference().is_empty() {
        g.set_card_reference(SharedString::new());
    }
    set_text(g.get_notice(), &view.notice, |t| g.set_notice(t));
}

/// Only the time left, for the once-a-second tick.
pub fn show_countdown<C>(window: &C, countdown: &str)
where
    C: ComponentHandle,
    for<'a> screens::SaleScreen<'a>: Global<'a, C>,
{
    let g = window.global::<screens::SaleScreen>();
    set_text(g.get_countdown(), countdown, |t| g.set_countdown(t));
}

/// The status bar; the agent pushes it every second, so unchanged fields are left alone.
pub fn show_status<C>(window: &C, status: &StatusBarModel)
where
    C: ComponentHandle,
    for<'a> screens::StatusBar<'a>: Global<'a, C>,
{
    let g = window.global::<screens::StatusBar>();
    let klarna = match status.klarna {
        KlarnaHealth::Online => screens::KlarnaHealth::Online,
        KlarnaHealth::Degraded => screens::KlarnaHealth::Degraded,
        KlarnaHealth::Offline => screens::KlarnaHealth::Offline,
    };
    if g.get_klarna() != klarna {
        g.set_klarna(klarna);
    }
    let pending = i32::try_from(status.pending_operations).unwrap_or(i32::MAX);
    if g.get_pending_operations() != pending {
        g.set_pending_operations(pending);
    }
    let attention = i32::try_from(status.operations_need_attention).unwrap_or(i32::MAX);
    if g.get_operations_need_attention() != attention {
        g.set_operations_need_attention(attention);
    }
    set_text(
        g.get_device_problems(),
        &status.device_problems_text(),
        |t| g.set_device_problems(t),
    );
    set_text(
        g.get_maintenance_window(),
        status.maintenance_window.as_deref().unwrap_or(""),
        |t| g.set_maintenance_window(t),
    );
}

/// The manager area's panes, or nothing of them while it is locked.
pub fn show_manager_area<C>(window: &C, panes: &ManagerAreaModel, unlocked: bool)
where
    C: ComponentHandle,
    for<'a> screens::ManagerArea<'a>: Global<'a, C>,
{
    let g = window.global::<screens::ManagerArea>();
    if g.get_unlocked() != unlocked {
        g.set_unlocked(unlocked);
    }
    // Nothing of the manager's data stays in the window while the area is locked.
    let empty = ManagerAreaModel::default();
    let panes = if unlocked { panes } else { &empty };
    if unlocked && g.get_pin_state() != screens::PinState::Waiting {
        g.set_pin_state(screens::PinState::Waiting);
    }
    update_rows(
        g.get_transactions(),
        panes.transactions.iter().map(|t| screens::TransactionRow {
            time: t.time.as_str().into(),
            amount: t.amount.as_str().into(),
            state: t.state.as_str().into(),
        }),
        |m| g.set_transactions(m),
    );
    update_rows(
        g.get_outbox(),
        panes.outbox.iter().map(|o| screens::OutboxRow {
            operation: o.operation.as_str().into(),
            state: o.state.as_str().into(),
            attempts: o.attempts.as_str().into(),
        }),
        |m| g.set_outbox(m),
    );
    update_rows(
        g.get_health(),
        panes.health.iter().map(|h| screens::HealthRow {
            category: h.category.as_str().into(),
            state: h.state.as_str().into(),
        }),
        |m| g.set_health(m),
    );
    update_rows(
        g.get_devices(),
        panes.devices.iter().map(|d| screens::DeviceRow {
            device: d.device.as_str().into(),
            state: d.state.as_str().into(),
        }),
        |m| g.set_devices(m),
    );
    if g.get_no_devices() != panes.no_devices {
        g.set_no_devices(panes.no_devices);
    }
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
            PinAnswer::Checking => screens::PinState::Checking,
            PinAnswer::Wrong => screens::PinState::Wrong,
            PinAnswer::Paused => screens::PinState::LockedOut,
            PinAnswer::NoPin => screens::PinState::NoPin,
            PinAnswer::Unavailable => screens::PinState::Unavailable,
        });
}

/// The log pane's filter and state; its rows travel in `ManagerAreaModel::transactions`. The
/// search text is only written when it differs, so typing is never fought over.
pub fn show_log_pane<C>(window: &C, view: &LogPaneView)
where
    C: ComponentHandle,
    for<'a> screens::ManagerArea<'a>: Global<'a, C>,
{
    let g = window.global::<screens::ManagerArea>();
    set_text(g.get_log_text(), &view.text, |t| g.set_log_text(t));
    if g.get_log_kind() != view.kind.index() {
        g.set_log_kind(view.kind.index());
    }
    if g.get_log_period() != view.period.index() {
        g.set_log_period(view.period.index());
    }
    set_text(g.get_log_problem(), &view.problem, |t| g.set_log_problem(t));
    if g.get_log_more() != view.can_show_older {
        g.set_log_more(view.can_show_older);
    }
    if g.get_log_busy() != view.busy {
        g.set_log_busy(view.busy);
    }
}

/// The report pane: the report shown, the day close's confirmation and printing.
pub fn show_report_pane<C>(window: &C, view: &ReportPaneView)
where
    C: ComponentHandle,
    for<'a> screens::ManagerArea<'a>: Global<'a, C>,
{
    let g = window.global::<screens::ManagerArea>();
    set_text(g.get_report_text(), &view.text, |t| g.set_report_text(t));
    g.set_report_confirming(view.confirming);
    g.set_report_busy(view.busy);
    g.set_report_can_ask(view.can_ask);
    g.set_has_printer(view.has_printer);
    g.set_can_print(view.can_print);
    set_text(g.get_report_message(), &view.message, |t| {
        g.set_report_message(t)
    });
    g.set_report_problem(view.problem);
    set_text(g.get_report_still_open(), &view.still_open, |t| {
        g.set_report_still_open(t)
    });
    g.set_report_printed(view.printed);
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

/// The return screen as `view` says. The text fields the cashier types into are only written
/// when the controller's text differs, so typing is never fought over.
pub fn show_return<C>(window: &C, view: &ReturnScreenView)
where
    C: ComponentHandle,
    for<'a> screens::ReturnScreen<'a>: Global<'a, C>,
{
    let g = window.global::<screens::ReturnScreen>();
    if g.get_open() != view.open {
        g.set_open(view.open);
    }
    if !view.open {
        // Nothing of a finished return stays in the window.
        g.set_reason(SharedString::new());
        g.set_restock(true);
    } else {
        // The controller's copy follows every keystroke, so this only writes when it moved on
        // (a new return clears the form).
        set_text(g.get_reason(), &view.reason, |t| g.set_reason(t));
        if g.get_restock() != view.restock {
            g.set_restock(view.restock);
        }
    }
    set_text(g.get_transaction_id(), &view.transaction_id, |t| {
        g.set_transaction_id(t)
    });
    if g.get_has_purchase() != view.has_purchase {
        g.set_has_purchase(view.has_purchase);
    }
    update_rows(
        g.get_lines(),
        view.lines.iter().map(|l| screens::ReturnLineRow {
            name: l.name.as_str().into(),
            returnable: l.returnable.as_str().into(),
            selected: i32::try_from(l.selected).unwrap_or(i32::MAX),
            can_add: l.can_add,
            can_remove: l.can_remove,
        }),
        |m| g.set_lines(m),
    );
    set_text(g.get_amount(), &view.amount, |t| g.set_amount(t));
    if g.get_can_find() != view.can_find {
        g.set_can_find(view.can_find);
    }
    if g.get_can_refund() != view.can_refund {
        g.set_can_refund(view.can_refund);
    }
    if g.get_needs_manager() != view.needs_manager {
        g.set_needs_manager(view.needs_manager);
    }
    if g.get_busy() != view.busy {
        g.set_busy(view.busy);
    }
    set_text(g.get_slip(), &view.slip, |t| g.set_slip(t));
    set_text(g.get_error(), &view.error, |t| g.set_error(t));
}

/// Who is signed in at the till ("" for nobody), whether the till is locked until someone signs
/// in, why the last sign-in was refused, and whether one is being checked.
pub fn show_staff(
    window: &screens::TillWindow,
    signed_in: &str,
    locked: bool,
    problem: &str,
    busy: bool,
) {
    let g = window.global::<screens::Staff>();
    set_text(g.get_signed_in(), signed_in, |t| g.set_signed_in(t));
    if g.get_locked() != locked {
        g.set_locked(locked);
    }
    set_text(g.get_problem(), problem, |t| g.set_problem(t));
    if g.get_busy() != busy {
        g.set_busy(busy);
    }
    if !signed_in.is_empty() && g.get_sign_in_open() {
        // Signed in: the form closes and forgets what was typed.
        g.set_sign_in_open(false);
        g.set_pin(SharedString::new());
        g.set_id(SharedString::new());
    }
}
