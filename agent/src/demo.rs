//! `kassa demo`: a whole till against the embedded Klarna sandbox, in a throwaway data directory.
//! Headless, it prints the QR code as text and the sandbox's customer page; scripted, the sandbox
//! plays the customer and approves, so one command shows a sale paid end to end.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kassa_sim::sandbox::{CustomerAction, Sandbox, SandboxConfig};

use crate::app::Agent;
use crate::config::{ApiConfig, Config, KlarnaConfig, PaymentConfig, Secret};
use crate::payment::AttemptState;
use crate::store::{LineInput, SaleState};

mod peripherals;

pub use peripherals::DemoPeripherals;

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A configuration that points a till at a running sandbox.
pub fn config_for_sandbox(sandbox: &Sandbox, data_dir: &Path) -> Config {
    Config {
        terminal_id: "demo-till-1".into(),
        store_id: "demo-store".into(),
        data_dir: data_dir.to_path_buf(),
        production: false,
        currency: "SEK".parse().expect("SEK is an ISO currency"),
        default_operator: "demo-cashier".into(),
        busy_file: None,
        klarna: KlarnaConfig {
            base_url: sandbox.base_url(),
            partner_account_id: sandbox.account_id(),
            api_key_file: None,
            ca_file: None,
            client_identity_file: None,
            connect_timeout_ms: 2000,
            request_timeout_ms: 5000,
            return_url: "https://kassa.invalid/payment-done".into(),
            locale: "sv-SE".into(),
            webhook_signing_keys: BTreeMap::new(),
            point_of_checkout: Default::default(),
        },
        payment: PaymentConfig {
            in_store_timeout_secs: 300,
            poll_interval_ms: 500,
            capture: "NOW".into(),
            ..Default::default()
        },
        api: ApiConfig {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            token_file: None,
        },
        retention: Default::default(),
        staff: Default::default(),
        // Sweden rounds cash to whole kronor (öresavrundning).
        cash: crate::config::CashConfig {
            rounding: [("SEK".to_string(), 100)].into(),
        },
        outbox: Default::default(),
        health: Default::default(),
        devices: Default::default(),
        catalogue: Vec::new(),
        catalogue_file: None,
        receipt: Default::default(),
        returns: Default::default(),
        sale: Default::default(),
    }
}

/// The QR code as text for a terminal (two rows per character).
pub fn qr_text(url: &str) -> String {
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("(cannot draw QR code: {e})"),
    }
}

/// The online order seeded at the sandbox when the demo starts: a customer bought it on the web
/// with Klarna and brings a scarf back to the store (issue 6's in-store return).
pub fn seed_online_order(sandbox: &Sandbox) -> String {
    let line = |name: &str, reference: &str, quantity: i64, unit_price: i64| {
        serde_json::json!({"name": name, "reference": reference, "quantity": quantity,
            "unit_price": unit_price, "total_amount": quantity * unit_price})
    };
    sandbox
        .seed_order(
            "SEK",
            "web-order-1001",
            vec![
                line("Winter coat", "SKU-30", 1, 129900),
                line("Scarf", "SKU-31", 2, 19900),
            ],
        )
        .payment_transaction_id
}

/// Index of the scarf in the seeded order's lines, as `GET /v1/returns/purchases/…` lists them.
const SCARF_LINE: usize = 1;

/// The exact commands that return one scarf of the online order through the local API.
fn return_commands(api: std::net::SocketAddr, token: &str, transaction_id: &str) -> String {
    let body = serde_json::json!({
        "transaction_id": transaction_id,
        "lines": [{"index": SCARF_LINE, "quantity": 1}],
        "reason": "changed mind",
    });
    let lookup = format!(
        "curl -s -H 'Authorization: Bearer {token}' http://{api}/v1/returns/purchases/{transaction_id}"
    );
    let create = format!(
        "curl -s -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{body}' http://{api}/v1/returns"
    );
    format!("  {lookup}\n  {create}")
}

pub struct DemoOptions {
    pub headless: bool,
    pub scripted: bool,
}

