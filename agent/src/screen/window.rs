//! The windows' lifecycle: open them (cashier's, and the customer's where configured), start the
//! tasks that feed them, run Slint's event loop, and stop everything when they close.

use super::*;

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
            staff: Mutex::new(Default::default()),
            returning_sale: Mutex::new(None),
        });
        // Paint the first state now, so the first frame is right without waiting for the loop.
        let first = lock(&shared.sale).view(now_unix_ms());
        bind::show_sale(&till, &first);
        bind::show_status(&till, &lock(&shared.status));
        bind::show_staff(
            &till,
            "",
            shared.terminal.config().staff.require_sign_in,
            "",
            false,
        );
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
