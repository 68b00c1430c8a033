//! The cashier's actions and the agent's news, joined: each button asks the terminal on the
//! runtime and updates the screen's model from the answer; the sale events, the scanner and the
//! status poll keep the models in step with the agent.

use super::*;

impl Shared {
    /// Sends the current views to the windows; they apply them in order on the UI thread.
    pub(super) fn show(&self) {
        // The view is sent while the model is still held: two threads that change the model one
        // after the other send their views in that order too, so an older view never lands on
        // the screen after a newer one (posting to the event loop does not wait for it).
        let model = lock(&self.sale);
        let view = model.view(now_unix_ms());
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
        drop(model);
    }

    /// A state of a sale from the terminal. The screen shows the sale at the counter (the rule
    /// the scanner and the pole display follow too, `kassa_core::counter`): its own sale, and any
    /// sale that opens or changes while open, whichever door opened it (a scan, the local API),
    /// so a product scanned after a paid sale shows its new sale rather than the old receipt.
    pub(super) fn sale_changed(&self, view: &SaleView) {
        let changed = {
            let open = view.sale.state == SaleState::Open;
            let mut model = lock(&self.sale);
            let shown = model.sale().is_some_and(|s| s.sale_id == view.sale.id);
            (shown || open) && model.sale_changed(snapshot(view))
        };
        if changed {
            self.show();
        }
    }

    pub(super) fn current_sale(&self) -> Option<String> {
        lock(&self.sale).sale_id().map(str::to_owned)
    }