/// Whether a window can be opened: an X or Wayland display, or a Slint backend chosen by hand
/// (`SLINT_BACKEND=linuxkms` on a terminal without either).
pub fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY", "SLINT_BACKEND"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Runs the demo; returns whether the sale ended paid.
pub async fn run(opts: DemoOptions) -> DemoResult<bool> {
    if !opts.headless && !opts.scripted {
        if !has_display() {
            println!(
                "kassa: no display found (DISPLAY, WAYLAND_DISPLAY and SLINT_BACKEND are unset); running headless."
            );
        } else if !cfg!(feature = "ui") {
            println!(
                "kassa: this build has no window (built without the `ui` feature); running headless."
            );
        }
    }
    let data = tempfile::tempdir()?;
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let mut cfg = config_for_sandbox(&sandbox, data.path());
    let mut peripherals = DemoPeripherals::start()?;
    peripherals.configure(&mut cfg)?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let agent = Agent::start(
        cfg,
        Secret::new(sandbox.api_key()),
        Secret::new(token.clone()),
    )
    .await?;
    println!("Klarna sandbox:   {}", sandbox.base_url());
    println!(
        "Local API:        http://{}  (bearer token {token})",
        agent.api_addr
    );
    println!(
        "Data directory:   {} (deleted at exit)",
        data.path().display()
    );
    let online_order = seed_online_order(&sandbox);
    println!(
        "Online order:     {online_order} (Winter coat 1 × 1299.00, Scarf 2 × 199.00 SEK; to return in store)\n"
    );

    let t = &agent.terminal;
    let line = |name: &str, reference: &str, quantity, unit_price| LineInput {
        name: name.into(),
        reference: Some(reference.into()),
        quantity,
        unit_price,
    };
    peripherals.print_display_changes();
    let sale = match peripherals.scan_sale(&agent).await {
        Some(sale) => sale,
        None => {
            println!("(the simulated scanner did not deliver; opening the sale through the API)");
            t.open_sale(
                None,
                None,
                vec![
                    line("T-shirt", "SKU-1", 1, 11800),
                    line("Socks", "SKU-7", 2, 4950),
                ],
            )
            .await?
        }
    };
    peripherals.swipe_card(&agent).await;
    println!("Sale {} opened:", sale.sale.id);
    for l in &sale.lines {
        println!(
            "  {} × {:<20} {:>10}",
            l.quantity,
            l.name,
            crate::money::Money::new(l.total_amount, sale.sale.currency)
        );
    }
    println!("  {:<24} {:>10}\n", "TOTAL", sale.total_money());

    let mut events = t.subscribe();
    let attempt = t
        .start_payment(&sale.sale.id, None, Default::default())
        .await?;
    let url = attempt.payment_request_url.clone().unwrap_or_default();
    println!("Scan to pay with Klarna:\n{}", qr_text(&url));
    println!("Customer page (play the customer in a browser): {url}\n");

    if opts.scripted {
        let rid = attempt.klarna_request_id.clone().unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(300)).await;
        sandbox
            .customer(&rid, CustomerAction::Open)
            .map_err(|e| e.to_string())?;
        println!("(sandbox) the customer opened the link");
        tokio::time::sleep(Duration::from_millis(300)).await;
        sandbox
            .customer(&rid, CustomerAction::Approve)
            .map_err(|e| e.to_string())?;
        println!("(sandbox) the customer approved");
    } else {
        println!("Waiting for the customer (press Ctrl-C to stop)...");
    }

    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(if opts.scripted { 30 } else { 3600 });
    let mut last = AttemptState::Requested;
    let final_view = loop {
        let v = tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) if ev.sale.sale.id == sale.sale.id => ev.sale,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => return Err(e.into()),
            },
            _ = tokio::time::sleep_until(deadline) => return Err("the demo timed out waiting for the payment".into()),
            _ = tokio::signal::ctrl_c() => { println!("stopped"); return Ok(false) }
        };
        if let Some(a) = v.payments.last() {
            if a.state != last {
                println!("payment: {}", a.state.as_str());
                last = a.state;
            }
            if a.state.is_final() {
                break v;
            }
        }
    };
    let paid = final_view.sale.state == SaleState::Paid;
    if paid {
        let a = final_view.payments.last();
        println!(
            "\nPAID {} — receipt {} — Klarna transaction {}",
            final_view.total_money(),
            final_view.sale.receipt_no.unwrap_or_default(),
            a.and_then(|a| a.klarna_transaction_id.as_deref())
                .unwrap_or("?")
        );
    } else {
        println!(
            "\nNot paid: {}",
            final_view
                .payments
                .last()
                .and_then(|a| a.reason.clone())
                .unwrap_or_default()
        );
    }
    if paid {
        match peripherals.printed_receipt().await {
            Some(r) => {
                println!("\nReceipt printer:");
                for l in &r.lines {
                    println!("  | {l}");
                }
                for qr in &r.qr_codes {
                    println!("  | [QR code: {qr}]");
                }
                println!("  {}", if r.cut { "(cut)" } else { "(not cut)" });
            }
            None => println!("\nReceipt printer: nothing printed (see GET /v1/devices)"),
        }
    }
    let rows = t.store().call(|db| db.journal_rows(0, 1000)).await?;
    println!("\nJournal:");
    for r in &rows {
        println!(
            "  #{:<3} {} {:<22} {:>8} {}  {}",
            r.seq,
            &r.at[..19.min(r.at.len())],
            r.kind,
            r.amount.map(|a| a.to_string()).unwrap_or_default(),
            r.currency.as_deref().unwrap_or(""),
            &r.hash[..12]
        );
    }
    let report = t.store().call(|db| db.verify_journal()).await?;
    match &report.first_broken {
        None => println!(
            "Journal verified: {} rows, chain head {}",
            report.rows,
            &report.head[..16]
        ),
        Some((seq, why)) => println!("Journal BROKEN at row {seq}: {why}"),
    }
    if paid {
        println!(
            "\nReturn a scarf from online order {online_order} (Klarna transaction id):\n{}",
            return_commands(agent.api_addr, &token, &online_order)
        );
        if opts.scripted {
            println!("(the scripted demo stops now; run `kassa demo --headless` to try them)");
        } else {
            // The commands need a running till: keep it up until the person is done.
            println!("The till keeps running for that; press Ctrl-C to stop.");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    Ok(paid && report.first_broken.is_none())
}

/// The PIN that opens the demo's manager area (printed at start; never for a real store).
#[cfg(feature = "ui")]
pub const DEMO_MANAGER_PIN: &str = "1234";

/// Sets the store's manager PIN to the demo PIN unless one is set, so the manager area opens.
#[cfg(feature = "ui")]
async fn set_demo_manager_pin(store: &crate::store::Store) -> DemoResult<()> {
    if store.call(|db| db.manager_pin_hash()).await?.is_some() {
        return Ok(());
    }
    // Hashing is slow on purpose: off the runtime's workers and the database thread.
    let phc = tokio::task::spawn_blocking(|| crate::manager::hash_pin(DEMO_MANAGER_PIN)).await??;
    let cashier =
        tokio::task::spawn_blocking(|| crate::manager::hash_pin(DEMO_CASHIER_PIN)).await??;
    store
        .call(move |db| {
            if db.manager_pin_hash()?.is_none() {
                db.set_manager_pin(&phc, "demo")?;
                // The demo's staff: a manager and a cashier with their own PINs.
                use crate::store::staff::Role;
                db.put_staff("maria", "Maria", Role::Manager, &phc, "demo")?;
                db.put_staff("ann", "Ann", Role::Cashier, &cashier, "demo")?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// The demo cashier `ann`'s PIN (the manager `maria` has `DEMO_MANAGER_PIN`).
#[cfg(feature = "ui")]
pub const DEMO_CASHIER_PIN: &str = "1111";

/// How `kassa demo` opens its windows.
#[cfg(feature = "ui")]
pub struct WindowOptions {
    pub fullscreen: bool,
    /// "en", "sv", "de" or a locale; `None` takes the language of the till's Klarna locale.
    pub language: Option<String>,
    pub customer_view: crate::screen::CustomerViewMode,
}

/// The products the demo's sale screen offers as buttons.
#[cfg(feature = "ui")]
pub fn demo_products() -> Vec<kassa_ui::sale_screen::Product> {
    let product = |name: &str, reference: &str, unit_price| kassa_ui::sale_screen::Product {
        name: name.into(),
        reference: reference.into(),
        unit_price,
    };
    vec![
        product("T-shirt", "SKU-1", 11800),
        product("Socks", "SKU-7", 4950),
        product("Coffee mug", "SKU-12", 8900),
        product("Tote bag", "SKU-20", 14900),
    ]
}

/// The windowed demo: the sandbox and the agent on `rt`'s workers, the cashier's and customer's
/// windows on this (the main) thread, with buttons to play the customer. Returns when the
/// cashier's window closes.
#[cfg(feature = "ui")]
pub fn run_windowed(rt: &tokio::runtime::Runtime, opts: WindowOptions) -> DemoResult<()> {
    use std::sync::Arc;

    use crate::screen::{DemoCustomer, DemoHooks, ScreenOptions};

    let data = tempfile::tempdir()?;
    let (sandbox, agent, locale, peripherals) = rt.block_on(async {
        let sandbox = Sandbox::start(SandboxConfig::default()).await?;
        let mut cfg = config_for_sandbox(&sandbox, data.path());
        // The simulated display and printer show their output on the console.
        let mut peripherals = DemoPeripherals::start()?;
        peripherals.configure(&mut cfg)?;
        peripherals.print_display_changes();
        let locale = cfg.klarna.locale.clone();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let agent = Agent::start(cfg, Secret::new(sandbox.api_key()), Secret::new(token)).await?;
        set_demo_manager_pin(agent.terminal.store()).await?;
        let online_order = seed_online_order(&sandbox);
        println!("Online order:     {online_order} (Winter coat, 2 scarves; to return in store)");
        DemoResult::Ok((Arc::new(sandbox), agent, locale, peripherals))
    })?;
    let wanted = opts.language.unwrap_or(locale);
    let language = wanted.parse().unwrap_or_else(|e| {
        println!("kassa: {e}; the screens speak English");
        kassa_ui::Language::English
    });
    println!("Klarna sandbox:   {}", sandbox.base_url());
    println!("Local API:        http://{}", agent.api_addr);
    println!(
        "Manager PIN:      {DEMO_MANAGER_PIN} (demo only; a store sets its own with `kassa manager set-pin`)"
    );
    println!("Tap products, then \"Pay with Klarna\"; play the customer with the demo buttons");
    println!("or open the customer page shown under the QR code in a browser.");

    let customer_sandbox = Arc::clone(&sandbox);
    let outage_sandbox = Arc::clone(&sandbox);
    let hooks = DemoHooks {
        customer: Arc::new(move |request: &str, action: DemoCustomer| {
            let action = match action {
                DemoCustomer::Opens => CustomerAction::Open,
                DemoCustomer::Approves => CustomerAction::Approve,
                DemoCustomer::Declines => CustomerAction::Decline,
            };
            customer_sandbox.customer(request, action).map(|_| ())
        }),
        klarna_down: Arc::new(move |down| outage_sandbox.set_outage(down)),
    };
    let screens = ScreenOptions {
        language,
        customer_view: opts.customer_view,
        fullscreen: opts.fullscreen,
        products: demo_products(),
        demo: Some(hooks),
    };
    // SIGTERM or Ctrl-C closes the windows, so that everything below runs and the demo's data
    // directory goes with it, as in the headless demo.
    let stop = rt.spawn(async {
        crate::service::shutdown_signal().await;
        crate::screen::quit();
    });
    let shown = crate::screen::run_with_devices(
        agent.terminal.clone(),
        rt.handle().clone(),
        screens,
        Some(agent.devices.clone()),
    );
    stop.abort();
    // The agent and the sandbox own tasks on the runtime: drop them inside it.
    rt.block_on(async move {
        drop(agent);
        drop(sandbox);
        drop(peripherals);
    });
    shown?;
    Ok(())
}
