//! The manager's transaction log: the journal filtered the way a manager asks ("refunds by Ann
//! last week over 500 kr", "everything about this Klarna id"), newest first, in keyset pages, over
//! the live table and, past its start, the archive files.

use std::collections::HashMap;

use rusqlite::ToSql;
use serde::{Deserialize, Serialize};

use super::journal::{COLUMNS, row_from};
use super::{Db, JournalRow, StoreError};

mod query;
pub use query::LogQuery;

/// What a log row is about, as the manager picks it in the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    Sale,
    /// A payment attempt: requested, shown, approved, declined, expired, canceled, finalized.
    Payment,
    /// Goods returned over the counter.
    Return,
    /// An outbox operation that gives money back; also listed under `outbox`.
    Refund,
    /// Any post-purchase operation (refund, capture, void, cancel).
    Outbox,
    /// Something done behind the manager PIN.
    Manager,
    /// The journal's own housekeeping (archiving).
    System,
}

pub const SALE_KINDS: &[&str] = &[
    "sale_opened",
    "line_added",
    "line_removed",
    "line_changed",
    "receipt_issued",
    "receipt_printed",
    "sale_abandoned",
];
pub const PAYMENT_KINDS: &[&str] = &[
    "payment_requested",
    "qr_shown",
    "customer_opened",
    "payment_completed",
    "payment_declined",
    "payment_expired",
    "payment_canceled",
    "payment_failed",
    "finalized",
    "cancel_confirmed",
    "completed_after_abandon",
    "charged_after_abandon",
    "payment_in_doubt",
    "payment_doubt_resolved",
    "webhook_received",
    "tender_taken",
    "tender_voided",
    "tender_refunded",
    "cash_movement",
];
pub const OUTBOX_KINDS: &[&str] = &[
    "outbox_queued",
    "outbox_sent",
    "outbox_needs_attention",
    "outbox_resolved",
];

/// States a log row can be filtered by: a sale's, a payment attempt's, or an outbox operation's.
pub const STATES: &[&str] = &[
    "open",
    "paid",
    "abandoned",
    "requested",
    "awaiting_customer",
    "customer_opened",
    "completed",
    "declined",
    "expired",
    "canceled",
    "failed",
    "in_doubt",
    "queued",
    "sent",
    "needs_attention",
    "resolved",
];

impl LogKind {
    pub const ALL: [LogKind; 7] = [
        LogKind::Sale,
        LogKind::Payment,
        LogKind::Return,
        LogKind::Refund,
        LogKind::Outbox,
        LogKind::Manager,
        LogKind::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Sale => "sale",
            LogKind::Payment => "payment",
            LogKind::Return => "return",
            LogKind::Refund => "refund",
            LogKind::Outbox => "outbox",
            LogKind::Manager => "manager",
            LogKind::System => "system",
        }
    }

    /// The one kind a row is shown as; outbox refunds show as `refund`.
    pub fn of(journal_kind: &str, operation: Option<&str>) -> LogKind {
        if OUTBOX_KINDS.contains(&journal_kind) {
            return if operation == Some("refund") {
                LogKind::Refund
            } else {
                LogKind::Outbox
            };
        }
        if SALE_KINDS.contains(&journal_kind) {
            LogKind::Sale
        } else if PAYMENT_KINDS.contains(&journal_kind) {
            LogKind::Payment
        } else if journal_kind == "return_recorded" {
            LogKind::Return
        } else if journal_kind == "manager_action" || journal_kind == "staff_session" {
            LogKind::Manager
        } else {
            LogKind::System
        }
    }

    /// Parses a comma-separated list as typed on the command line or in a query string.
    pub fn parse_list(s: &str) -> Result<Vec<LogKind>, LogError> {
        s.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| {
                LogKind::ALL
                    .into_iter()
                    .find(|c| c.as_str() == k)
                    .ok_or_else(|| LogError::Invalid {
                        field: "kind",
                        message: format!(
                            "unknown kind {k:?}: use sale, payment, return, refund, outbox, manager or system"
                        ),
                    })
            })
            .collect()
    }
}

/// A filter or cursor the caller got wrong; `field` names the parameter to fix.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("archive: {0}")]
    Archive(String),
}

impl From<rusqlite::Error> for LogError {
    fn from(e: rusqlite::Error) -> Self {
        LogError::Store(e.into())
    }
}

