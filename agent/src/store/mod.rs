//! The terminal's SQLite database: one owner thread holds the connection, async code sends it
//! closures. Every state change and its journal row commit in one transaction.

pub(crate) mod archive;
#[cfg(feature = "sim")]
pub mod baseline;
mod devices;
pub(crate) mod journal;
mod lines;
pub mod log;
mod manager;
pub mod outbox;
pub(crate) mod reports;
pub(crate) mod returns;
pub use returns::return_slip_in;
pub mod sale_returns;
mod sales;
mod schema;
pub mod staff;
pub mod tenders;
mod text;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

pub use journal::{JournalEntry, JournalKind, JournalQuery, JournalRow, VerifyReport};
pub use lines::PriceCheck;
pub use log::{LogEntry, LogError, LogFilter, LogKind, LogPage, LogQuery, MAX_PAGE};
pub use sales::{
    AttemptRow, AttemptState, LineInput, MAX_LINE_TEXT_CHARS, MAX_LINES_PER_SALE,
    MAX_OPERATOR_CHARS, OpenSale, PaymentDraft, SaleLine, SaleRow, SaleState, SaleView, StillOpen,
    validate_operator,
};

/// What went wrong in the store. `Busy` and `Io` are worth retrying; the rest are caller errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The outbox is at one of its limits; nothing was queued.
    #[error("the outbox is full: {0}; nothing was queued, wait until Klarna is reachable again")]
    OutboxFull(String),
    #[error("{0}")]
    Invalid(String),
    /// Allowed only with a manager's approval, which was not given.
    #[error("{0}")]
    ApprovalRequired(String),
    #[error("the database thread has stopped")]
    Stopped,
}

impl From<kassa_core::sale::SaleError> for StoreError {
    fn from(e: kassa_core::sale::SaleError) -> Self {
        match e {
            e @ kassa_core::sale::SaleError::Invalid(_) => StoreError::Invalid(e.to_string()),
            e @ kassa_core::sale::SaleError::NotAllowed { .. } => {
                StoreError::Conflict(e.to_string())
            }
        }
    }
}

/// A query parameter the caller got wrong (an outbox state, a report format, an SLO window):
/// `field` names the parameter to fix, `message` says what it may be.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidParam {
    pub field: &'static str,
    pub message: String,
}

impl InvalidParam {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A stored enum value this version does not know: an error, never a default (a refund read as
/// a capture, or an unknown state read as pending, would act on the wrong thing).
pub(crate) fn undecodable(column: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?} in the database").into(),
    )
}

type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// The connection plus what the owner thread caches about it.
pub struct Db {
    /// Private to the store: every statement lives in `store/` (issue 16).
    conn: Connection,
    /// Identifies this till in every journal row.
    pub(crate) terminal_id: String,
    /// The outbox's running totals, kept here rather than in a table every enqueue would write
    /// (see `outbox::Totals`).
    pub(crate) outbox_totals: std::cell::RefCell<Option<outbox::Totals>>,
}

