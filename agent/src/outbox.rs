//! The durable outbox for post-purchase operations (refund, capture, void): each is written with
//! its idempotency key in the same transaction as the journal row that caused it, before any
//! network call, and one worker sends them, in order per Klarna transaction, exactly once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::health::Health;
use crate::klarna::wire::{CaptureRequest, LineItem, RefundRequest};
use crate::klarna::{CallOptions, KlarnaClient, KlarnaError};
use crate::store::{Db, JournalEntry, JournalKind, Store, StoreError, WriteTx};

/// Klarna honours an idempotency key for 24 h; past that a resend could apply twice, so an
/// operation whose answer was lost is checked by reading the transaction first.
const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(23);
/// Operations sent at once (each for a different transaction).
const PARALLEL: usize = 32;
/// Operations fetched at once (heads of distinct transactions), sent in rounds of `PARALLEL`.
const FETCH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Refund,
    Capture,
    Void,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Refund => "refund",
            Operation::Capture => "capture",
            Operation::Void => "void",
        }
    }
    fn parse(s: &str) -> Operation {
        match s {
            "capture" => Operation::Capture,
            "void" => Operation::Void,
            _ => Operation::Refund,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Pending,
    Sent,
    /// Klarna refused it for good; a manager must look (retry or dismiss).
    NeedsAttention,
    /// A manager dismissed it.
    Resolved,
}

impl OutboxState {
    /// The state named by a user (API query, CLI flag); None for anything else.
    pub fn from_name(s: &str) -> Option<OutboxState> {
        Some(match s {
            "pending" => OutboxState::Pending,
            "sent" => OutboxState::Sent,
            "needs_attention" => OutboxState::NeedsAttention,
            "resolved" => OutboxState::Resolved,
            _ => return None,
        })
    }

    fn parse(s: &str) -> OutboxState {
        match s {
            "sent" => OutboxState::Sent,
            "needs_attention" => OutboxState::NeedsAttention,
            "resolved" => OutboxState::Resolved,
            _ => OutboxState::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutboxRow {
    pub id: i64,
    pub operation: Operation,
    pub transaction_id: String,
    pub amount: i64,
    pub currency: String,
    pub idempotency_key: String,
    pub reference: String,
    pub correlation_id: String,
    pub operator: String,
    pub state: OutboxState,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
    #[serde(skip)]
    pub body: String,
    #[serde(skip)]
    pub maybe_applied: bool,
}

/// An operation to queue.
#[derive(Debug, Clone)]
pub struct NewOperation {
    pub operation: Operation,
    pub transaction_id: String,
    pub currency: String,
    pub amount: i64,
    pub line_items: Vec<LineItem>,
    /// Shown to Klarna as the refund/capture reference (e.g. the return's receipt number).
    pub reference: String,
    pub operator: String,
    /// Sale or return the operation belongs to, for the journal.
    pub sale_id: Option<String>,
}

/// What may wait in the outbox (defaults from Stripe's and Adyen's store-and-forward).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxLimits {
    /// Oldest an operation may be while waiting; past it, new operations are refused.
    pub max_age_hours: i64,
    pub max_count: i64,
    /// Largest total waiting per currency, in minor units; currencies not named use `default_max_total`.
    pub max_total: BTreeMap<String, i64>,
    pub default_max_total: i64,
    /// Percent of any limit at which managers are alerted.
    pub alert_percent: i64,
    /// Exponential back-off: first delay and cap.
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_age_hours: 24,
            max_count: 10_000,
            max_total: BTreeMap::new(),
            default_max_total: 10_000_000,
            alert_percent: 80,
            backoff_base_ms: 500,
            backoff_cap_ms: 300_000,
        }
    }
}

/// How full the outbox is, for the status bar, `/health` and alerts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxSummary {
    pub pending: i64,
    pub needs_attention: i64,
    pub oldest_pending_at: Option<String>,
    pub oldest_pending_age_secs: Option<i64>,
    /// Pending total per currency, minor units.
    pub pending_totals: BTreeMap<String, i64>,
    /// The highest use of any limit, in percent.
    pub fullest_limit_percent: i64,
    /// Payment requests the till abandoned whose cancel Klarna has not confirmed yet. Each waits
    /// on its payment attempt, whose follower retries it (see ARCHITECTURE), not in this queue;
    /// counted here so staff see everything that waits for Klarna. No limit applies: a cashier
    /// can always abandon a sale.
    pub cancels_waiting: i64,
    pub alert: bool,
}

/// The waiting operations' count and amount per currency, and how many need a manager: what
/// every enqueue checks against the limits. Held in memory by the database thread, not in a
/// table of running totals, which was a third page every enqueue wrote and fsynced (issue 3).
/// This connection's own outbox writes (enqueue, worker, manager) update it as they commit
/// (`Db::write_outbox`); a commit by any other connection to the file (a CLI) moves `PRAGMA
/// data_version`, and the totals are then counted again from the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// `PRAGMA data_version` when these were counted: it changes only when another connection
    /// commits.
    data_version: i64,
    /// Currency → (count, total in minor units).
    pending: BTreeMap<String, (i64, i64)>,
    needs_attention: i64,
}

