//! Every callback of the Slint windows, wired to the shared controller. Callbacks run on the UI
//! thread: they only update a model or hand work to the runtime, never wait on the agent.

use super::*;

/// Connects the buttons of the cashier's window to the terminal.
pub(super) fn wire(till: &TillWindow, shared: &Arc<Shared>) {
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
    // "Other payment method" is a tender choice (cash or the card terminal), never an abandon.
    let s = Arc::clone(shared);
    sale.on_other_method(move || {
        lock(&s.sale).open_tender();
        s.show();
    });
    let s = Arc::clone(shared);
    sale.on_open_tender(move || {
        lock(&s.sale).open_tender();
        s.show();
    });
    let s = Arc::clone(shared);
    sale.on_close_tender(move || {
        lock(&s.sale).close_tender();
        s.show();
    });
    let s = Arc::clone(shared);
    sale.on_card_mode_chosen(move |card| {
        lock(&s.sale).set_card_mode(card);
        s.show();
    });
    let s = Arc::clone(shared);
    sale.on_keypad(move |key| {
        lock(&s.sale).keypad(&key);
        s.show();
    });
    let s = Arc::clone(shared);
    sale.on_take_cash(move || s.take_tender(TenderPress::Cash));
    let s = Arc::clone(shared);
    sale.on_take_exact_cash(move || s.take_tender(TenderPress::ExactCash));
    let (s, w) = (Arc::clone(shared), till.as_weak());
    sale.on_take_card(move || {
        let reference = w
            .upgrade()
            .map(|w| w.global::<SaleScreen>().get_card_reference().to_string())
            .unwrap_or_default();
        s.take_tender(TenderPress::Card(reference));
    });
    let s = Arc::clone(shared);
    sale.on_open_price(move |i| {
        if let Ok(i) = usize::try_from(i) {
            lock(&s.sale).open_price(i);
            s.show();
        }
    });
    let s = Arc::clone(shared);
    sale.on_open_discount(move || {
        lock(&s.sale).open_discount();
        s.show();
    });
    let s = Arc::clone(shared);
    sale.on_close_price(move || {
        lock(&s.sale).close_price();
        s.show();
    });
    let (s, w) = (Arc::clone(shared), till.as_weak());
    sale.on_set_price(move || {
        let Some(w) = w.upgrade() else { return };
        let g = w.global::<SaleScreen>();
        let reason = g.get_price_reason().to_string();
        let (name, pin) = (
            g.get_manager_name().to_string(),
            g.get_manager_pin().to_string(),
        );
        // The PIN leaves the screen at once.
        g.set_manager_pin(Default::default());
        let manager =
            (!name.trim().is_empty() && !pin.is_empty()).then(|| crate::manager::ManagerApproval {
                name: name.trim().to_string(),
                pin,
            });
        s.set_price(reason, manager);
    });
    for (delta, which) in [(-1, 0), (1, 1), (0, 2)] {
        let s = Arc::clone(shared);
        let edit = move |i: i32| {
            if let Ok(i) = usize::try_from(i) {
                s.edit_line(i, delta);
            }
        };
        match which {
            0 => sale.on_line_minus(edit),
            1 => sale.on_line_plus(edit),
            _ => sale.on_line_remove(edit),
        }
    }
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

    let staff = till.global::<Staff>();
    let (s, w) = (Arc::clone(shared), till.as_weak());
    staff.on_sign_in(move || {
        let Some(w) = w.upgrade() else { return };
        let g = w.global::<Staff>();
        let (id, pin) = (g.get_id().to_string(), g.get_pin().to_string());
        // The PIN leaves the screen at once: typed, handed over, forgotten.
        g.set_pin(Default::default());
        if !id.is_empty() && !pin.is_empty() {
            s.sign_in(id, pin);
        }
    });
    let s = Arc::clone(shared);
    staff.on_sign_out(move || s.sign_out());

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
                s.spawn(async move { shared.check_pin(check, pin).await });
            }
            Err(answer) => {
                if let Some(w) = s.till.upgrade() {
                    bind::show_pin_answer(&w, answer);
                }
            }
        }
    });
    let s = Arc::clone(shared);
    manager.on_close(move || s.close_manager_area());
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
        s.look_for_still_open();
    });
    let s = Arc::clone(shared);
    manager.on_cancel_close_day(move || {
        lock(&s.reports).cancel_close_day();
        s.show_reports();
    });
    let s = Arc::clone(shared);
    let w = till.as_weak();
    manager.on_confirm_close_day(move || {
        let counted = w
            .upgrade()
            .map(|w| w.global::<ManagerArea>().get_counted_cash().to_string())
            .unwrap_or_default();
        s.close_day(&counted);
    });
    let s = Arc::clone(shared);
    manager.on_print_report(move || s.print_report());

    let returns = till.global::<ReturnScreen>();
    let s = Arc::clone(shared);
    returns.on_open_returns(move || {
        *lock(&s.returning_sale) = None;
        lock(&s.returns).open();
        s.show_return();
    });
    let s = Arc::clone(shared);
    returns.on_close(move || {
        *lock(&s.returning_sale) = None;
        lock(&s.returns).close();
        s.show_return();
    });
    let s = Arc::clone(shared);
    returns.on_edited(move |text| {
        *lock(&s.returning_sale) = None;
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
