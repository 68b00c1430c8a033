//! Subcommands of `kassa` for support staff and IT: the outbox, Klarna's SLO figures and the
//! self-test the updater runs. Glue over the library; output is for people (and exit codes).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

pub mod devices;
pub mod payment;
pub mod returns;
pub mod sale;
use clap::Subcommand;

use kassa_agent::config::Config;
use kassa_agent::outbox::{OutboxRow, OutboxState};
use kassa_agent::store::Db;

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// List queued post-purchase operations (refunds, captures, voids).
    List {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        /// pending, sent, needs_attention or resolved; all when absent.
        #[arg(long)]
        state: Option<String>,
        /// List the operations after this id (the last one of the previous page).
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one operation with its attempts and Klarna's last answer.
    Show {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        id: i64,
    },
    /// Send an operation that needs attention again (a journaled manager action).
    Retry {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        id: i64,
        /// Who decides (recorded in the journal).
        #[arg(long)]
        operator: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Dismiss an operation that needs attention (a journaled manager action).
    Dismiss {
        #[arg(long, short, default_value = "/etc/kassa/kassa.toml")]
        config: PathBuf,
        id: i64,
        #[arg(long)]
        operator: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

fn open_db(config: &Path) -> anyhow::Result<(Config, Db)> {
    let cfg = Config::load(config)?;
    let path = cfg.database_path();
    anyhow::ensure!(path.exists(), "no database at {}", path.display());
    let db = Db::open(&path, &cfg.terminal_id)?;
    Ok((cfg, db))
}

fn parse_state(s: &str) -> anyhow::Result<OutboxState> {
    OutboxState::from_name(s).context("--state is one of pending, sent, needs_attention, resolved")
}

fn print_row(o: &OutboxRow) {
    println!(
        "{:>6}  {:<8} {:<16} {:>12} {}  {:<40}  tries {:<3} {}",
        o.id,
        o.operation.as_str(),
        format!("{:?}", o.state),
        o.amount,
        o.currency,
        o.transaction_id,
        o.attempts,
        o.error_code.as_deref().unwrap_or("")
    );
}

pub fn outbox(cmd: OutboxCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OutboxCommand::List {
            config,
            state,
            after,
            limit,
        } => {
            let (cfg, db) = open_db(&config)?;
            let state = state.as_deref().map(parse_state).transpose()?;
            let s = db.outbox_summary(&cfg.outbox)?;
            println!(
                "pending {} (oldest {}), needs attention {}, payment cancels waiting {}, fullest limit {} %{}",
                s.pending,
                s.oldest_pending_age_secs
                    .map(|a| format!("{a} s ago"))
                    .unwrap_or_else(|| "-".into()),
                s.needs_attention,
                s.cancels_waiting,
                s.fullest_limit_percent,
                if s.alert { "  ALERT" } else { "" }
            );
            for o in db.outbox_list(state, after, limit.clamp(1, 100_000))? {
                print_row(&o);
            }
        }
        OutboxCommand::Show { config, id } => {
            let (_, db) = open_db(&config)?;
            let o = db.outbox_get(id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&o).context("serializing the operation")?
            );
        }
        OutboxCommand::Retry {
            config,
            id,
            operator,
            note,
        } => {
            let (_, mut db) = open_db(&config)?;
            let o = db.outbox_resolve(id, true, &operator, &note)?;
            print_row(&o);
            println!("queued again; the running agent sends it within a minute");
        }
        OutboxCommand::Dismiss {
            config,
            id,
            operator,
            note,
        } => {
            let (_, mut db) = open_db(&config)?;
            let o = db.outbox_resolve(id, false, &operator, &note)?;
            print_row(&o);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints Klarna's per-category table, read from the running agent's local API.
pub async fn slo(config: &Path, window: &str) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let token = cfg.api_token()?;
    let url = format!("http://{}/v1/slo?window={window}", cfg.api.listen);
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token.expose())
        .send()
        .await
        .with_context(|| format!("is the agent running? cannot reach {url}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.context("reading the agent's answer")?;
    anyhow::ensure!(status.is_success(), "the agent answered {status}: {body}");
    println!(
        "Klarna service levels over the last {window} (A = SR / R × 100; 4xx count as served)"
    );
    println!(
        "{:<32} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "SLO category", "R", "SR", "A %", "p50 ms", "p99 ms"
    );
    let fmt = |v: &serde_json::Value, prec: usize| {
        v.as_f64()
            .map(|f| format!("{f:.prec$}"))
            .unwrap_or_else(|| "-".into())
    };
    for c in body.as_array().into_iter().flatten() {
        println!(
            "{:<32} {:>8} {:>8} {:>9} {:>9} {:>9}",
            c["category"].as_str().unwrap_or("?"),
            c["requests"],
            c["served"],
            fmt(&c["availability_percent"], 3),
            fmt(&c["p50_ms"], 1),
            fmt(&c["p99_ms"], 1)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The health check that commits an update trial: every check a till needs to sell.
pub fn selftest(config: &Path) -> ExitCode {
    let mut ok = true;
    let mut check = |what: &str, r: anyhow::Result<String>| match r {
        Ok(detail) => println!("ok    {what}: {detail}"),
        Err(e) => {
            ok = false;
            println!("FAIL  {what}: {e:#}");
        }
    };
    let cfg = Config::load(config);
    let cfg = match cfg {
        Ok(c) => {
            check("configuration", Ok(config.display().to_string()));
            c
        }
        Err(e) => {
            check("configuration", Err(e.into()));
            return ExitCode::FAILURE;
        }
    };
    check(
        "database",
        (|| {
            std::fs::create_dir_all(&cfg.data_dir)?;
            let db = Db::open(&cfg.database_path(), &cfg.terminal_id)?;
            let r = db.verify_journal()?;
            anyhow::ensure!(
                r.first_broken.is_none(),
                "journal broken at row {:?}",
                r.first_broken.map(|b| b.0)
            );
            Ok(format!(
                "opens and migrates; journal of {} rows verifies",
                r.rows
            ))
        })(),
    );
    check(
        "Klarna credentials",
        cfg.klarna_api_key()
            .map(|_| "readable".to_string())
            .map_err(Into::into),
    );
    check(
        "local API token",
        cfg.api_token()
            .map(|_| "readable".to_string())
            .map_err(Into::into),
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