/// Cheap, cloneable async handle to the database owner thread.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    /// Wrong manager PINs in a row and the lock-out they caused, for every door to the PIN
    /// (screen, API, CLI through the API): one count per database, so no door is a way around.
    pin_guard: std::sync::Arc<std::sync::Mutex<kassa_core::pin::PinGuard>>,
    /// One PIN check at a time: a burst of parallel guesses is counted one by one, so the
    /// lock-out comes after the fifth wrong one, not after the whole burst was checked.
    pin_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Waits for the turn to check a manager PIN (see `manager::authorize`).
    pub async fn pin_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.pin_turn.clone().lock_owned().await
    }

    /// The manager PIN's lock-out state (see `manager::authorize`).
    pub fn pin_guard(&self) -> std::sync::MutexGuard<'_, kassa_core::pin::PinGuard> {
        self.pin_guard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens (creating if needed) and migrates the database, then starts its owner thread.
    pub fn open(path: &Path, terminal_id: &str) -> Result<Store, StoreError> {
        let db = Db::open(path, terminal_id)?;
        Ok(Self::spawn(db))
    }

    fn spawn(mut db: Db) -> Store {
        let (tx, rx) = mpsc::channel::<Job>();
        let checkpoints = Checkpointer::start(&db);
        thread::Builder::new()
            .name("kassa-db".into())
            .spawn(move || {
                if let Some(c) = &checkpoints {
                    CHECKPOINTER.with(|l| l.set(c.link.clone())).ok();
                    db.conn.wal_hook(Some(after_commit));
                }
                // Work that can wait (indexing the journal, checkpointing the WAL) is done once
                // no job has come for IDLE: never between a payment's writes.
                let mut behind = true;
                loop {
                    let job = if behind {
                        match rx.recv_timeout(IDLE) {
                            Ok(job) => job,
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                behind = match db.index_journal(Some(text::IDLE_BATCH)) {
                                    Ok(n) => n == text::IDLE_BATCH,
                                    Err(e) => {
                                        tracing::warn!(error = %e, "indexing the journal failed; readers read its tail");
                                        false
                                    }
                                };
                                if !behind && let Some(c) = &checkpoints {
                                    c.now();
                                }
                                continue;
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    } else {
                        match rx.recv() {
                            Ok(job) => job,
                            Err(_) => break,
                        }
                    };
                    job(&mut db);
                    behind = true;
                }
                drop(checkpoints);
            })
            .expect("spawning the database thread");
        Store {
            jobs: tx,
            pin_guard: Default::default(),
            pin_turn: Default::default(),
        }
    }

    /// Runs `f` on the owner thread and returns its result.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(f).await
    }

    /// Queues `f` on the owner thread now (jobs run in the order they were submitted) and
    /// returns a future of its result: lets a caller overlap its own work with the write.
    pub fn submit<T, F>(&self, f: F) -> impl Future<Output = Result<T, StoreError>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            let _ = tx.send(f(db));
        });
        let sent = self.jobs.send(job).map_err(|_| StoreError::Stopped);
        async move {
            sent?;
            rx.await.map_err(|_| StoreError::Stopped)?
        }
    }
}

/// How long the database thread waits without a job before doing deferred work.
const IDLE: Duration = Duration::from_millis(100);
/// Under sustained writing (an outbox drain), the database thread asks for a checkpoint once the
/// WAL holds this many pages (SQLite's own default interval). The WAL then restarts from its
/// beginning and commits keep overwriting the file's blocks: an fsync that extends a file also
/// commits its metadata and cost twice as much (a trigger on the file's growth instead let the
/// log outgrow the file every cycle).
const CHECKPOINT_PAGES: i32 = 1_000;
/// A checkpoint inside whichever commit crosses this many WAL pages. The log restarts only once
/// a checkpoint has copied all of it, which the background checkpointer never manages while the
/// writer outruns it (commits back to back); then the writer finishes the job itself, copying
/// only the tail the background has not (after waiting for a background checkpoint under way),
/// and the background stays out of its way meanwhile (two checkpoints at once: one is refused). SQLite's own checkpoint, the same thing at
/// 1,000 pages, landed in 1 % of commits.
const WAL_BACKSTOP_PAGES: i32 = 2 * CHECKPOINT_PAGES;

/// What the database thread's WAL hook shares with its checkpointer.
#[derive(Clone)]
struct CheckpointLink {
    wake: mpsc::Sender<()>,
    /// The writer checkpoints itself (the log passed the backstop): the background waits.
    writer_checkpoints: Arc<AtomicBool>,
    /// Held by the background thread while its checkpoint runs, so the writer at the backstop
    /// waits for that one to end instead of being refused as busy (SQLite answers a second
    /// checkpoint with SQLITE_BUSY at once, whatever its mode, without a busy handler).
    running: Arc<Mutex<()>>,
}

thread_local! {
    /// The checkpointer of the database whose owner thread this is: a thread-local because
    /// SQLite's WAL hook is a plain function, and each `Store` commits on its own thread.
    static CHECKPOINTER: std::cell::OnceCell<CheckpointLink> = const { std::cell::OnceCell::new() };
}