/// What the manager asks for. Every filter that is set must match (AND); within `kinds`, any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    /// Inclusive lower bound on the row's time (normalized RFC 3339 UTC, see `parse_from`).
    pub at_from: Option<String>,
    /// Exclusive upper bound on the row's time.
    pub at_until: Option<String>,
    pub kinds: Vec<LogKind>,
    /// The current state of the row's payment attempt (or sale); an outbox row's own state.
    pub state: Option<String>,
    /// Minor units, inclusive.
    pub min_amount: Option<i64>,
    pub max_amount: Option<i64>,
    pub currency: Option<String>,
    pub operator: Option<String>,
    /// Exact sale id, payment id, Klarna payment request id, Klarna transaction id or correlation id.
    pub reference: Option<String>,
    /// Case-insensitive substring of the operator, any id, or the detail text.
    pub text: Option<String>,
}

/// RFC 3339 time or a plain date, as the text every stored time compares with.
fn normalize_time(field: &'static str, s: &str, end_of_day: bool) -> Result<String, LogError> {
    let s = s.trim();
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(fmt(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        // A date means the whole day (UTC): `to 2025-03-01` includes all of March 1st.
        let d = if end_of_day {
            d.succ_opt().ok_or_else(|| LogError::Invalid {
                field,
                message: "date out of range".into(),
            })?
        } else {
            d
        };
        let t = d.and_time(chrono::NaiveTime::MIN).and_utc();
        return Ok(fmt(t));
    }
    Err(LogError::Invalid {
        field,
        message: format!("{s:?} is neither a date (2025-03-01) nor an RFC 3339 time"),
    })
}

impl LogFilter {
    /// Rows at or after this date or time.
    pub fn from(mut self, s: &str) -> Result<Self, LogError> {
        self.at_from = Some(normalize_time("from", s, false)?);
        Ok(self)
    }

    /// Rows up to this date (inclusive, whole day) or before this time.
    pub fn to(mut self, s: &str) -> Result<Self, LogError> {
        self.at_until = Some(normalize_time("to", s, true)?);
        Ok(self)
    }

    /// Checks the values that the database would otherwise silently match nothing with.
    pub fn validate(&self) -> Result<(), LogError> {
        if let Some(s) = &self.state
            && !STATES.contains(&s.as_str())
        {
            return Err(LogError::Invalid {
                field: "state",
                message: format!("unknown state {s:?}; one of {}", STATES.join(", ")),
            });
        }
        if let (Some(lo), Some(hi)) = (self.min_amount, self.max_amount)
            && lo > hi
        {
            return Err(LogError::Invalid {
                field: "min_amount",
                message: "min_amount is larger than max_amount".into(),
            });
        }
        if let Some(c) = &self.currency {
            c.parse::<crate::money::Currency>()
                .map_err(|e| LogError::Invalid {
                    field: "currency",
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// The same filter in Rust, for rows read back from archive files.
    pub fn matches(&self, e: &LogEntry) -> bool {
        let r = &e.row;
        let text_fields = || {
            [
                Some(r.operator.as_str()),
                r.sale_id.as_deref(),
                r.attempt_id.as_deref(),
                r.klarna_request_id.as_deref(),
                r.klarna_transaction_id.as_deref(),
                r.correlation_id.as_deref(),
            ]
        };
        self.at_from.as_ref().is_none_or(|f| r.at >= *f)
            && self.at_until.as_ref().is_none_or(|u| r.at < *u)
            && (self.kinds.is_empty()
                || self.kinds.contains(&e.kind)
                || (self.kinds.contains(&LogKind::Outbox)
                    && OUTBOX_KINDS.contains(&r.kind.as_str())))
            && self
                .state
                .as_ref()
                .is_none_or(|s| e.state.as_ref() == Some(s))
            && self
                .min_amount
                .is_none_or(|m| r.amount.is_some_and(|a| a >= m))
            && self
                .max_amount
                .is_none_or(|m| r.amount.is_some_and(|a| a <= m))
            && self
                .currency
                .as_ref()
                .is_none_or(|c| r.currency.as_ref() == Some(c))
            && self.operator.as_ref().is_none_or(|o| r.operator == *o)
            && self.reference.as_ref().is_none_or(|x| {
                text_fields()[1..]
                    .iter()
                    .any(|f| f.is_some_and(|f| f == x.as_str()))
            })
            && self.text.as_ref().is_none_or(|t| {
                let t = t.to_lowercase();
                text_fields()
                    .into_iter()
                    .flatten()
                    .chain([e.detail_text.as_str()])
                    .any(|f| f.to_lowercase().contains(&t))
            })
    }

    /// The page query's parts for `rows`: what to read (`journal_lookup j` with its indexes,
    /// the trigram matches joined to it, or the journal's unindexed tail as `journal j`), the
    /// column that orders them newest first, and the WHERE clause; its parameters are appended
    /// to `p` (numbered, so the two parts can share one statement).
    fn sql(&self, rows: Rows, p: &mut Vec<Box<dyn ToSql>>) -> (String, &'static str, String) {
        let indexed = rows == Rows::Indexed;
        let mut from = if indexed {
            "journal_lookup j"
        } else {
            "journal j"
        };
        let mut key = "j.seq";
        let mut detail = "j.detail";
        let operation = if indexed { "j.operation" } else { OPERATION };
        let mut w: Vec<String> = Vec::new();
        let bind = |p: &mut Vec<Box<dyn ToSql>>, v: Box<dyn ToSql>| {
            p.push(v);
            format!("?{}", p.len())
        };
        if let Some(f) = &self.at_from {
            let b = bind(p, Box::new(f.clone()));
            w.push(format!("j.at >= {b}"));
        }
        if let Some(u) = &self.at_until {
            let b = bind(p, Box::new(u.clone()));
            w.push(format!("j.at < {b}"));
        }
        if !self.kinds.is_empty() {
            let mut kinds: Vec<&str> = Vec::new();
            let mut refund_only = false;
            for k in &self.kinds {
                match k {
                    LogKind::Sale => kinds.extend(SALE_KINDS),
                    LogKind::Payment => kinds.extend(PAYMENT_KINDS),
                    LogKind::Return => kinds.push("return_recorded"),
                    LogKind::Outbox => kinds.extend(OUTBOX_KINDS),
                    LogKind::Refund => refund_only = true,
                    LogKind::Manager => kinds.extend(["manager_action", "staff_session"]),
                    LogKind::System => {}
                }
            }
            let list = |ks: &[&str]| {
                ks.iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            // The kind index gives rows newest first only for one kind: with several, SQLite
            // collects and sorts every one of them (20,000 outbox rows in a year). Reading
            // newest-first and testing the kind is cheaper then, and for the common kinds (sales,
            // payments) anyway; the unary + keeps SQLite off the index.
            let one_rare = kinds.len() == 1
                && !refund_only
                && !self
                    .kinds
                    .iter()
                    .any(|k| matches!(k, LogKind::Sale | LogKind::Payment | LogKind::System));
            let col = if one_rare { "j.kind" } else { "+j.kind" };
            let mut any = Vec::new();
            if !kinds.is_empty() {
                any.push(format!("{col} IN ({})", list(&kinds)));
            }
            if refund_only && !self.kinds.contains(&LogKind::Outbox) {
                any.push(format!(
                    "({col} IN ({}) AND {operation} = 'refund')",
                    list(OUTBOX_KINDS)
                ));
            }
            if self.kinds.contains(&LogKind::System) {
                let mut known: Vec<&str> = Vec::new();
                known.extend(SALE_KINDS);
                known.extend(PAYMENT_KINDS);
                known.extend(OUTBOX_KINDS);
                known.extend(["return_recorded", "manager_action"]);
                any.push(format!("j.kind NOT IN ({})", list(&known)));
            }
            w.push(format!("({})", any.join(" OR ")));
        }
        if let Some(s) = &self.state {
            if ["queued", "sent", "needs_attention", "resolved"].contains(&s.as_str()) {
                // Only outbox rows have these states, and theirs is in the kind: use its index
                // rather than computing every row's state.
                let b = bind(p, Box::new(format!("outbox_{s}")));
                w.push(format!("j.kind = {b}"));
            } else if [
                "requested",
                "awaiting_customer",
                "customer_opened",
                "completed",
            ]
            .contains(&s.as_str())
            {
                // Attempts still in flight are a handful at any time (one a sale at most), so
                // start from them rather than testing every row's state; sales never have these
                // states, and outbox rows have their own.
                let b = bind(p, Box::new(s.clone()));
                w.push(format!(
                    "j.attempt_id IN (SELECT a.id FROM payment_attempts a WHERE a.state = {b})
                     AND j.kind NOT LIKE 'outbox%'"
                ));
            } else {
                let b = bind(p, Box::new(s.clone()));
                w.push(format!("{STATE} = {b}"));
            }
        }
        if let Some(m) = self.min_amount {
            let b = bind(p, Box::new(m));
            w.push(format!("j.amount >= {b}"));
        }
        if let Some(m) = self.max_amount {
            let b = bind(p, Box::new(m));
            w.push(format!("j.amount <= {b}"));
        }
        if let Some(c) = &self.currency {
            let b = bind(p, Box::new(c.clone()));
            w.push(format!("j.currency = {b}"));
        }
        if let Some(o) = &self.operator {
            let b = bind(p, Box::new(o.clone()));
            w.push(format!("j.operator = {b}"));
        }
        if let Some(r) = &self.reference {
            let b = bind(p, Box::new(r.clone()));
            w.push(format!(
                "(j.sale_id = {b} OR j.attempt_id = {b} OR j.klarna_request_id = {b}
                  OR j.klarna_transaction_id = {b} OR j.correlation_id = {b})"
            ));
        }
        if let Some(t) = &self.text {
            // A reference leaves a handful of rows: testing each one's text directly is cheaper
            // than asking the trigram index about each (a millisecond a row for common words).
            if indexed && t.chars().count() >= 3 && self.reference.is_none() {
                // The trigram index finds substrings of three characters or more; a phrase
                // never spans two columns, so this is "a substring of one field".
                let phrase = format!("\"{}\"", t.replace('"', "\"\""));
                let b = bind(p, Box::new(phrase));
                // Read the matches newest first from the trigram index itself (it takes the
                // order and the keyset bound on rowid), so a page stops after its rows instead of
                // collecting every match of a common word first. CROSS JOIN keeps it outermost.
                from = "journal_text t CROSS JOIN journal_lookup j ON j.seq = t.rowid";
                key = "t.rowid";
                w.push(format!("t.journal_text MATCH {b}"));
            } else {
                if indexed {
                    // The text itself is only in the journal (read for these rows alone).
                    detail = "d.detail";
                }
                w.push(text_scan(bind(p, Box::new(t.to_lowercase())), detail));
            }
        }
        let clause = if w.is_empty() {
            "1".to_string()
        } else {
            w.join(" AND ")
        };
        let from = if detail == "d.detail" {
            format!("{from} LEFT JOIN journal d ON d.seq = j.seq")
        } else {
            from.to_string()
        };
        (from, key, clause)
    }
}

/// Where a page query's rows come from: the indexed rows (up to the watermark of
/// `store/text.rs`) or the tail the indexes do not hold yet, read from the journal itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    Indexed,
    Tail,
}

/// "The lower-cased text bound as `b` is in one of the fields", tested row by row (`detail`:
/// where the row's detail is).
fn text_scan(b: String, detail: &str) -> String {
    let any = [
        "j.operator",
        "j.sale_id",
        "j.attempt_id",
        "j.klarna_request_id",
        "j.klarna_transaction_id",
        "j.correlation_id",
        detail,
    ]
    .iter()
    .map(|f| format!("instr(unicode_lower({f}), {b}) > 0"))
    .collect::<Vec<_>>()
    .join(" OR ");
    format!("({any})")
}

/// An outbox row's operation, NULL for anything else (and for detail that is not JSON).
const OPERATION: &str = "(CASE WHEN j.kind LIKE 'outbox%' AND json_valid(j.detail)
    THEN json_extract(j.detail, '$.operation') END)";

/// The state a log row shows: an outbox row's own, else its payment attempt's, else its sale's.
/// Left alone, SQLite takes the primary key's index and then reads the row; the (id, state)
/// indexes named here answer alone, which an export of a hundred thousand rows notices.
const STATE: &str = "(CASE WHEN j.kind LIKE 'outbox%' THEN substr(j.kind, 8)
    WHEN j.attempt_id IS NOT NULL THEN (SELECT a.state FROM payment_attempts a INDEXED BY attempt_states
        WHERE a.id = j.attempt_id)
    WHEN j.sale_id IS NOT NULL THEN (SELECT s.state FROM sales s INDEXED BY sale_states
        WHERE s.id = j.sale_id) END)";

/// One row of the log: the journal row, what it is about, and its current state.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LogEntry {
    #[serde(flatten)]
    pub row: JournalRow,
    #[serde(rename = "log_kind")]
    pub kind: LogKind,
    pub state: Option<String>,
    /// The detail exactly as stored (what free text searches).
    #[serde(skip)]
    pub detail_text: String,
}

impl LogEntry {
    pub(crate) fn new(row: JournalRow, detail_text: String, state: Option<String>) -> LogEntry {
        let op = row.detail.get("operation").and_then(|v| v.as_str());
        let kind = LogKind::of(&row.kind, op);
        LogEntry {
            row,
            kind,
            state,
            detail_text,
        }
    }
}

/// A page of the log, newest first; pass `next_before` back as `before` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    pub next_before: Option<i64>,
}

