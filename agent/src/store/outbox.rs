//! The outbox's rows, its queue and its running totals in SQLite: every statement the outbox
//! worker (`outbox.rs`) and the API run against the `outbox` table, with the types those rows
//! are read into. Kept in the store, so that the store owns all SQL and reaches into no module
//! above it (issue 16).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Db, InvalidParam, JournalEntry, JournalKind, StoreError, WriteTx};
use crate::config::OutboxLimits;
use crate::klarna::wire::{CaptureRequest, LineItem, RefundRequest};

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
    /// The operation a stored name names; `None` for a name this version does not know.
    pub fn parse(s: &str) -> Option<Operation> {
        Some(match s {
            "refund" => Operation::Refund,
            "capture" => Operation::Capture,
            "void" => Operation::Void,
            _ => return None,
        })
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
}

/// How a client lists queued operations: optionally in one state, oldest first, after `after`
/// (the last id of the previous page: the list goes on after it), at most `limit` (100 when
/// absent, at most 10,000).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    #[param(nullable = false)]
    pub state: Option<String>,
    #[param(nullable = false)]
    pub after: Option<i64>,
    #[param(nullable = false)]
    pub limit: Option<i64>,
}

impl ListQuery {
    pub fn state(&self) -> Result<Option<OutboxState>, InvalidParam> {
        let known = |s: &str| {
            OutboxState::from_name(s).ok_or_else(|| {
                InvalidParam::new(
                    "state",
                    "state is one of pending, sent, needs_attention, resolved",
                )
            })
        };
        self.state.as_deref().map(known).transpose()
    }

    pub fn after(&self) -> i64 {
        self.after.unwrap_or(0)
    }

    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 10_000)
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
    pub(crate) fn current(
        conn: &rusqlite::Connection,
        cached: Option<Totals>,
    ) -> Result<Totals, StoreError> {
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
        operation: Operation::parse(&op)
            .ok_or_else(|| super::undecodable(1, "outbox operation", &op))?,
        transaction_id: r.get(2)?,
        amount: r.get(3)?,
        currency: r.get(4)?,
        idempotency_key: r.get(5)?,
        reference: r.get(6)?,
        correlation_id: r.get(7)?,
        operator: r.get(8)?,
        state: OutboxState::from_name(&state)
            .ok_or_else(|| super::undecodable(9, "outbox state", &state))?,
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
    pub(crate) fn write_outbox<T>(
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
    pub(crate) fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
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

    pub(crate) fn outbox_next_due_at(&self) -> Result<Option<String>, StoreError> {
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

    pub(crate) fn outbox_record(
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
pub(crate) enum Outcome {
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

#[cfg(test)]
mod tests;
