//! The back-office commands of the `kassa` binary: the transaction log, X/Z reports, the manager
//! PIN, journal archiving and checking. Glue over the library, which does the work.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use kassa_agent::config::Config;
use kassa_agent::export::{ExportFormat, LogWriter, write_report};
use kassa_agent::manager::{check_pin_format, hash_pin, pin_matches};
use kassa_agent::reports::DayReport;
use kassa_agent::store::{Db, LogEntry, LogQuery, MAX_PAGE};

const DEFAULT_CONFIG: &str = "/etc/kassa/kassa.toml";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Table,
    Csv,
    Json,
}

/// `kassa log`: filters as on the local API's `GET /v1/log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// From this date (2025-03-01, UTC) or RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Up to this date (inclusive) or before this RFC 3339 time.
    #[arg(long)]
    to: Option<String>,
    /// Comma-separated: sale, payment, return, refund, outbox, manager, system.
    #[arg(long)]
    kind: Option<String>,
    /// Current state: paid, abandoned, declined, expired, canceled, failed, queued, sent, ...
    #[arg(long)]
    state: Option<String>,
    /// Smallest amount, in minor units (öre, cent).
    #[arg(long)]
    min_amount: Option<i64>,
    /// Largest amount, in minor units.
    #[arg(long)]
    max_amount: Option<i64>,
    #[arg(long)]
    currency: Option<String>,
    #[arg(long)]
    operator: Option<String>,
    /// A sale id, payment id, Klarna request or transaction id, or correlation id.
    #[arg(long)]
    reference: Option<String>,
    /// Case-insensitive text anywhere in an id, the operator or the detail.
    #[arg(long)]
    text: Option<String>,
    /// Only rows older than this sequence number (the next page).
    #[arg(long)]
    before: Option<i64>,
    /// Rows to show (ignored with --all).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Every matching row, not just one page (for exports).
    #[arg(long)]
    all: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Mid-day totals since the last day close; closes nothing.
    X(ReportArgs),
    /// Close the day: totals, and the journal's chain hash, stored and journaled. Needs the
    /// manager PIN (KASSA_MANAGER_PIN, or one line on standard input).
    Z(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// text (for the receipt printer), json or csv.
    #[arg(long, default_value = "text")]
    format: String,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Who does it, for the journal.
    #[arg(long, default_value = "manager")]
    operator: String,
}

