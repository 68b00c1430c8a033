//! The `kassa` command-line binary: runs the terminal agent, the demo, the sandbox and the journal
//! check. Glue only: the work happens in the library; errors become exit codes here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod back_office;
mod cli;

use kassa_agent::app::Agent;
use kassa_agent::config::Config;
use kassa_agent::store::Db;

#[derive(Parser)]
#[command(
    name = "kassa",
    version,
    about = "Klarna in-store payments for point-of-sale terminals"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the terminal agent with a configuration file.
    Run {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        /// Also open the cashier's window (and the customer's view) on this display; without it
        /// the agent is driven through its local API only.
        #[arg(long)]
        window: bool,
        /// With --window: the cashier's window covers the whole screen (kiosk).
        #[arg(long, requires = "window")]
        fullscreen: bool,
        /// With --window: en, sv or de (default: from klarna.locale).
        #[arg(long, requires = "window")]
        language: Option<String>,
        /// With --window: where the customer sees the sale: window, split or off.
        #[arg(long, requires = "window", default_value = "window")]
        customer_view: String,
    },
    /// Run a whole till against the embedded Klarna sandbox in a throwaway data directory.
    #[cfg(feature = "sim")]
    Demo {
        /// No window: print the QR code as text and the sandbox's customer page URL.
        #[arg(long)]
        headless: bool,
        /// The sandbox plays the customer and approves; exits 0 when the sale is paid.
        #[arg(long)]
        scripted: bool,
        /// Kiosk mode: the cashier's window covers the whole screen.
        #[arg(long)]
        fullscreen: bool,
        /// Language of the screens: en, sv or de (default: from the till's Klarna locale).
        #[arg(long)]
        language: Option<String>,
        /// Where the customer sees the sale: window (a second window), split or off.
        #[arg(long, default_value = "window")]
        customer_view: String,
    },
    /// Performance figures of the payment path, journal and outbox against same-run baselines.
    #[cfg(feature = "sim")]
    Bench {
        #[arg(long, default_value_t = 500)]
        iterations: usize,
        /// Directory for the benchmark databases (e.g. /dev/shm to leave out the disk's fsync).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Refunds to drain in the outbox benchmark.
        #[arg(long, default_value_t = 10_000)]
        drain_count: usize,
        /// The sandbox's rate limit for the drain, requests per second.
        #[arg(long, default_value_t = 500.0)]
        drain_rate: f64,
        /// Count the Klarna requests of one payment whose customer approves after this many
        /// seconds, polling alone and with webhooks (0 skips it).
        #[arg(long, default_value_t = 0)]
        approve_after: u64,
    },
    /// Run the Klarna sandbox on its own (for development and manual testing).
    #[cfg(feature = "sim")]
    Sandbox {
        #[arg(long, default_value = "127.0.0.1:7280")]
        listen: std::net::SocketAddr,
        /// Serve HTTPS with a certificate made at start (its CA is printed).
        #[arg(long)]
        tls: bool,
    },
    /// Post-purchase operations waiting for (or refused by) Klarna.
    Outbox {
        #[command(subcommand)]
        command: cli::OutboxCommand,
    },
    /// A sale's lines and tenders: show, remove or change a line, pay in cash or by card
    /// (through the running agent).
    Sale {
        #[command(subcommand)]
        command: cli::sale::SaleCommand,
    },
    /// Payments in doubt: a manager decides whether Klarna has the payment (through the running agent).
    Payment {
        #[command(subcommand)]
        command: cli::payment::PaymentCommand,
    },
    /// In-store returns: look up a purchase, record a return (through the running agent).
    Return {
        #[command(subcommand)]
        command: cli::returns::ReturnCommand,
    },
    /// The configured peripherals and their state, from the running agent (config only if it is down).
    Devices {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
    },
    /// Klarna's service levels per SLO category, from the running agent.
    Slo {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        /// 5m, 1h, 24h or 30d.
        #[arg(long, default_value = "5m")]
        window: String,
    },
    /// Checks that this till can sell: configuration, database, journal, credentials (exit 0 if so).
    Selftest {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
    },
    /// The hash-chained journal.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// The transaction log, filtered: sales, payments, returns, refunds, outbox, manager actions.
    Log(back_office::LogArgs),
    /// X-report (mid-day) or Z-report (day close).
    Report {
        #[command(subcommand)]
        command: back_office::ReportCommand,
    },
    /// Manager functions: the PIN that guards them.
    Manager {
        #[command(subcommand)]
        command: back_office::ManagerCommand,
    },
    /// Staff accounts: each cashier and manager signs in with their own id and PIN.
    Staff {
        #[command(subcommand)]
        command: back_office::StaffCommand,
    },
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Walk the whole chain, archive files included, and every day close's chain head; report
    /// the first broken link (exit 1 if any).
    Verify {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
    },
    /// Print the journal rows as JSON lines.
    Show {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        /// Only rows after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Move old rows of closed days to compressed archive files (they still verify and search).
    Archive(back_office::ArchiveArgs),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KASSA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kassa_agent=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kassa: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The windowed demo needs the main thread for Slint's event loop, so it cannot run inside
    // `block_on`: it gets the runtime itself and keeps its work on the runtime's workers.
    #[cfg(all(feature = "sim", feature = "ui"))]
    if let Command::Demo {
        headless: false,
        scripted: false,
        fullscreen,
        language,
        customer_view,
    } = &cli.command
        && kassa_agent::demo::has_display()
    {
        let customer_view = match customer_view.parse() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("kassa: {e}");
                return ExitCode::FAILURE;
            }
        };
        let opts = kassa_agent::demo::WindowOptions {
            fullscreen: *fullscreen,
            language: language.clone(),
            customer_view,
        };
        return match kassa_agent::demo::run_windowed(&rt, opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kassa: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // A till with its window: Slint's event loop needs the main thread as well.
    if let Command::Run {
        config,
        window: true,
        fullscreen,
        language,
        customer_view,
    } = &cli.command
    {
        return match run_with_window(&rt, config, *fullscreen, language.clone(), customer_view) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kassa: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match rt.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kassa: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `kassa run --window`: the agent on the runtime's workers, the cashier's and customer's windows
/// on this thread; returns when the cashier's window closes.
#[cfg(feature = "ui")]
fn run_with_window(
    rt: &tokio::runtime::Runtime,
    config: &std::path::Path,
    fullscreen: bool,
    language: Option<String>,
    customer_view: &str,
) -> anyhow::Result<()> {
    use kassa_agent::screen::{ScreenOptions, run_with_devices};
    let customer_view = customer_view.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = Config::load(config)?;
    let language = language
        .unwrap_or_else(|| cfg.klarna.locale.clone())
        .parse()
        .unwrap_or_else(|e| {
            eprintln!("kassa: {e}; the screens speak English");
            kassa_ui::Language::English
        });
    // Quick keys on the sale screen: the configured catalogue's first items (the rest scan).
    let products = cfg
        .catalogue
        .iter()
        .take(12)
        .map(|c| kassa_ui::sale_screen::Product {
            name: c.name.clone(),
            reference: c.gtin.clone(),
            unit_price: c.unit_price,
        })
        .collect();
    let agent = rt.block_on(Agent::start_from_config(cfg))?;
    println!("kassa agent listening on http://{}", agent.api_addr);
    kassa_agent::service::notify_ready();
    rt.spawn(kassa_agent::service::watchdog(
        agent.terminal.store().clone(),
    ));
    // systemd's stop (SIGTERM) or Ctrl-C closes the windows, so the agent shuts down in order.
    rt.spawn(async {
        kassa_agent::service::shutdown_signal().await;
        kassa_agent::screen::quit();
    });
    let opts = ScreenOptions {
        language,
        customer_view,
        fullscreen,
        products,
        demo: None,
    };
    let shown = run_with_devices(
        agent.terminal.clone(),
        rt.handle().clone(),
        opts,
        Some(agent.devices.clone()),
    );
    // The agent owns tasks on the runtime: stop it inside it.
    rt.block_on(agent.shutdown());
    Ok(shown?)
}

#[cfg(not(feature = "ui"))]
fn run_with_window(
    _rt: &tokio::runtime::Runtime,
    _config: &std::path::Path,
    _fullscreen: bool,
    _language: Option<String>,
    _customer_view: &str,
) -> anyhow::Result<()> {
    anyhow::bail!(
        "this build of kassa has no window (built without the `ui` feature); run without --window"
    )
}

fn open_db(config: &std::path::Path) -> anyhow::Result<Db> {
    let cfg = Config::load(config)?;
    let path = cfg.database_path();
    anyhow::ensure!(path.exists(), "no database at {}", path.display());
    Ok(Db::open(&path, &cfg.terminal_id)?)
}

async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Outbox { command } => cli::outbox(command),
        #[cfg(feature = "sim")]
        Command::Bench {
            iterations,
            dir,
            drain_count,
            drain_rate,
            approve_after,
        } => {
            kassa_agent::bench::run(kassa_agent::bench::BenchOptions {
                dir,
                iterations,
                drain_count,
                drain_rate,
                approve_after_secs: approve_after,
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Return { command } => cli::returns::run(command).await,
        Command::Payment { command } => cli::payment::run(command).await,
        Command::Sale { command } => cli::sale::run(command).await,
        Command::Devices { config } => cli::devices::list(&config).await,
        Command::Slo { config, window } => cli::slo(&config, &window).await,
        Command::Selftest { config } => Ok(cli::selftest(&config)),
        Command::Run { config, .. } => {
            let cfg = Config::load(&config)?;
            let agent = Agent::start_from_config(cfg).await?;
            println!("kassa agent listening on http://{}", agent.api_addr);
            kassa_agent::service::notify_ready();
            tokio::spawn(kassa_agent::service::watchdog(
                agent.terminal.store().clone(),
            ));
            kassa_agent::service::shutdown_signal().await;
            agent.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sim")]
        Command::Demo {
            headless, scripted, ..
        } => {
            let paid =
                kassa_agent::demo::run(kassa_agent::demo::DemoOptions { headless, scripted })
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(if paid || !scripted {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        #[cfg(feature = "sim")]
        Command::Sandbox { listen, tls } => {
            use kassa_sim::sandbox::{Sandbox, SandboxConfig};
            let sb = Sandbox::start(SandboxConfig {
                listen,
                tls,
                ..Default::default()
            })
            .await?;
            println!("Klarna sandbox on {}", sb.base_url());
            println!("account id: {}", sb.account_id());
            println!("API key:    {}", sb.api_key());
            if let Some(ca) = sb.ca_pem() {
                println!("test CA (pin it with klarna.ca_file):\n{ca}");
            }
            kassa_agent::service::shutdown_signal().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Journal {
            command: JournalCommand::Verify { config },
        } => back_office::verify(&config),
        Command::Journal {
            command: JournalCommand::Archive(a),
        } => back_office::archive(a),
        Command::Log(a) => back_office::log(a),
        Command::Report { command } => back_office::report(command),
        Command::Manager { command } => back_office::manager(command),
        Command::Staff { command } => back_office::staff(command),
        Command::Journal {
            command:
                JournalCommand::Show {
                    config,
                    after,
                    limit,
                },
        } => {
            let db = open_db(&config)?;
            for row in db.journal_rows(after, limit.clamp(1, 100_000))? {
                println!(
                    "{}",
                    serde_json::to_string(&row).context("serializing a journal row")?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