impl Totals {
    /// The totals as of `conn`'s current snapshot: `cached` when no other connection has
    /// committed since it was counted, else counted anew (the version is read first, so a
    /// commit racing the count makes the next call count again rather than trust stale figures).
    fn current(conn: &rusqlite::Connection, cached: Option<Totals>) -> Result<Totals, StoreError> {
        let data_version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if let Some(t) = cached
            && t.data_version == data_version
        {
            return Ok(t);
        }
        let mut t = Totals {
            data_version,
            ..Default::default()
        };
        let mut st = conn.prepare_cached(
            "SELECT currency, COUNT(*), SUM(amount) FROM outbox
             WHERE id >= (SELECT id FROM outbox_low) AND state = 'pending' GROUP BY currency",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            t.pending.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
        }
        t.needs_attention = conn
            .prepare_cached("SELECT COUNT(*) FROM outbox WHERE state = 'needs_attention'")?
            .query_row([], |r| r.get(0))?;
        Ok(t)
    }

    /// One operation moved from state `from` to `to` (None: it did not exist / was removed).
    fn moved(&mut self, from: Option<OutboxState>, to: Option<OutboxState>, o: &OutboxRow) {
        for (state, sign) in [(from, -1), (to, 1)] {
            match state {
                Some(OutboxState::Pending) => {
                    let e = self.pending.entry(o.currency.clone()).or_default();
                    e.0 += sign;
                    e.1 = e.1.saturating_add(sign * o.amount);
                    if e.0 == 0 {
                        self.pending.remove(&o.currency);
                    }
                }
                Some(OutboxState::NeedsAttention) => self.needs_attention += sign,
                _ => {}
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("the outbox is full: {0}; nothing was queued — wait until Klarna is reachable again")]
    LimitReached(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str = "id, operation, transaction_id, amount, currency, idempotency_key, reference,
    correlation_id, operator, state, attempts, next_attempt_at, error_code, error_message, created_at,
    sent_at, body, maybe_applied";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    let op: String = r.get(1)?;
    let state: String = r.get(9)?;
    Ok(OutboxRow {
        id: r.get(0)?,
        operation: Operation::parse(&op),
        transaction_id: r.get(2)?,
        amount: r.get(3)?,
        currency: r.get(4)?,
        idempotency_key: r.get(5)?,
        reference: r.get(6)?,
        correlation_id: r.get(7)?,
        operator: r.get(8)?,
        state: OutboxState::parse(&state),
        attempts: r.get(10)?,
        next_attempt_at: r.get(11)?,
        error_code: r.get(12)?,
        error_message: r.get(13)?,
        created_at: r.get(14)?,
        sent_at: r.get(15)?,
        body: r.get(16)?,
        maybe_applied: r.get(17)?,
    })
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn entry(
    kind: JournalKind,
    o: &OutboxRow,
    operator: &str,
    detail: serde_json::Value,
) -> JournalEntry {
    let mut e = JournalEntry::new(kind, operator);
    e.amount = Some(o.amount);
    e.currency = Some(o.currency.clone());
    e.klarna_transaction_id = Some(o.transaction_id.clone());
    e.correlation_id = Some(o.correlation_id.clone());
    let mut d = serde_json::json!({"operation": o.operation.as_str(), "outbox_id": o.id,
        "idempotency_key": o.idempotency_key, "reference": o.reference});
    if let (Some(m), serde_json::Value::Object(extra)) = (d.as_object_mut(), detail) {
        m.extend(extra);
    }
    e.detail = d;
    e
}

/// Full-jitter exponential back-off: a random delay in [0, min(cap, base × 2^attempt)].
pub fn backoff(limits: &OutboxLimits, attempt: u32, rng: &mut impl Rng) -> Duration {
    let ceiling = limits
        .backoff_base_ms
        .saturating_mul(1u64 << attempt.min(30))
        .min(limits.backoff_cap_ms);
    Duration::from_millis(rng.random_range(0..=ceiling.max(1)))
}

impl Db {
    /// Queues an operation (and its journal row) in one transaction, after checking the limits.
    pub fn enqueue(
        &mut self,
        op: &NewOperation,
        limits: &OutboxLimits,
        extra_journal: Option<JournalEntry>,
    ) -> Result<OutboxRow, OutboxError> {
        self.enqueue_with(op, limits, |w, _| match extra_journal {
            Some(e) => w.journal(e).map(|_| ()),
            None => Ok(()),
        })
    }

    /// Queues an operation; `with` writes whatever caused it (a return, a journal row) in the
    /// same transaction, so the cause and the queued operation commit or vanish together.
    pub fn enqueue_with(
        &mut self,
        op: &NewOperation,
        limits: &OutboxLimits,
        with: impl FnOnce(&mut WriteTx<'_>, &OutboxRow) -> Result<(), StoreError>,
    ) -> Result<OutboxRow, OutboxError> {
        let body = match op.operation {
            Operation::Refund => serde_json::to_string(&RefundRequest {
                amount: op.amount,
                payment_refund_reference: op.reference.clone(),
                line_items: op.line_items.clone(),
            }),
            Operation::Capture => serde_json::to_string(&CaptureRequest {
                amount: op.amount,
                payment_capture_reference: op.reference.clone(),
                line_items: op.line_items.clone(),
            }),
            Operation::Void => Ok("{}".to_string()),
        }
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let now = Utc::now();
        let key = uuid::Uuid::new_v4().to_string();
        let corr = uuid::Uuid::new_v4().simple().to_string();
        let result = self.write_outbox(|w, totals| {
            let s = summary_in(&w.tx, totals, limits, now)?;
            let total = s.pending_totals.get(&op.currency).copied().unwrap_or(0);
            let max_total = limits.max_total.get(&op.currency).copied().unwrap_or(limits.default_max_total);
            let refuse = if s.pending + 1 > limits.max_count {
                Some(format!("{} operations are already waiting (limit {})", s.pending, limits.max_count))
            } else if total.saturating_add(op.amount) > max_total {
                Some(format!("{} {} would wait (limit {} {})", total.saturating_add(op.amount), op.currency, max_total, op.currency))
            } else if s.oldest_pending_age_secs.is_some_and(|a| a >= limits.max_age_hours * 3600) {
                Some(format!("the oldest operation has waited more than {} h", limits.max_age_hours))
            } else {
                None
            };
            if let Some(why) = refuse {
                return Err(StoreError::OutboxFull(why));
            }
            w.tx.prepare_cached(
                "INSERT INTO outbox (operation, transaction_id, amount, currency, body, idempotency_key,
                 reference, correlation_id, operator, state, next_attempt_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10)",
            )?.execute(params![op.operation.as_str(), op.transaction_id, op.amount, op.currency, body, key,
                    op.reference, corr, op.operator, ts(now)],
            )?;
            let id = w.tx.last_insert_rowid();
            let o = w.tx.prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"))?.query_row([id], row)?;
            totals.moved(None, Some(OutboxState::Pending), &o);
            with(w, &o)?;
            let mut e = entry(JournalKind::OutboxQueued, &o, &op.operator, serde_json::json!({}));
            e.sale_id = op.sale_id.clone();
            w.journal(e)?;
            Ok(o)
        });
        result.map_err(|e| match e {
            StoreError::OutboxFull(why) => OutboxError::LimitReached(why),
            e => OutboxError::Store(e),
        })
    }

    pub fn outbox_summary(&self, limits: &OutboxLimits) -> Result<OutboxSummary, StoreError> {
        let mut cache = self.outbox_totals.borrow_mut();
        let totals = Totals::current(&self.conn, cache.take())?;
        let s = summary_in(&self.conn, &totals, limits, Utc::now());
        *cache = Some(totals);
        let mut s = s?;
        // INDEXED BY: the partial index holds only the waiting ones; the planner would otherwise
        // walk every canceled attempt ever made through the index on state.
        s.cancels_waiting = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM payment_attempts INDEXED BY attempts_cancel_waiting
                 WHERE state IN ('canceled', 'expired', 'failed') AND cancel_confirmed = 0",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(s)
    }

    /// Runs `f` in one write transaction with the outbox totals as of its snapshot; `f` updates
    /// them for every outbox row it moves, and they are kept when it commits. When `f` fails the
    /// transaction rolls back to that snapshot, so the totals read at its start stay true; when
    /// the commit itself fails they are counted again next time.
    fn write_outbox<T>(
        &mut self,
        f: impl FnOnce(&mut WriteTx<'_>, &mut Totals) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let cached = self.outbox_totals.get_mut().take();
        let (mut before, mut rolled_back) = (None, false);
        let r = self.write(|w| {
            let mut totals = Totals::current(&w.tx, cached)?;
            before = Some(totals.clone());
            let v = f(w, &mut totals).inspect_err(|_| rolled_back = true)?;
            Ok((v, totals))
        });
        match r {
            Ok((v, totals)) => {
                *self.outbox_totals.get_mut() = Some(totals);
                Ok(v)
            }
            Err(e) => {
                if rolled_back {
                    *self.outbox_totals.get_mut() = before;
                }
                Err(e)
            }
        }
    }

    /// Operations in id order (oldest first) after `after` (a cursor: the last id of the page
    /// before), at most `limit`, optionally in one state.
    pub fn outbox_list(
        &self,
        state: Option<OutboxState>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        // The state is written into the statement, not bound, so SQLite can read the waiting
        // ones from the low-water mark and the failures through their partial index.
        let only = match state {
            None => "",
            Some(OutboxState::Pending) => {
                "AND state = 'pending' AND id >= (SELECT id FROM outbox_low)"
            }
            Some(OutboxState::Sent) => "AND state = 'sent'",
            Some(OutboxState::NeedsAttention) => "AND state = 'needs_attention'",
            Some(OutboxState::Resolved) => "AND state = 'resolved'",
        };
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE id > ?1 {only} ORDER BY id LIMIT ?2"
        ))?;
        let rows = st
            .query_map(params![after, limit], row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// What the manager's outbox pane shows, at most `limit` rows: every operation that needs
    /// a manager first (whatever its age: it waits for their action), then the waiting ones,
    /// oldest first, then the newest of the rest. Each part is read through its own index or
    /// mark, so a till with years of sent operations answers as fast as a new one.
    pub fn outbox_for_manager(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE id IN (
                 SELECT id FROM outbox WHERE state = 'needs_attention'
                 UNION ALL
                 SELECT id FROM (SELECT id FROM outbox
                     WHERE id >= (SELECT id FROM outbox_low) AND state = 'pending'
                     ORDER BY id LIMIT ?1)
                 UNION ALL
                 SELECT id FROM (SELECT id FROM outbox ORDER BY id DESC LIMIT ?1))
             ORDER BY CASE state WHEN 'needs_attention' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END,
                 CASE state WHEN 'pending' THEN id ELSE -id END
             LIMIT ?1"
        ))?;
        let rows = st
            .query_map([limit as i64], row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn outbox_get(&self, id: i64) -> Result<OutboxRow, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("outbox operation {id}")))
    }

    /// Due operations, at most one per transaction (the oldest waiting one), oldest first.
    /// The waiting operations are read in id order from the low-water mark (see `outbox_low`).
    fn outbox_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE id IN (
                 SELECT MIN(id) FROM outbox
                 WHERE id >= (SELECT id FROM outbox_low) AND state = 'pending'
                 GROUP BY transaction_id)
               AND next_attempt_at <= ?1
             ORDER BY id LIMIT ?2"
        ))?;
        let rows = st
            .query_map(params![ts(now), limit as i64], row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn outbox_next_due_at(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT MIN(next_attempt_at) FROM outbox
                 WHERE id >= (SELECT id FROM outbox_low) AND state = 'pending'",
            )?
            .query_row([], |r| r.get(0))?)
    }

    /// A manager puts an operation that needed attention back in the queue, or dismisses it.
    pub fn outbox_resolve(
        &mut self,
        id: i64,
        retry: bool,
        operator: &str,
        note: &str,
    ) -> Result<OutboxRow, StoreError> {
        self.write_outbox(|w, totals| {
            let o =
                w.tx.query_row(
                    &format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"),
                    [id],
                    row,
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("outbox operation {id}")))?;
            if o.state != OutboxState::NeedsAttention {
                return Err(StoreError::Conflict(format!(
                    "operation {id} is {:?}, not waiting for a manager",
                    o.state
                )));
            }
            let (state, action, to) = if retry {
                ("pending", "retry", OutboxState::Pending)
            } else {
                ("resolved", "dismiss", OutboxState::Resolved)
            };
            w.tx.prepare_cached(
                "UPDATE outbox SET state = ?2, attempts = 0, next_attempt_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, state, ts(Utc::now())])?;
            totals.moved(Some(OutboxState::NeedsAttention), Some(to), &o);
            w.journal(entry(
                JournalKind::OutboxResolved,
                &o,
                operator,
                serde_json::json!({"action": action, "note": note}),
            ))?;
            Ok(w.tx.query_row(
                &format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"),
                [id],
                row,
            )?)
        })
    }

    fn outbox_record(
        &mut self,
        results: &[(OutboxRow, Outcome)],
        limits: &OutboxLimits,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        self.write_outbox(|w, totals| {
          for (o, outcome) in results {
            // Only a pending row can move: a manager may have acted meanwhile.
            let state: String = w.tx.prepare_cached("SELECT state FROM outbox WHERE id = ?1")?.query_row([o.id], |r| r.get(0))?;
            if state != "pending" {
                continue;
            }
            match outcome {
                Outcome::Sent(result) => {
                    w.tx.prepare_cached("UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1, result = ?3,
                         error_code = NULL, error_message = NULL WHERE id = ?1")?.execute(params![o.id, ts(now), result.to_string()],
                    )?;
                    totals.moved(Some(OutboxState::Pending), Some(OutboxState::Sent), o);
                    w.journal(entry(JournalKind::OutboxSent, o, "kassa", serde_json::json!({"attempts": o.attempts + 1})))?;
                }
                Outcome::Final { code, message } => {
                    w.tx.prepare_cached("UPDATE outbox SET state = 'needs_attention', attempts = attempts + 1, error_code = ?2,
                         error_message = ?3 WHERE id = ?1")?.execute(params![o.id, code, message],
                    )?;
                    totals.moved(Some(OutboxState::Pending), Some(OutboxState::NeedsAttention), o);
                    w.journal(entry(JournalKind::OutboxNeedsAttention, o, "kassa",
                        serde_json::json!({"error_code": code, "error_message": message})))?;
                }
                Outcome::Retry { after, maybe_applied, error } => {
                    let delay = after.unwrap_or_else(|| backoff(limits, o.attempts.clamp(0, 30) as u32, &mut rand::rng()));
                    let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                    w.tx.prepare_cached("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, error_message = ?3,
                         maybe_applied = maybe_applied OR ?4 WHERE id = ?1")?.execute(params![o.id, ts(next), error, maybe_applied],
                    )?;
                }
            }
          }
            // Raise the low-water mark past what is no longer waiting, so readers of the queue
            // start at its first waiting operation (each finished row is passed over once).
            w.tx.prepare_cached(
                "UPDATE outbox_low SET id = COALESCE(
                     (SELECT id FROM outbox WHERE id >= outbox_low.id AND state = 'pending'
                      ORDER BY id LIMIT 1),
                     (SELECT COALESCE(MAX(id), 0) + 1 FROM outbox))",
            )?
            .execute([])?;
            Ok(())
        })
    }
}