    /// Asks the agent for Klarna's state, the outbox and the devices, and updates the status
    /// bar if anything changed. A store error leaves the bar as it was (and says so in the log).
    pub(super) async fn refresh_status(&self) {
        let klarna = match self.terminal.klarna_status().await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("the status bar cannot read Klarna's status: {e}");
                return;
            }
        };
        let devices = self.devices.as_ref().map(Devices::statuses);
        let language = lock(&self.sale).language();
        let fresh = status_bar(&klarna, devices.as_deref().unwrap_or_default(), language);
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

    pub(super) fn add_product(self: &Arc<Self>, index: usize) {
        let Some(product) = lock(&self.sale).product(index).cloned() else {
            return;
        };
        let shared = Arc::clone(self);
        self.spawn(async move {
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

    /// −, + or remove on a line of the sale (an open sale with nothing paid): the terminal
    /// journals it and answers the sale as it now is.
    pub(super) fn edit_line(self: &Arc<Self>, index: usize, change: i64) {
        let (id, line) = {
            let model = lock(&self.sale);
            if !model.lines_editable() {
                return;
            }
            let (Some(id), Some(line)) = (model.sale_id(), model.line(index)) else {
                return;
            };
            (id.to_owned(), line.clone())
        };
        // "−" stops at one: taking a line off is its own button.
        let edit = match change {
            0 => LineEdit::Remove,
            _ if line.quantity + change < 1 => return,
            _ => LineEdit::Quantity(line.quantity + change),
        };
        let shared = Arc::clone(self);
        self.spawn(async move {
            let _one_at_a_time = shared.changing_sale.lock().await;
            match shared
                .terminal
                .edit_line(&id, line.line_no, edit, None, None)
                .await
            {
                Ok(view) => {
                    lock(&shared.sale).sale_changed(snapshot(&view));
                    shared.show();
                }
                Err(e) => tracing::warn!("could not change line {}: {e}", line.line_no),
            }
        });
    }

    /// The new price typed for the line on the price screen, with its reason and (beyond the
    /// store's limit) the approving manager; a refusal stays on the price screen, saying why.
    pub(super) fn set_price(
        self: &Arc<Self>,
        reason: String,
        manager: Option<crate::manager::ManagerApproval>,
    ) {
        if lock(&self.sale).discounting() {
            return self.discount(reason, manager);
        }
        let (id, line_no, unit_price) = {
            let mut model = lock(&self.sale);
            let (Some(id), Some(line), Some(price)) = (
                model.sale_id().map(str::to_owned),
                model.pricing().map(|l| l.line_no),
                model.entry_minor(),
            ) else {
                return;
            };
            if !model.tender_pressed() {
                return;
            }
            (id, line, price)
        };
        let terminal = self.terminal.clone();
        self.change_prices(async move {
            let edit = LineEdit::Price { unit_price, reason };
            terminal.edit_line(&id, line_no, edit, None, manager).await
        });
    }

    /// Runs a price change or discount: the price screen closes on success, and a refusal
    /// stays on it, saying why.
    fn change_prices(
        self: &Arc<Self>,
        change: impl std::future::Future<Output = Result<SaleView, TerminalError>> + Send + 'static,
    ) {
        let shared = Arc::clone(self);
        self.spawn(async move {
            let _one_at_a_time = shared.changing_sale.lock().await;
            match change.await {
                Ok(view) => {
                    let mut model = lock(&shared.sale);
                    model.price_set();
                    model.sale_changed(snapshot(&view));
                }
                Err(e) => {
                    let mut model = lock(&shared.sale);
                    let why = screen_error(&e, model.language());
                    model.tender_refused(why);
                }
            }
            shared.show();
        });
    }

    /// The percentage typed on the price screen off the whole sale, with its reason and
    /// (beyond the store's limit) the approving manager.
    fn discount(
        self: &Arc<Self>,
        reason: String,
        manager: Option<crate::manager::ManagerApproval>,
    ) {
        let (id, percent, seen_total) = {
            let mut model = lock(&self.sale);
            let Some((id, seen_total)) = model.sale().map(|s| (s.sale_id.clone(), s.total)) else {
                return;
            };
            let Some(percent) = model.entry_percent() else {
                model.tender_refused("a discount is a whole percentage, 1 to 99".into());
                drop(model);
                self.show();
                return;
            };
            if !model.tender_pressed() {
                return;
            }
            (id, percent, seen_total)
        };
        let terminal = self.terminal.clone();
        self.change_prices(async move {
            terminal
                .discount_sale(&id, percent, reason, None, manager, Some(seen_total))
                .await
        });
    }

    /// Cash given (or exactly what is due), or the card terminal's part: the terminal takes it
    /// and the sale is paid, or shows what is left. A refusal stays on the tender screen.
    pub(super) fn take_tender(self: &Arc<Self>, how: TenderPress) {
        let (id, input) = {
            let mut model = lock(&self.sale);
            if !model.tender_pressed() {
                return;
            }
            let Some(sale) = model.sale() else {
                model.tender_refused(String::new());
                return;
            };
            let entry = model.entry_minor();
            let input = match how {
                TenderPress::Cash => TenderInput::Cash {
                    given: entry.unwrap_or(0),
                },
                TenderPress::ExactCash => TenderInput::Cash {
                    given: kassa_core::tender::round_cash(
                        sale.due,
                        self.terminal.config().cash.step(sale.currency.code()),
                    ),
                },
                TenderPress::Card(reference) => TenderInput::CardTerminal {
                    amount: entry.unwrap_or(sale.due),
                    reference,
                },
            };
            (sale.sale_id.clone(), input)
        };
        let cash = matches!(input, TenderInput::Cash { .. });
        let shared = Arc::clone(self);
        self.spawn(async move {
            let _one_at_a_time = shared.changing_sale.lock().await;
            match shared.terminal.take_tender(&id, input, None, None).await {
                Ok(t) => {
                    {
                        let mut model = lock(&shared.sale);
                        model.tender_taken();
                        model.sale_changed(snapshot(&t.sale));
                    }
                    if cash && let Some(d) = &shared.devices {
                        d.open_drawer().await;
                    }
                }
                Err(e) => {
                    let mut model = lock(&shared.sale);
                    let why = screen_error(&e, model.language());
                    model.tender_refused(why);
                }
            }
            shared.show();
        });
    }

    pub(super) fn pay(self: &Arc<Self>) {
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
        self.spawn(async move {
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
                        other => {
                            Refusal::Refused(screen_error(other, lock(&shared.sale).language()))
                        }
                    };
                    tracing::info!("payment not started: {e}");
                    lock(&shared.sale).payment_refused(refusal);
                }
            }
            shared.show();
        });
    }

    pub(super) fn cancel_payment(self: &Arc<Self>) {
        let Some(id) = self.current_sale() else {
            return;
        };
        let shared = Arc::clone(self);
        self.spawn(async move {
            // The canceled state arrives as an event; only failures need saying here.
            if let Err(e) = shared.terminal.cancel_payment(&id, None).await {
                tracing::warn!("could not cancel the payment: {e}");
            }
        });
    }

    /// Voids the sale in kassa (any cash or card part is handed back, journaled) and starts
    /// afresh: "Cancel sale".
    pub(super) fn close_sale_unpaid(self: &Arc<Self>) {
        let Some(id) = self.current_sale() else {
            return;
        };
        let shared = Arc::clone(self);
        self.spawn(async move {
            let _one_at_a_time = shared.changing_sale.lock().await;
            match shared.terminal.abandon_sale(&id, None).await {
                Ok(_) => lock(&shared.sale).sale_closed(),
                Err(e) => tracing::warn!("could not close the sale: {e}"),
            }
            shared.show();
        });
    }

    pub(super) fn demo_customer(self: &Arc<Self>, action: DemoCustomer) {
        let (Some(hooks), Some(id)) = (self.demo.clone(), self.current_sale()) else {
            return;
        };
        let shared = Arc::clone(self);
        self.spawn(async move {
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
pub(super) async fn follow_sales(shared: Arc<Shared>) {
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
pub(super) async fn follow_scans(shared: Arc<Shared>) {
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

/// Keeps the status bar (and an open manager area) in step with the agent, once a second.
pub(super) async fn poll_status(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(STATUS_POLL);
    // After a stall (a suspended VM, a busy store) one refresh is enough, not a burst.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        shared.refresh_status().await;
        shared.refresh_manager().await;
        shared.check_idle();
    }
}

/// Which tender button the cashier pressed.
pub(super) enum TenderPress {
    /// "Take cash": the amount on the keypad.
    Cash,
    /// "Exact amount": what is due, rounded as the store rounds cash.
    ExactCash,
    /// "Card paid", with the terminal's reference as typed.
    Card(String),
}