/// Largest page a caller may ask for.
pub const MAX_PAGE: usize = 5000;

impl Db {
    /// One page of the log matching `filter`, with rows older than `before` (newest first).
    pub fn log_page(
        &self,
        filter: &LogFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<LogPage, LogError> {
        filter.validate()?;
        let limit = limit.clamp(1, MAX_PAGE);
        let before = before.unwrap_or(i64::MAX);
        // Rows are indexed after their commit (store/text.rs): the indexed ones are found through
        // the indexes, the tail after the watermark by reading it. Callers that can write run
        // `Db::index_journal` first, so the tail is usually empty. The watermark is read inside
        // the page's own statement: read separately, an indexing commit in between (another
        // process) would count its rows twice against the limit and end the log early.
        let mut params: Vec<Box<dyn ToSql>> = Vec::new();
        let (_, _, tail) = filter.sql(Rows::Tail, &mut params);
        let (from, key, clause) = filter.sql(Rows::Indexed, &mut params);
        params.push(Box::new(before));
        let before_p = params.len();
        params.push(Box::new(limit as i64));
        let limit_p = params.len();
        let cols = COLUMNS
            .split(',')
            .map(|c| format!("j.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = if clause == "1" && from == "journal_lookup j" {
            // No filter: the primary key alone orders and bounds the page, so there is nothing
            // to find first (and an export, thousands of rows a page, reads them in one pass).
            params.truncate(limit_p);
            format!(
                "SELECT {cols}, {STATE} FROM journal j WHERE j.seq < ?{before_p}
                 ORDER BY j.seq DESC LIMIT ?{limit_p}"
            )
        } else {
            // Find the page's seqs first, from the indexes alone where they cover the filter,
            // and only then read those rows and work out their state: otherwise SQLite reads
            // and computes every matching row (a whole day for a date range) before sorting.
            format!(
                "SELECT {cols}, {STATE} FROM journal j WHERE j.seq IN (
                     SELECT seq FROM (
                         SELECT j.seq AS seq FROM journal j
                         WHERE j.seq > (SELECT upto FROM journal_indexed)
                           AND j.seq < ?{before_p} AND {tail}
                         UNION ALL
                         SELECT seq FROM (SELECT {key} AS seq FROM {from}
                             WHERE {clause} AND {key} < ?{before_p}
                             ORDER BY {key} DESC LIMIT ?{limit_p}))
                     ORDER BY seq DESC LIMIT ?{limit_p})
                 ORDER BY j.seq DESC"
            )
        };
        let mut st = self.conn.prepare_cached(&sql)?;
        let refs: Vec<&dyn ToSql> = params.iter().map(|b| b.as_ref()).collect();
        let mut entries = st
            .query_map(refs.as_slice(), |r| {
                let detail: String = r.get(12)?;
                Ok(LogEntry::new(row_from(r)?, detail, r.get(15)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if entries.len() < limit {
            // The live table has no more: go on into the archive files, newest first.
            let more = self.archived_log(filter, before, limit - entries.len())?;
            entries.extend(more);
        }
        let next_before = (entries.len() == limit)
            .then(|| entries.last().map(|e| e.row.seq))
            .flatten();
        Ok(LogPage {
            entries,
            next_before,
        })
    }

    /// Every matching row (live and archived), newest first, handed to `each` page by page.
    pub fn log_each(
        &self,
        filter: &LogFilter,
        mut each: impl FnMut(&LogEntry) -> Result<(), LogError>,
    ) -> Result<usize, LogError> {
        let mut before = None;
        let mut n = 0;
        loop {
            let page = self.log_page(filter, before, MAX_PAGE)?;
            for e in &page.entries {
                each(e)?;
            }
            n += page.entries.len();
            match page.next_before {
                Some(b) => before = Some(b),
                None => return Ok(n),
            }
        }
    }

    /// The current state for rows read from archives, looked up like `STATE` does in SQL.
    pub(crate) fn state_of(
        &self,
        row: &JournalRow,
        cache: &mut HashMap<String, Option<String>>,
    ) -> Result<Option<String>, LogError> {
        if let Some(s) = row.kind.strip_prefix("outbox_") {
            return Ok(Some(s.to_string()));
        }
        let (table, id) = match (&row.attempt_id, &row.sale_id) {
            (Some(a), _) => ("payment_attempts", a),
            (None, Some(s)) => ("sales", s),
            (None, None) => return Ok(None),
        };
        let key = format!("{table}/{id}");
        if let Some(s) = cache.get(&key) {
            return Ok(s.clone());
        }
        use rusqlite::OptionalExtension;
        let s: Option<String> = self
            .conn
            .query_row(
                &format!("SELECT state FROM {table} WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .optional()?;
        cache.insert(key, s.clone());
        Ok(s)
    }
}

#[cfg(test)]
mod bench;
#[cfg(test)]
pub(crate) mod generated;

#[cfg(test)]
pub(crate) mod tests;