/// SQLite's WAL hook on the database thread's connection, called after every commit with the
/// pages the WAL now holds. It takes the place of SQLite's autocheckpoint (which is this same
/// hook): past `CHECKPOINT_PAGES` it wakes the checkpointer, past the backstop it checkpoints.
fn after_commit(wal: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    let running = CHECKPOINTER.with(|c| {
        let c = c.get()?;
        c.writer_checkpoints
            .store(pages >= WAL_BACKSTOP_PAGES, Ordering::Relaxed);
        if (CHECKPOINT_PAGES..WAL_BACKSTOP_PAGES).contains(&pages) {
            let _ = c.wake.send(());
        }
        Some(c.running.clone())
    });
    if pages >= WAL_BACKSTOP_PAGES {
        // Waits for a background checkpoint under way (it would refuse this one as busy, and a
        // starved background let the log grow by a quarter past the backstop), then copies the
        // rest. PASSIVE: it never waits for readers, so a long read elsewhere (the CLI) cannot
        // stall the till's commits. As SQLite's own hook does, a failed checkpoint is not the
        // commit's error: the commit has happened, and the next one tries again.
        let _turn = running
            .as_ref()
            .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = wal.checkpoint();
    }
    Ok(())
}

/// A thread with its own connection that checkpoints the WAL in the background (PASSIVE: it
/// never blocks the writer), so a commit never pays for copying pages into the database file.
/// The database thread wakes it when it has gone idle, so its fsync of the database file does
/// not land on a cashier's commit either, and under sustained writing whenever the WAL has
/// reached `CHECKPOINT_PAGES`.
struct Checkpointer {
    link: CheckpointLink,
}

impl Checkpointer {
    fn start(db: &Db) -> Option<Checkpointer> {
        let path = db.conn.path().filter(|p| !p.is_empty())?.to_string();
        let (wake, woken) = mpsc::channel::<()>();
        let writer_checkpoints = Arc::new(AtomicBool::new(false));
        let writer = writer_checkpoints.clone();
        let running = Arc::new(Mutex::new(()));
        let turn = running.clone();
        let spawned = thread::Builder::new()
            .name("kassa-checkpoint".into())
            .spawn(move || {
                let conn = match Connection::open(&path).and_then(|c| configure(&c).map(|()| c)) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "no background checkpoints; commits checkpoint past the backstop");
                        return;
                    }
                };
                // Dropping the senders (the database thread ends) stops this thread.
                while woken.recv().is_ok() {
                    while woken.try_recv().is_ok() {}
                    let _running = turn.lock().unwrap_or_else(|e| e.into_inner());
                    if writer.load(Ordering::Relaxed) {
                        continue;
                    }
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::debug!(error = %e, "checkpoint skipped");
                    }
                }
            });
        spawned.ok().map(|_| Checkpointer {
            link: CheckpointLink {
                wake,
                writer_checkpoints,
                running,
            },
        })
    }

    /// The database thread is idle: checkpoint now (it is not checkpointing itself, whatever
    /// its last commit's hook said).
    fn now(&self) {
        self.link.writer_checkpoints.store(false, Ordering::Relaxed);
        let _ = self.link.wake.send(());
    }
}

/// Lets a job answer its caller before it has finished (see `Store::call_early`).
pub struct Early<T> {
    tx: Option<oneshot::Sender<Result<T, StoreError>>>,
}

impl<T> Early<T> {
    /// Answers the caller now; the job goes on (to commit, typically).
    pub fn answer(&mut self, v: T) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Ok(v));
        }
    }
}

impl Store {
    /// As `call`, but the job may answer through `Early::answer` and then go on working. Only
    /// for writes whose loss is harmless (`Db::write_relaxed`): the caller does not wait for
    /// the commit, and a commit that fails after the answer is only logged. Jobs still run in
    /// order, so anything the caller asks next sees the committed state.
    pub async fn call_early<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db, &mut Early<T>) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            let mut early = Early { tx: Some(tx) };
            let r = f(db, &mut early);
            match early.tx.take() {
                Some(tx) => {
                    let _ = tx.send(r);
                }
                None => {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "a write failed after its caller was answered");
                    }
                }
            }
        });
        self.jobs.send(job).map_err(|_| StoreError::Stopped)?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }
}

impl Db {
    pub fn open(path: &Path, terminal_id: &str) -> Result<Db, StoreError> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        // Migrations that rebuild a table others reference run with foreign keys off (SQLite's
        // own procedure for it); each such migration checks every reference before it commits.
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        schema::migrations().to_latest(&mut conn)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every hot statement is cached; the default (16) is fewer than the payment path uses.
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Db {
            conn,
            terminal_id: terminal_id.to_string(),
            outbox_totals: Default::default(),
        })
    }

    /// Runs `f` in one IMMEDIATE transaction: all of its writes and journal rows commit together.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut w = WriteTx {
            tx,
            terminal_id: &self.terminal_id,
        };
        // Dropping `w` on error rolls the transaction back.
        let v = f(&mut w)?;
        w.tx.commit()?;
        Ok(v)
    }
}

