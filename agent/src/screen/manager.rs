//! The manager area behind the PIN: its panes (health, outbox, devices, transaction log),
//! X and Z reports, the return screen and reprints. Every action is journaled as the manager.

use super::*;

impl Shared {
    /// Reads the manager area's panes from the agent and shows them, while it is unlocked.
    pub(super) async fn refresh_manager(self: &Arc<Self>) {
        if !lock(&self.manager).is_unlocked() {
            return;
        }
        // The newest log rows too, unless the manager is paging through older ones. A read the
        // clock starts is no use of the till: it must not keep an idle session open.
        // (The log's lock is let go before `show_log` takes it again.)
        let query = lock(&self.log).refresh();
        if let Some(query) = query {
            self.show_log();
            let shared = Arc::clone(self);
            self.rt.spawn(async move { shared.read_log(query).await });
        }
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
    pub(super) fn show_manager_panes(self: &Arc<Self>) {
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
    pub(super) async fn check_pin(self: &Arc<Self>, check: PinCheck, pin: String) {
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
    pub(super) async fn journal_opening(&self) -> bool {
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
    pub(super) fn ask_log(self: &Arc<Self>, query: Option<LogQuery>) {
        let Some(query) = query else { return };
        self.show_log();
        let shared = Arc::clone(self);
        self.spawn(async move { shared.read_log(query).await });
    }

    pub(super) async fn read_log(self: &Arc<Self>, query: LogQuery) {
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
    pub(super) fn show_log(self: &Arc<Self>) {
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

    pub(super) fn show_reports(&self) {
        let view = lock(&self.reports).view();
        let _ = self
            .till
            .upgrade_in_event_loop(move |w| bind::show_report_pane(&w, &view));
    }

    /// Shows `report` in the report pane (and keeps it for printing), or why there is none.
    pub(super) fn report_read(
        &self,
        what: &str,
        report: Result<DayReport, crate::store::StoreError>,
    ) {
        match report {
            Ok(report) => {
                let language = lock(&self.sale).language();
                let text = report.to_text_in(crate::reports::WIDTH, &|en| {
                    kassa_ui::words::tr(language, en)
                });
                lock(&self.reports).report_shown(text);
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
    pub(super) fn x_report(self: &Arc<Self>) {
        if !lock(&self.manager).is_unlocked() || !lock(&self.reports).x_report() {
            return;
        }
        self.show_reports();
        let shared = Arc::clone(self);
        self.spawn(async move {
            let report = shared.terminal.store().call(|db| db.x_report()).await;
            shared.report_read("X-report", report);
        });
    }

    /// Lists, beside the day close's question, what is still open: sales with lines, payments in
    /// flight, operations waiting to be sent.
    pub(super) fn look_for_still_open(self: &Arc<Self>) {
        let shared = Arc::clone(self);
        self.spawn(async move {
            let found = shared.terminal.store().call(|db| db.still_open()).await;
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!("the day close cannot read what is still open: {e}");
                    return;
                }
            };
            let language = lock(&shared.sale).language();
            let items = presenters::still_open_lines(&found, chrono::Local::now(), language);
            lock(&shared.reports).still_open(items);
            shared.show_reports();
        });
    }

    /// The day close, once the manager confirmed it. The PIN was checked when the area opened;
    /// `close_day` journals the close itself.
    /// `counted` is the cash counted in the drawer as typed (empty: not counted); the report
    /// sets it beside what the drawer should hold. Journaled under whoever is signed in.
    pub(super) fn close_day(self: &Arc<Self>, counted: &str) {
        let currency = self.terminal.config().currency;
        let Ok(counted) = kassa_ui::amount::parse_amount(counted, &currency) else {
            lock(&self.reports).report_failed(format!(
                "The counted cash {counted:?} is not an amount: type it as 1234,50"
            ));
            self.show_reports();
            return;
        };
        if !lock(&self.manager).is_unlocked() || !lock(&self.reports).confirm_close_day() {
            return;
        }
        self.show_reports();
        let shared = Arc::clone(self);
        self.spawn(async move {
            let who = crate::staff::current().map_or_else(|| MANAGER.to_string(), |s| s.id);
            let counted: Vec<(String, i64)> = counted
                .map(|n| (currency.code().to_string(), n))
                .into_iter()
                .collect();
            let report = shared
                .terminal
                .store()
                .call(move |db| db.close_day_counted(&who, &counted))
                .await;
            shared.report_read("Z-report", report);
            if let Some(w) = shared.till.upgrade() {
                w.global::<ManagerArea>()
                    .set_counted_cash(Default::default());
            }
        });
    }

    /// Prints the report shown on the receipt printer.
    pub(super) fn print_report(self: &Arc<Self>) {
        let report = lock(&self.report).clone();
        let (Some(devices), Some(report)) = (self.devices.clone(), report) else {
            return;
        };
        if !lock(&self.manager).is_unlocked() || !lock(&self.reports).print() {
            return;
        }
        self.show_reports();
        let shared = Arc::clone(self);
        self.spawn(async move {
            let language = lock(&shared.sale).language();
            let say = move |en: &str| kassa_ui::words::tr(language, en);
            match devices.print_report_in(&report, None, &say).await {
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
    pub(super) fn show_return(&self) {
        let view = lock(&self.returns).view();
        let _ = self
            .till
            .upgrade_in_event_loop(move |w| bind::show_return(&w, &view));
    }

    /// Asks the agent for the purchase with transaction id `id` and shows it, or why not.
    pub(super) fn find_purchase(self: &Arc<Self>, id: String) {
        let shared = Arc::clone(self);
        self.spawn(async move {
            // A sale of this till paid in part another way comes back by its receipt.
            match shared.terminal.find_till_purchase(&id).await {
                Ok(Some(till)) => {
                    match purchase_snapshot(&till.purchase) {
                        Ok(p) => {
                            let mut model = lock(&shared.returns);
                            model.purchase_found(p);
                            // Only the purchase the screen now shows may be refunded this way.
                            if model.transaction_id() == id && model.has_purchase() {
                                *lock(&shared.returning_sale) =
                                    Some((id.clone(), till.sale_id, till.line_nos));
                            }
                        }
                        Err(e) => lock(&shared.returns).find_failed(e),
                    }
                    shared.show_return();
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    let why = screen_error(&e, lock(&shared.sale).language());
                    lock(&shared.returns).find_failed(why);
                    shared.show_return();
                    return;
                }
            }
            match shared.terminal.find_purchase(&id).await {
                Ok(p) => match purchase_snapshot(&p) {
                    Ok(p) => lock(&shared.returns).purchase_found(p),
                    Err(e) => lock(&shared.returns).find_failed(e),
                },
                Err(e) => {
                    tracing::info!("return: purchase {id} not shown: {e}");
                    let why = screen_error(&e, lock(&shared.sale).language());
                    lock(&shared.returns).find_failed(why);
                }
            }
            shared.show_return();
        });
    }

    /// Refunds what the cashier chose, with the manager's approval when one was given.
    pub(super) fn refund(self: &Arc<Self>, manager: Option<ManagerApproval>) {
        let till_sale = lock(&self.returning_sale).clone();
        if let Some((code, sale_id, line_nos)) = till_sale
            && lock(&self.returns).transaction_id() == code
        {
            return self.refund_till_sale(sale_id, line_nos, manager);
        }
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
        self.spawn(async move {
            match shared.terminal.create_return(request).await {
                Ok(record) => {
                    let language = lock(&shared.sale).language();
                    let slip = crate::store::return_slip_in(
                        &record,
                        &|en| kassa_ui::words::tr(language, en),
                        &|minor, currency| presenters::money(minor, currency, language),
                    );
                    lock(&shared.returns).refunded(slip);
                }
                Err(TerminalError::Forbidden(m)) => {
                    let language = lock(&shared.sale).language();
                    let why = screen_error(&TerminalError::Forbidden(m), language);
                    lock(&shared.returns).manager_needed(why);
                }
                Err(e) => {
                    tracing::info!("return refused: {e}");
                    let why = screen_error(&e, lock(&shared.sale).language());
                    lock(&shared.returns).refund_failed(why);
                }
            }
            shared.show_return();
        });
    }

    /// A return of a till sale by its receipt: the money goes back the way it came.
    fn refund_till_sale(
        self: &Arc<Self>,
        sale_id: String,
        line_nos: Vec<i64>,
        manager: Option<ManagerApproval>,
    ) {
        let request = {
            let mut model = lock(&self.returns);
            if !model.refunding(manager.is_some()) {
                return;
            }
            crate::returns::SaleReturnRequest {
                lines: model
                    .chosen()
                    .into_iter()
                    .filter_map(|(index, quantity)| {
                        line_nos
                            .get(index)
                            .map(|&line_no| crate::returns::SaleReturnLine { line_no, quantity })
                    })
                    .collect(),
                reason: model.reason().to_owned(),
                restock: model.restock(),
                operator: None,
                manager,
                id: None,
            }
        };
        self.show_return();
        let shared = Arc::clone(self);
        self.spawn(async move {
            match shared.terminal.return_sale(&sale_id, request).await {
                Ok(record) => {
                    let language = lock(&shared.sale).language();
                    let slip = crate::returns::sale_return_slip_in(
                        &record,
                        &|en| kassa_ui::words::tr(language, en),
                        &|minor, currency| presenters::money(minor, currency, language),
                    );
                    lock(&shared.returns).refunded(slip);
                    let cash = record
                        .shares
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|s| s["tender"] == "cash");
                    if cash && let Some(d) = &shared.devices {
                        d.open_drawer().await;
                    }
                }
                Err(TerminalError::Forbidden(m)) => {
                    let language = lock(&shared.sale).language();
                    let why = screen_error(&TerminalError::Forbidden(m), language);
                    lock(&shared.returns).manager_needed(why);
                }
                Err(e) => {
                    tracing::info!("return refused: {e}");
                    let why = screen_error(&e, lock(&shared.sale).language());
                    lock(&shared.returns).refund_failed(why);
                }
            }
            shared.show_return();
        });
    }

    /// Prints the current (paid) sale's receipt again on the receipt printer, and says on the
    /// result screen how that went.
    pub(super) fn reprint_receipt(self: &Arc<Self>) {
        let Some(id) = self.current_sale() else {
            return;
        };
        let Some(devices) = self.devices.clone() else {
            tracing::info!("reprint asked for, but this till has no receipt printer configured");
            lock(&self.sale).reprint_done(Reprint::NoPrinter);
            self.show();
            return;
        };
        lock(&self.sale).reprint_done(Reprint::Printing);
        self.show();
        let shared = Arc::clone(self);
        self.spawn(async move {
            let outcome = match devices.reprint_receipt(&id, None).await {
                Ok(printed) => {
                    tracing::info!(sale = %printed.sale_id, "receipt reprinted");
                    Reprint::Printed
                }
                Err(crate::devices::DevicesError::NoPrinter) => Reprint::NoPrinter,
                Err(e) => {
                    tracing::warn!(sale = %id, "receipt not reprinted: {e}");
                    // The printer's state says why in the till's words (paper, cover, cable);
                    // the driver's own words only when the printer looks ready.
                    let language = lock(&shared.sale).language();
                    let printer = devices
                        .statuses()
                        .into_iter()
                        .find(|d| d.role == DeviceRole::Printer && !d.ready);
                    Reprint::Failed(match printer {
                        Some(d) => presenters::device_state(d.state, language),
                        None => e.to_string(),
                    })
                }
            };
            let same = shared.current_sale().as_deref() == Some(id.as_str());
            if same {
                lock(&shared.sale).reprint_done(outcome);
                shared.show();
            }
        });
    }
}