#[derive(Debug, Subcommand)]
pub enum ManagerCommand {
    /// Set (or change) the manager PIN: 4 to 12 digits, read from KASSA_MANAGER_PIN or one line
    /// on standard input. Changing it needs the old PIN in KASSA_MANAGER_OLD_PIN.
    SetPin {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value = "manager")]
        operator: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a member of staff (or give one a new name, role and PIN): the store's first manager
    /// is made this way on the till. The PIN (4 to 12 digits) comes from KASSA_STAFF_PIN or one
    /// line on standard input; only its Argon2id hash is stored.
    Add {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The id they sign in with (letters, digits, '.', '-', '_').
        #[arg(long)]
        id: String,
        /// Their name as screens show it.
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["cashier", "manager"])]
        role: String,
        /// Who adds them (journaled); the login user when absent.
        #[arg(long)]
        by: Option<String>,
    },
    /// The staff accounts (never their PINs).
    List {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

pub fn staff(cmd: StaffCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StaffCommand::Add {
            config,
            id,
            name,
            role,
            by,
        } => {
            let (_cfg, mut db) = open(&config)?;
            let role = kassa_agent::store::staff::Role::parse(&role)
                .context("role must be cashier or manager")?;
            kassa_core::staff::validate_staff_id(&id).map_err(anyhow::Error::msg)?;
            let pin = read_pin("KASSA_STAFF_PIN", &format!("PIN for {id} (4-12 digits)"))?;
            let phc = hash_pin(&pin)?;
            let by = by
                .or_else(|| std::env::var("SUDO_USER").ok())
                .or_else(|| std::env::var("USER").ok())
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| "it".into());
            db.put_staff(&id, &name, role, &phc, &by)?;
            println!("{id} ({}) can sign in", role.as_str());
        }
        StaffCommand::List { config } => {
            let (_cfg, db) = open(&config)?;
            for s in db.staff()? {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.id,
                    s.role.as_str(),
                    if s.active { "active" } else { "closed" },
                    s.name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Archive rows older than this many days (default: retention.archive_after_days).
    #[arg(long)]
    older_than_days: Option<u32>,
}

fn open(config: &Path) -> anyhow::Result<(Config, Db)> {
    let cfg = Config::load(config)?;
    let path = cfg.database_path();
    anyhow::ensure!(path.exists(), "no database at {}", path.display());
    let db = Db::open(&path, &cfg.terminal_id)?;
    Ok((cfg, db))
}

/// A PIN from the environment variable, else one line of standard input.
fn read_pin(var: &str, prompt: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(var) {
        return Ok(p.trim().to_string());
    }
    eprint!("{prompt}: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the PIN from standard input")?;
    Ok(line.trim().to_string())
}

fn table_row(e: &LogEntry) -> String {
    let r = &e.row;
    let amount = match r.amount {
        Some(a) => format!(
            "{} {}",
            kassa_agent::export::decimal(a, r.currency.as_deref()),
            r.currency.as_deref().unwrap_or("")
        ),
        None => String::new(),
    };
    let id = r
        .attempt_id
        .as_deref()
        .or(r.sale_id.as_deref())
        .unwrap_or("");
    format!(
        "{:>8}  {:<19}  {:<8}  {:<22}  {:<15}  {:>14}  {:<10}  {}",
        r.seq,
        r.at.chars().take(19).collect::<String>(),
        e.kind.as_str(),
        r.kind,
        e.state.as_deref().unwrap_or("-"),
        amount,
        r.operator,
        id
    )
}

pub fn log(a: LogArgs) -> anyhow::Result<ExitCode> {
    let (_cfg, mut db) = open(&a.config)?;
    let q = LogQuery {
        from: a.from,
        to: a.to,
        kind: a.kind,
        state: a.state,
        min_amount: a.min_amount,
        max_amount: a.max_amount,
        currency: a.currency,
        operator: a.operator,
        reference: a.reference,
        text: a.text,
        ..Default::default()
    };
    let f = q.filter()?;
    // Rows the running agent has not indexed yet: index them so the filter can use the indexes
    // (without them those rows are read one by one; the answer is the same).
    if let Err(e) = db.index_journal(None) {
        eprintln!("warning: reading the journal's newest rows without their indexes ({e})");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let format = match a.format {
        LogFormat::Table => {
            writeln!(
                out,
                "{:>8}  {:<19}  {:<8}  {:<22}  {:<15}  {:>14}  {:<10}  sale/payment",
                "seq", "at (UTC)", "kind", "event", "state", "amount", "operator"
            )?;
            let next = page_through(&db, &f, a.before, a.limit, a.all, &mut |e| {
                Ok(writeln!(out, "{}", table_row(e))?)
            })?;
            out.flush()?;
            if let Some(b) = next {
                eprintln!("more rows: add --before {b} (or --all)");
            }
            return Ok(ExitCode::SUCCESS);
        }
        LogFormat::Csv => ExportFormat::Csv,
        LogFormat::Json => ExportFormat::Json,
    };
    let mut w = LogWriter::new(format, out)?;
    let next = page_through(&db, &f, a.before, a.limit, a.all, &mut |e| Ok(w.write(e)?))?;
    w.finish()?.flush()?;
    if let Some(b) = next {
        eprintln!("more rows: add --before {b} (or --all)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Hands every row of one page (or of all pages) to `each`; returns the next page's cursor.
fn page_through(
    db: &Db,
    f: &kassa_agent::store::LogFilter,
    mut before: Option<i64>,
    limit: usize,
    all: bool,
    each: &mut dyn FnMut(&LogEntry) -> anyhow::Result<()>,
) -> anyhow::Result<Option<i64>> {
    loop {
        let page = db.log_page(f, before, if all { MAX_PAGE } else { limit })?;
        for e in &page.entries {
            each(e)?;
        }
        if !all || page.next_before.is_none() {
            return Ok(page.next_before);
        }
        before = page.next_before;
    }
}

fn write_out(r: &DayReport, format: &str, output: Option<&Path>) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    match format {
        "text" => buf.extend_from_slice(r.to_text().as_bytes()),
        "json" => write_report(ExportFormat::Json, r, &mut buf)?,
        "csv" => write_report(ExportFormat::Csv, r, &mut buf)?,
        other => anyhow::bail!("unknown format {other:?}: use text, json or csv"),
    }
    match output {
        Some(p) => std::fs::write(p, &buf).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().write_all(&buf)?,
    }
    Ok(())
}

pub fn report(cmd: ReportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ReportCommand::X(a) => {
            let (_cfg, db) = open(&a.config)?;
            write_out(&db.x_report()?, &a.format, a.output.as_deref())?;
        }
        ReportCommand::Z(a) => {
            let (_cfg, mut db) = open(&a.config)?;
            let phc = db
                .manager_pin_hash()?
                .context("no manager PIN is set: run `kassa manager set-pin` first")?;
            let pin = read_pin("KASSA_MANAGER_PIN", "manager PIN")?;
            if check_pin_format(&pin).is_err() || !pin_matches(&phc, &pin)? {
                db.journal_manager_action(
                    &a.operator,
                    serde_json::json!({"action": "day_close", "outcome": "refused", "why": "wrong_pin"}),
                )?;
                eprintln!("kassa: wrong manager PIN (the attempt is journaled)");
                return Ok(ExitCode::from(2));
            }
            let r = db.close_day(&a.operator)?;
            write_out(&r, &a.format, a.output.as_deref())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn manager(cmd: ManagerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ManagerCommand::SetPin { config, operator } => {
            let (_cfg, mut db) = open(&config)?;
            if let Some(old) = db.manager_pin_hash()? {
                let given = read_pin("KASSA_MANAGER_OLD_PIN", "current manager PIN")?;
                if !pin_matches(&old, &given)? {
                    db.journal_manager_action(
                        &operator,
                        serde_json::json!({"action": "set_pin", "outcome": "refused", "why": "wrong_pin"}),
                    )?;
                    eprintln!("kassa: wrong current manager PIN (the attempt is journaled)");
                    return Ok(ExitCode::from(2));
                }
            }
            let pin = read_pin("KASSA_MANAGER_PIN", "new manager PIN (4-12 digits)")?;
            let phc = hash_pin(&pin)?;
            db.set_manager_pin(&phc, &operator)?;
            println!("manager PIN set");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn archive(a: ArchiveArgs) -> anyhow::Result<ExitCode> {
    let (cfg, mut db) = open(&a.config)?;
    let days = a
        .older_than_days
        .unwrap_or(cfg.retention.archive_after_days);
    let cutoff = (chrono::Utc::now() - chrono::Duration::days(i64::from(days)))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    match db.archive_journal(&cfg.archive_dir(), &cutoff, "system")? {
        Some(r) => println!(
            "archived rows {}..{} ({} rows) to {}",
            r.first_seq,
            r.last_seq,
            r.rows,
            r.file.display()
        ),
        None => println!("nothing to archive (only closed days older than {days} days are)"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `kassa journal verify`: archives, live rows, and every day close's chain head.
pub fn verify(config: &Path) -> anyhow::Result<ExitCode> {
    let (_cfg, db) = open(config)?;
    let r = db.audit_journal()?;
    match r.first_broken {
        None => {
            println!(
                "journal OK: {} archived rows in {} files, {} live rows, {} day closes check out; chain head {}",
                r.archived_rows, r.archives, r.live.rows, r.day_closes_checked, r.live.head
            );
            Ok(ExitCode::SUCCESS)
        }
        Some((seq, why)) => {
            println!("journal BROKEN at row {seq}: {why}");
            Ok(ExitCode::from(1))
        }
    }
}