impl Db {
    /// As `write`, but the commit does not wait for the disk (`synchronous=NORMAL` for this one
    /// transaction). Only for facts that can be learnt again from Klarna after a power cut (a
    /// payment request's id and URL, replayed under the stored idempotency key; a state the next
    /// poll reads again); the next ordinary commit makes it durable anyway, and a lost tail never
    /// breaks the journal's chain.
    pub fn write_relaxed<T>(
        &mut self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn
            .prepare_cached("PRAGMA synchronous = NORMAL")?
            .execute([])?;
        let r = self.write(f);
        let restored = self
            .conn
            .prepare_cached("PRAGMA synchronous = FULL")
            .and_then(|mut st| st.execute([]));
        let v = r?;
        restored?;
        Ok(v)
    }
}

/// The pragmas every kassa connection uses: durability first (the journal is a fiscal record).
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // SQLite's own lower() folds ASCII only: "ÖL" would never find "Ölburk". The log's text
    // search lowers both sides with Rust's Unicode rules through this instead.
    conn.create_scalar_function(
        "unicode_lower",
        1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8
            | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                rusqlite::types::ValueRef::Text(t) => {
                    Some(String::from_utf8_lossy(t).to_lowercase())
                }
                _ => None,
            })
        },
    )?;
    Ok(())
}

/// A write transaction in progress; journal rows appended through it chain onto the last row.
/// The tail is read inside the (IMMEDIATE, so exclusive) transaction rather than cached, so a
/// second process writing the same database (the CLI) can never fork the chain.
pub struct WriteTx<'a> {
    tx: rusqlite::Transaction<'a>,
    terminal_id: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored state this version does not know is an error, never read as some default (an
    /// unknown payment state was read as "failed", which would let the sale be paid again).
    #[test]
    fn a_stored_state_kassa_does_not_know_is_an_error_not_a_default() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("k.db"), "till-1").unwrap();
        let sale = db
            .open_sale(
                "s1",
                "SEK".parse::<crate::money::Currency>().unwrap(),
                "ann",
                &[],
                |_| None,
            )
            .unwrap();
        db.conn
            .execute(
                "INSERT INTO payment_attempts (id, sale_id, state, amount, currency,
                     correlation_id, authorize_key, finalize_key, authorize_body, deadline_at,
                     created_at, updated_at)
                 VALUES ('a1', ?1, 'settled_by_a_newer_kassa', 100, 'SEK', 'c', 'k1', 'k2',
                     '{}', 'x', 'x', 'x')",
                [&sale.sale.id],
            )
            .unwrap();
        let err = db.sale("s1").unwrap_err().to_string();
        assert!(err.contains("settled_by_a_newer_kassa"), "{err}");
    }

    /// Under sustained writing (an outbox drain) the WAL is checkpointed as it reaches
    /// `CHECKPOINT_PAGES` and its file is then reused from the start: the file stays near that
    /// size rather than growing with what is written, since every commit that extends the file
    /// made its fsync twice as slow.
    #[tokio::test]
    async fn sustained_writing_reuses_the_wal_file_instead_of_growing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let store = Store::open(&path, "till-1").unwrap();
        const COMMITS: usize = 5_000;
        for i in 0..COMMITS {
            store
                .call(move |db| {
                    // Relaxed: this is about the log's size, not about waiting for the disk.
                    db.write_relaxed(|w| {
                        let mut e = JournalEntry::new(JournalKind::LineAdded, "ann");
                        e.detail = serde_json::json!({"line": i, "note": "x".repeat(500)});
                        w.journal(e)
                    })
                })
                .await
                .unwrap();
        }
        // Every commit wrote at least one page (4,096 bytes and a 24-byte frame header).
        let written = COMMITS as u64 * 4120;
        let wal = std::fs::metadata(dir.path().join("k.db-wal"))
            .unwrap()
            .len();
        assert!(
            wal < written / 2,
            "the WAL file is {wal} bytes after at least {written} bytes were written"
        );
        let report = store.call(|db| db.verify_journal()).await.unwrap();
        assert_eq!((report.rows, report.first_broken), (COMMITS as i64, None));
    }
}