fn summary_in(
    conn: &rusqlite::Connection,
    totals: &Totals,
    limits: &OutboxLimits,
    now: DateTime<Utc>,
) -> Result<OutboxSummary, StoreError> {
    // Counts and totals are kept in memory (`Totals`), the oldest is the first pending row from
    // the low-water mark: this runs on every enqueue, so it reads one row however long the
    // queue is.
    let pending = totals.pending.values().map(|(count, _)| count).sum();
    let needs_attention = totals.needs_attention;
    let pending_totals: BTreeMap<String, i64> = totals
        .pending
        .iter()
        .map(|(currency, (_, total))| (currency.clone(), *total))
        .collect();
    let oldest: Option<String> = conn
        .prepare_cached(
            "SELECT created_at FROM outbox
             WHERE id >= (SELECT id FROM outbox_low) AND state = 'pending' ORDER BY id LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    let age = oldest
        .as_deref()
        .and_then(|o| DateTime::parse_from_rfc3339(o).ok())
        .map(|t| (now - t.with_timezone(&Utc)).num_seconds().max(0));
    let pct = |used: i64, max: i64| {
        if max <= 0 {
            100
        } else {
            used.saturating_mul(100) / max
        }
    };
    let mut fullest = pct(pending, limits.max_count);
    if let Some(a) = age {
        fullest = fullest.max(pct(a, limits.max_age_hours * 3600));
    }
    for (cur, total) in &pending_totals {
        fullest = fullest.max(pct(
            *total,
            limits
                .max_total
                .get(cur)
                .copied()
                .unwrap_or(limits.default_max_total),
        ));
    }
    Ok(OutboxSummary {
        pending,
        needs_attention,
        // Counted by `Db::outbox_summary`, for staff; no limit depends on it.
        cancels_waiting: 0,
        oldest_pending_at: oldest,
        oldest_pending_age_secs: age,
        pending_totals,
        fullest_limit_percent: fullest,
        alert: fullest >= limits.alert_percent || needs_attention > 0,
    })
}

/// What one send attempt came to.
enum Outcome {
    Sent(serde_json::Value),
    Final {
        code: String,
        message: String,
    },
    Retry {
        after: Option<Duration>,
        maybe_applied: bool,
        error: String,
    },
}

/// The one worker that drains the outbox; nothing else sends these operations.
pub struct OutboxWorker {
    pub store: Store,
    pub klarna: KlarnaClient,
    pub health: Arc<Health>,
    pub limits: OutboxLimits,
    pub wake: Arc<Notify>,
}

impl OutboxWorker {
    pub async fn run(self) {
        let mut alerted = false;
        // How many operations go out at once, and how far apart: a 429 halves the width and
        // raises the spacing to at least the delay Klarna named; clean rounds widen and tighten.
        let mut width = PARALLEL;
        let mut spacing = Duration::ZERO;
        let mut next_slot = tokio::time::Instant::now();
        loop {
            let limits = self.limits.clone();
            // One fetch feeds several rounds: it returns at most one operation per transaction,
            // so its rounds never hold two operations of one transaction, and the next fetch
            // (queued behind every round's record on the database thread) sees all outcomes.
            let due = self
                .store
                .call(move |db| db.outbox_due(Utc::now(), FETCH))
                .await;
            let due = match due {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("outbox: cannot read the queue: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if due.is_empty() {
                alerted = self.idle(limits, alerted).await;
                continue;
            }
            let mut due = due.into_iter();
            let mut records = vec![];
            loop {
                let chunk: Vec<OutboxRow> = due.by_ref().take(width).collect();
                if chunk.is_empty() {
                    break;
                }
                let me = &self;
                // Paced sends keep their spacing across rounds too, not just within one.
                let round = next_slot.max(tokio::time::Instant::now());
                next_slot = round + spacing * chunk.len() as u32;
                let sends = chunk.into_iter().enumerate().map(|(i, o)| async move {
                    tokio::time::sleep_until(round + spacing * i as u32).await;
                    let outcome = me.send(&o).await;
                    (o, outcome)
                });
                let results = futures_util::future::join_all(sends).await;
                let pause = results
                    .iter()
                    .filter_map(|(_, r)| match r {
                        Outcome::Retry { after: Some(d), .. } => Some(*d),
                        _ => None,
                    })
                    .max();
                let all_sent = results.iter().all(|(_, r)| matches!(r, Outcome::Sent(_)));
                tracing::debug!(width, ?spacing, ?pause, "outbox round");
                // One transaction (one fsync) records the round, while the next round is sent.
                let limits = self.limits.clone();
                records.push(
                    self.store
                        .submit(move |db| db.outbox_record(&results, &limits)),
                );
                // Klarna named a delay: nothing at all is sent before it passes.
                if let Some(p) = pause {
                    width = (width / 2).max(1);
                    // Pace at least at the delay Klarna named, a quarter more with each 429 and
                    // 1 % less with each clean round: the gap settles just above Klarna's limit.
                    spacing = spacing
                        .mul_f64(1.25)
                        .max(p)
                        .clamp(Duration::from_micros(500), Duration::from_secs(1));
                    tokio::time::sleep(p).await;
                } else if all_sent {
                    width = (width + 1).min(PARALLEL);
                    spacing = spacing.mul_f64(0.99);
                    if spacing < Duration::from_micros(500) {
                        spacing = Duration::ZERO;
                    }
                }
            }
            for r in records {
                if let Err(e) = r.await {
                    tracing::error!("outbox: cannot record outcomes: {e}");
                }
            }
        }
    }

    /// Nothing is due: sleeps until the next operation is, or one is queued; warns managers once
    /// when the outbox crosses its alert level. Returns whether it is over that level.
    async fn idle(&self, limits: OutboxLimits, alerted: bool) -> bool {
        let next = self
            .store
            .call(|db| db.outbox_next_due_at())
            .await
            .ok()
            .flatten();
        let wait = next
            .and_then(|n| DateTime::parse_from_rfc3339(&n).ok())
            .map(|n| {
                (n.with_timezone(&Utc) - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            })
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.wake.notified() => {}
        }
        match self.store.call(move |db| db.outbox_summary(&limits)).await {
            Ok(s) => {
                if s.alert && !alerted {
                    tracing::warn!(
                        pending = s.pending,
                        needs_attention = s.needs_attention,
                        fullest_limit_percent = s.fullest_limit_percent,
                        "outbox needs attention"
                    );
                }
                s.alert
            }
            Err(_) => alerted,
        }
    }

    async fn send(&self, o: &OutboxRow) -> Outcome {
        let opts = CallOptions {
            correlation_id: &o.correlation_id,
            idempotency_key: Some(&o.idempotency_key),
            ..Default::default()
        };
        // Past Klarna's idempotency window a resend could apply twice: look first.
        let created = DateTime::parse_from_rfc3339(&o.created_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        if o.maybe_applied && Utc::now() - created > IDEMPOTENCY_WINDOW {
            match self
                .klarna
                .read_transaction(
                    &o.transaction_id,
                    CallOptions {
                        idempotency_key: None,
                        ..opts.clone()
                    },
                )
                .await
            {
                Ok(tx) => {
                    let v = serde_json::to_value(&tx).unwrap_or_default();
                    let field = if o.operation == Operation::Refund {
                        "payment_refund_reference"
                    } else {
                        "payment_capture_reference"
                    };
                    let list = if o.operation == Operation::Refund {
                        "payment_refunds"
                    } else {
                        "payment_captures"
                    };
                    if v[list]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x[field] == o.reference.as_str()))
                    {
                        return Outcome::Sent(serde_json::json!({"found_on_read": true}));
                    }
                }
                Err(e) => return classify(e),
            }
        }
        let r = match o.operation {
            Operation::Refund => {
                self.klarna
                    .refund_raw(&o.transaction_id, &o.body, opts)
                    .await
            }
            Operation::Capture => {
                self.klarna
                    .capture_raw(&o.transaction_id, &o.body, opts)
                    .await
            }
            Operation::Void => self.klarna.void(&o.transaction_id, opts).await,
        };
        match r {
            Ok(v) => Outcome::Sent(v),
            Err(e) => classify(e),
        }
    }
}

fn classify(e: KlarnaError) -> Outcome {
    match e {
        KlarnaError::Throttled { retry_after } => Outcome::Retry {
            after: Some(retry_after),
            maybe_applied: false,
            error: e.to_string(),
        },
        KlarnaError::Unreachable(_) => Outcome::Retry {
            after: None,
            maybe_applied: false,
            error: e.to_string(),
        },
        KlarnaError::UnknownOutcome(_) => Outcome::Retry {
            after: None,
            maybe_applied: true,
            error: e.to_string(),
        },
        KlarnaError::Final { .. } | KlarnaError::Auth { .. } => Outcome::Final {
            code: e.code().to_string(),
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_with_full_jitter_up_to_the_cap() {
        let limits = OutboxLimits {
            backoff_base_ms: 100,
            backoff_cap_ms: 1000,
            ..Default::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 0..40 {
            let ceiling = (100u64 << attempt.min(30)).min(1000);
            for _ in 0..50 {
                let d = backoff(&limits, attempt, &mut rng).as_millis() as u64;
                assert!(d <= ceiling, "attempt {attempt}: {d} > {ceiling}");
            }
        }
        // Full jitter spreads retries over the whole range, not just near the ceiling.
        let samples: Vec<u64> = (0..200)
            .map(|_| backoff(&limits, 10, &mut rng).as_millis() as u64)
            .collect();
        assert!(samples.iter().any(|d| *d < 300) && samples.iter().any(|d| *d > 700));
    }

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.db"), "till-1").unwrap();
        (dir, db)
    }

    fn refund(amount: i64) -> NewOperation {
        NewOperation {
            operation: Operation::Refund,
            transaction_id: "krn:payment:eu1:transaction:t1".into(),
            currency: "SEK".into(),
            amount,
            line_items: vec![LineItem {
                name: "x".into(),
                quantity: 1,
                unit_price: amount,
                total_amount: amount,
                reference: None,
            }],
            reference: "r".into(),
            operator: "ann".into(),
            sale_id: None,
        }
    }

    #[test]
    fn an_operation_over_a_limit_is_refused_and_nothing_queued_is_dropped() {
        let (_d, mut db) = db();
        let limits = OutboxLimits {
            max_count: 3,
            default_max_total: 1000,
            ..Default::default()
        };
        for _ in 0..3 {
            db.enqueue(&refund(100), &limits, None).unwrap();
        }
        let err = db.enqueue(&refund(100), &limits, None).unwrap_err();
        assert!(
            err.to_string().contains("3 operations are already waiting"),
            "{err}"
        );
        let limits = OutboxLimits {
            max_count: 10,
            default_max_total: 350,
            ..Default::default()
        };
        let err = db.enqueue(&refund(100), &limits, None).unwrap_err();
        assert!(err.to_string().contains("400 SEK would wait"), "{err}");
        assert_eq!(
            db.outbox_list(Some(OutboxState::Pending), 0, 100)
                .unwrap()
                .len(),
            3
        );
        let s = db.outbox_summary(&limits).unwrap();
        assert_eq!((s.pending, s.pending_totals["SEK"]), (3, 300));
        assert!(s.alert, "300 of 350 is over 80 %");
        assert_eq!(db.verify_journal().unwrap().first_broken, None);
    }

    #[test]
    fn operations_on_one_transaction_go_one_at_a_time_in_order() {
        let (_d, mut db) = db();
        let limits = OutboxLimits::default();
        let a = db.enqueue(&refund(1), &limits, None).unwrap();
        db.enqueue(&refund(2), &limits, None).unwrap();
        let mut other = refund(3);
        other.transaction_id = "krn:payment:eu1:transaction:t2".into();
        let c = db.enqueue(&other, &limits, None).unwrap();
        let due: Vec<i64> = db
            .outbox_due(Utc::now(), 10)
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(due, vec![a.id, c.id]);
    }

    #[test]
    fn the_running_totals_equal_the_queue_counted_by_hand() {
        let (_d, mut db) = db();
        let limits = OutboxLimits::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut ids = vec![];
        for i in 0..60 {
            let mut op = refund(rng.random_range(1..5_000));
            op.currency = ["SEK", "EUR", "NOK"][i % 3].into();
            op.transaction_id = format!("krn:payment:eu1:transaction:{}", i % 7);
            ids.push(db.enqueue(&op, &limits, None).unwrap());
        }
        // The worker's outcomes and a manager's actions move rows between states.
        let outcomes: Vec<(OutboxRow, Outcome)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match i % 4 {
                0 => Some((o.clone(), Outcome::Sent(serde_json::json!({})))),
                1 => Some((
                    o.clone(),
                    Outcome::Final {
                        code: "X".into(),
                        message: "no".into(),
                    },
                )),
                _ => None,
            })
            .collect();
        db.outbox_record(&outcomes, &limits).unwrap();
        db.outbox_resolve(ids[1].id, true, "mia", "try again")
            .unwrap();
        db.outbox_resolve(ids[5].id, false, "mia", "done by phone")
            .unwrap();

        let s = db.outbox_summary(&limits).unwrap();
        let count = |state: &str| -> i64 {
            db.conn
                .query_row(
                    "SELECT COUNT(*) FROM outbox WHERE state = ?1",
                    [state],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(s.pending, count("pending"));
        assert_eq!(s.needs_attention, count("needs_attention"));
        let mut st = db
            .conn
            .prepare("SELECT currency, SUM(amount) FROM outbox WHERE state = 'pending' GROUP BY currency")
            .unwrap();
        let by_hand: BTreeMap<String, i64> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(s.pending_totals, by_hand);
        assert_eq!(s.pending, 60 - 15 - 15 + 1);
    }

    /// The queue is read from a low-water mark, not through indexes: whatever the worker and
    /// the manager do (sends, failures, retries far below the mark), it must read exactly what a
    /// scan of the whole table finds.
    /// A round of sends with random outcomes: sent, refused for good, to retry, or not tried.
    fn random_outcomes(due: Vec<OutboxRow>, rng: &mut impl Rng) -> Vec<(OutboxRow, Outcome)> {
        due.into_iter()
            .filter_map(|o| match rng.random_range(0..4) {
                0 => Some((o, Outcome::Sent(serde_json::json!({})))),
                1 => Some((
                    o,
                    Outcome::Final {
                        code: "X".into(),
                        message: "no".into(),
                    },
                )),
                2 => Some((
                    o,
                    Outcome::Retry {
                        after: None,
                        maybe_applied: false,
                        error: "5xx".into(),
                    },
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_queue_read_from_the_low_water_mark_equals_a_full_scan() {
        let (_d, mut db) = db();
        let limits = OutboxLimits {
            max_count: 10_000,
            ..Default::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let far = Utc::now() + chrono::Duration::days(400);
        let scan = |db: &Db, sql: &str| -> Vec<i64> {
            let mut st = db.conn.prepare(sql).unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let mut lows = vec![];
        for round in 0..40 {
            for _ in 0..rng.random_range(0..6) {
                let mut op = refund(rng.random_range(1..500));
                op.transaction_id =
                    format!("krn:payment:eu1:transaction:{}", rng.random_range(0..5));
                db.enqueue(&op, &limits, None).unwrap();
            }
            let outcomes = random_outcomes(db.outbox_due(far, 10_000).unwrap(), &mut rng);
            db.outbox_record(&outcomes, &limits).unwrap();
            if round % 5 == 4 {
                // A manager sends an old failure back to the queue, below the mark.
                let stuck = scan(
                    &db,
                    "SELECT id FROM outbox WHERE state = 'needs_attention' ORDER BY id",
                );
                if let Some(id) = stuck.first() {
                    db.outbox_resolve(*id, true, "mia", "again").unwrap();
                }
            }
            let pending = scan(
                &db,
                "SELECT id FROM outbox WHERE state = 'pending' ORDER BY id",
            );
            let listed: Vec<i64> = db
                .outbox_list(Some(OutboxState::Pending), 0, 10_000)
                .unwrap()
                .iter()
                .map(|o| o.id)
                .collect();
            assert_eq!(listed, pending, "round {round}");
            let heads = scan(
                &db,
                "SELECT MIN(id) FROM outbox WHERE state = 'pending' GROUP BY transaction_id ORDER BY 1",
            );
            let due: Vec<i64> = db
                .outbox_due(far, 10_000)
                .unwrap()
                .iter()
                .map(|o| o.id)
                .collect();
            assert_eq!(due, heads, "round {round}");
            let next: Option<String> = db
                .conn
                .query_row(
                    "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(db.outbox_next_due_at().unwrap(), next, "round {round}");
            let oldest = pending
                .first()
                .map(|id| db.outbox_get(*id).unwrap().created_at);
            let s = db.outbox_summary(&limits).unwrap();
            assert_eq!(s.oldest_pending_at, oldest, "round {round}");
            let low: i64 = db
                .conn
                .query_row("SELECT id FROM outbox_low", [], |r| r.get(0))
                .unwrap();
            lows.push(low);
        }
        // The mark did move both ways, so both were checked.
        assert!(lows.windows(2).any(|w| w[1] > w[0]), "raised: {lows:?}");
        assert!(lows.windows(2).any(|w| w[1] < w[0]), "lowered: {lows:?}");
    }

    /// The totals every enqueue checks its limits against are kept in memory; after any mix of
    /// enqueues (some refused by a limit, so rolled back), sends, failures, manager actions and
    /// a write by another connection, they equal a count of the table itself.
    #[test]
    fn the_totals_kept_in_memory_equal_a_count_of_the_queue() {
        let (dir, mut db) = db();
        let limits = OutboxLimits {
            max_count: 10_000,
            max_total: BTreeMap::from([("EUR".to_string(), 3_000)]),
            ..Default::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let far = Utc::now() + chrono::Duration::days(400);
        let counted = |db: &Db| -> (i64, i64, BTreeMap<String, i64>) {
            let q = |sql: &str| -> i64 { db.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
            let mut st = db
                .conn
                .prepare("SELECT currency, SUM(amount) FROM outbox WHERE state = 'pending' GROUP BY currency")
                .unwrap();
            let totals = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            (
                q("SELECT COUNT(*) FROM outbox WHERE state = 'pending'"),
                q("SELECT COUNT(*) FROM outbox WHERE state = 'needs_attention'"),
                totals,
            )
        };
        let (mut refused, mut resolved) = (0, 0);
        for round in 0..40 {
            for _ in 0..rng.random_range(0..6) {
                let mut op = refund(rng.random_range(1..900));
                op.currency = ["SEK", "EUR"][rng.random_range(0..2)].into();
                op.transaction_id =
                    format!("krn:payment:eu1:transaction:{}", rng.random_range(0..5));
                match db.enqueue(&op, &limits, None) {
                    Ok(_) => {}
                    Err(OutboxError::LimitReached(_)) => refused += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            let outcomes = random_outcomes(db.outbox_due(far, 10_000).unwrap(), &mut rng);
            db.outbox_record(&outcomes, &limits).unwrap();
            if round % 3 == 2 {
                let stuck: Option<i64> = db
                    .conn
                    .query_row(
                        "SELECT id FROM outbox WHERE state = 'needs_attention' ORDER BY id",
                        [],
                        |r| r.get(0),
                    )
                    .optional()
                    .unwrap();
                if let Some(id) = stuck {
                    db.outbox_resolve(id, round % 2 == 0, "mia", "").unwrap();
                    resolved += 1;
                }
                // Resolving what is not waiting for a manager is refused and changes nothing.
                assert!(db.outbox_resolve(1, true, "mia", "").is_err() || round == 2);
            }
            if round == 20 {
                // Another connection (a CLI on the same file) dismisses every failure.
                rusqlite::Connection::open(dir.path().join("k.db"))
                    .unwrap()
                    .execute(
                        "UPDATE outbox SET state = 'resolved' WHERE state = 'needs_attention'",
                        [],
                    )
                    .unwrap();
            }
            let s = db.outbox_summary(&limits).unwrap();
            assert_eq!(
                (s.pending, s.needs_attention, s.pending_totals),
                counted(&db),
                "round {round}"
            );
        }
        assert!(
            refused > 0 && resolved > 0,
            "refused {refused}, resolved {resolved}"
        );
    }

    /// The manager's pane shows what needs them however old it is, then what waits, then the
    /// newest sent, never the oldest history (it once showed the first 500 operations ever).
    #[test]
    fn the_manager_sees_failures_then_the_queue_then_the_newest() {
        let (_d, mut db) = db();
        let limits = OutboxLimits::default();
        let ids: Vec<i64> = (0..60)
            .map(|i| {
                let mut op = refund(100);
                op.transaction_id = format!("krn:payment:eu1:transaction:{i}");
                db.enqueue(&op, &limits, None).unwrap().id
            })
            .collect();
        let far = Utc::now() + chrono::Duration::days(400);
        let outcomes: Vec<(OutboxRow, Outcome)> = db
            .outbox_due(far, 1000)
            .unwrap()
            .into_iter()
            .filter(|o| o.id <= ids[49])
            .map(|o| {
                let outcome = if o.id <= ids[2] {
                    Outcome::Final {
                        code: "X".into(),
                        message: "no".into(),
                    }
                } else {
                    Outcome::Sent(serde_json::json!({}))
                };
                (o, outcome)
            })
            .collect();
        db.outbox_record(&outcomes, &limits).unwrap();
        let shown = |n| -> Vec<i64> {
            db.outbox_for_manager(n)
                .unwrap()
                .iter()
                .map(|o| o.id)
                .collect()
        };
        let failed: Vec<i64> = ids[..3].iter().rev().copied().collect();
        let waiting: Vec<i64> = ids[50..].to_vec();
        let newest_sent: Vec<i64> = ids[3..50].iter().rev().copied().collect();
        assert_eq!(shown(10), [&failed[..], &waiting[..7]].concat());
        assert_eq!(
            shown(30),
            [&failed[..], &waiting[..], &newest_sent[..17]].concat()
        );
        // The lists page on from a cursor, in each state through its own index or mark.
        let list = |state, n| -> Vec<i64> {
            let mut all = vec![];
            loop {
                let page = db
                    .outbox_list(state, all.last().copied().unwrap_or(0), n)
                    .unwrap();
                if page.is_empty() {
                    return all;
                }
                all.extend(page.iter().map(|o| o.id));
            }
        };
        assert_eq!(list(None, 7), ids);
        assert_eq!(list(Some(OutboxState::NeedsAttention), 2), ids[..3]);
        assert_eq!(list(Some(OutboxState::Sent), 10), ids[3..50]);
        assert_eq!(list(Some(OutboxState::Pending), 4), ids[50..]);
        assert_eq!(list(Some(OutboxState::Resolved), 4), Vec::<i64>::new());
    }
}
