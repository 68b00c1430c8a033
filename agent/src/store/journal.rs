//! The append-only journal: every state change of a sale or payment is a row whose hash covers the
//! previous row's hash, so changing, removing or reordering any row breaks the chain from there on.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Db, StoreError, WriteTx};

/// The hash the first row chains onto.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, in the words a manager reads in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    SaleOpened,
    LineAdded,
    /// A line was taken off an open sale; `detail.before` is what it was.
    LineRemoved,
    /// A line's quantity or unit price changed; `detail` has `before`, `after`, and for a price
    /// its `reason` and the approving `manager` where one was needed.
    LineChanged,
    PaymentRequested,
    QrShown,
    CustomerOpened,
    PaymentCompleted,
    PaymentDeclined,
    PaymentExpired,
    PaymentCanceled,
    PaymentFailed,
    Finalized,
    ReceiptIssued,
    /// The receipt printer printed a paid sale's receipt, or could not (`printed`, `reason`).
    ReceiptPrinted,
    SaleAbandoned,
    CancelConfirmed,
    /// The customer approved a request the till had already given up on: never finalized, so the
    /// customer is not charged; the manager sees this row.
    CompletedAfterAbandon,
    /// Klarna approved (charged) a payment the till had already given up on; its refund is
    /// queued in the same commit, so the customer is not charged for a sale they did not make.
    ChargedAfterAbandon,
    /// A call that can move money kept answering in a way kassa cannot place: the customer may
    /// have been charged; nothing else is taken for the sale until a manager decides.
    PaymentInDoubt,
    /// A manager decided a payment in doubt: paid (with Klarna's transaction id) or not paid.
    DoubtResolved,
    WebhookReceived,
    /// A post-purchase operation (refund, capture, void, cancel) was put in the outbox.
    OutboxQueued,
    OutboxSent,
    OutboxNeedsAttention,
    OutboxResolved,
    /// A part (or all) of a sale was paid in cash or on the store's card terminal; `amount` is
    /// what it paid of the sale, `detail` has the tender, cash given, change, rounding and what
    /// the drawer gained.
    TenderTaken,
    /// A tender was handed back because its sale was abandoned.
    TenderVoided,
    /// Part of a return went back through a cash or card terminal tender (cash paid out).
    TenderRefunded,
    /// Cash put into or taken out of the drawer outside a sale: the opening float, paid in,
    /// paid out (`detail.movement`, `detail.reason`); `amount` is signed as the drawer sees it.
    CashMovement,
    /// A member of staff signed in, signed out, was locked after idle time, or was refused
    /// (`detail.event`); the row's operator is the staff id.
    StaffSession,
    /// Goods came back over the counter; `amount` is what the customer gets back.
    ReturnRecorded,
    /// Something done behind the manager PIN (or refused for a wrong PIN); `detail.action` says what.
    ManagerAction,
    /// Old rows moved to an archive file; `detail` names the file and the hash it ends on.
    JournalArchived,
}

impl JournalKind {
    pub fn as_str(self) -> &'static str {
        // serde's snake_case name, spelled out so it is a &'static str.
        match self {
            JournalKind::SaleOpened => "sale_opened",
            JournalKind::LineAdded => "line_added",
            JournalKind::LineRemoved => "line_removed",
            JournalKind::LineChanged => "line_changed",
            JournalKind::PaymentRequested => "payment_requested",
            JournalKind::QrShown => "qr_shown",
            JournalKind::CustomerOpened => "customer_opened",
            JournalKind::PaymentCompleted => "payment_completed",
            JournalKind::PaymentDeclined => "payment_declined",
            JournalKind::PaymentExpired => "payment_expired",
            JournalKind::PaymentCanceled => "payment_canceled",
            JournalKind::PaymentFailed => "payment_failed",
            JournalKind::Finalized => "finalized",
            JournalKind::ReceiptIssued => "receipt_issued",
            JournalKind::ReceiptPrinted => "receipt_printed",
            JournalKind::SaleAbandoned => "sale_abandoned",
            JournalKind::CancelConfirmed => "cancel_confirmed",
            JournalKind::CompletedAfterAbandon => "completed_after_abandon",
            JournalKind::ChargedAfterAbandon => "charged_after_abandon",
            JournalKind::PaymentInDoubt => "payment_in_doubt",
            JournalKind::DoubtResolved => "payment_doubt_resolved",
            JournalKind::WebhookReceived => "webhook_received",
            JournalKind::OutboxQueued => "outbox_queued",
            JournalKind::OutboxSent => "outbox_sent",
            JournalKind::OutboxNeedsAttention => "outbox_needs_attention",
            JournalKind::OutboxResolved => "outbox_resolved",
            JournalKind::TenderTaken => "tender_taken",
            JournalKind::TenderVoided => "tender_voided",
            JournalKind::TenderRefunded => "tender_refunded",
            JournalKind::CashMovement => "cash_movement",
            JournalKind::StaffSession => "staff_session",
            JournalKind::ReturnRecorded => "return_recorded",
            JournalKind::ManagerAction => "manager_action",
            JournalKind::JournalArchived => "journal_archived",
        }
    }
}

/// A row to append; time, terminal, sequence and hashes are filled in by the journal.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub kind: JournalKind,
    pub operator: String,
    pub sale_id: Option<String>,
    pub attempt_id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub klarna_request_id: Option<String>,
    pub klarna_transaction_id: Option<String>,
    pub correlation_id: Option<String>,
    /// Free-form JSON detail (reason, line, Klarna error code); never secrets or card data.
    pub detail: serde_json::Value,
}

impl JournalEntry {
    pub fn new(kind: JournalKind, operator: &str) -> Self {
        JournalEntry {
            kind,
            operator: operator.to_string(),
            sale_id: None,
            attempt_id: None,
            amount: None,
            currency: None,
            klarna_request_id: None,
            klarna_transaction_id: None,
            correlation_id: None,
            detail: serde_json::Value::Null,
        }
    }
}

/// A stored journal row, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JournalRow {
    pub seq: i64,
    pub at: String,
    pub terminal_id: String,
    pub operator: String,
    pub kind: String,
    pub sale_id: Option<String>,
    pub attempt_id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub klarna_request_id: Option<String>,
    pub klarna_transaction_id: Option<String>,
    pub correlation_id: Option<String>,
    /// What the row records beyond its columns; null when nothing.
    #[schema(value_type = Option<Object>)]
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The part of a row the hash covers, in a fixed field order (serde keeps declaration order).
#[derive(Serialize)]
pub(crate) struct Hashed<'a> {
    pub(crate) seq: i64,
    pub(crate) at: &'a str,
    pub(crate) terminal_id: &'a str,
    pub(crate) operator: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) sale_id: Option<&'a str>,
    pub(crate) attempt_id: Option<&'a str>,
    pub(crate) amount: Option<i64>,
    pub(crate) currency: Option<&'a str>,
    pub(crate) klarna_request_id: Option<&'a str>,
    pub(crate) klarna_transaction_id: Option<&'a str>,
    pub(crate) correlation_id: Option<&'a str>,
    pub(crate) detail: &'a str,
}

impl<'a> Hashed<'a> {
    /// The hashed fields of a new row made from `e` (its detail already serialized).
    pub(crate) fn of(
        seq: i64,
        at: &'a str,
        terminal_id: &'a str,
        e: &'a JournalEntry,
        detail: &'a str,
    ) -> Self {
        Hashed {
            seq,
            at,
            terminal_id,
            operator: &e.operator,
            kind: e.kind.as_str(),
            sale_id: e.sale_id.as_deref(),
            attempt_id: e.attempt_id.as_deref(),
            amount: e.amount,
            currency: e.currency.as_deref(),
            klarna_request_id: e.klarna_request_id.as_deref(),
            klarna_transaction_id: e.klarna_transaction_id.as_deref(),
            correlation_id: e.correlation_id.as_deref(),
            detail,
        }
    }
}

pub(crate) fn chain_hash(prev_hash: &str, h: &Hashed<'_>) -> String {
    let mut d = Sha256::new();
    d.update(prev_hash.as_bytes());
    d.update(b"\n");
    // Serializing a struct of plain strings and integers cannot fail.
    d.update(serde_json::to_vec(h).unwrap_or_default());
    hex::encode(d.finalize())
}

pub(crate) fn tail(conn: &Connection) -> Result<Option<(i64, String)>, StoreError> {
    let live = conn
        .prepare_cached("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    // With every row archived, the chain goes on from the newest archive's last hash.
    match live {
        Some(t) => Ok(Some(t)),
        None => archive_anchor(conn),
    }
}

/// (last seq, last hash) of the newest archive file: where the live table's chain starts.
pub(crate) fn archive_anchor(conn: &Connection) -> Result<Option<(i64, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT last_seq, last_hash FROM journal_archives ORDER BY last_seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

impl WriteTx<'_> {
    /// Appends one row to the journal inside this transaction; returns its sequence number.
    pub fn journal(&mut self, e: JournalEntry) -> Result<i64, StoreError> {
        let (prev_seq, prev_hash) =
            tail(&self.tx)?.unwrap_or_else(|| (0, GENESIS_HASH.to_string()));
        let seq = prev_seq + 1;
        let at = crate::now_rfc3339();
        let detail = e.detail.to_string();
        let hashed = Hashed::of(seq, &at, self.terminal_id, &e, &detail);
        let hash = chain_hash(&prev_hash, &hashed);
        self.tx
            .prepare_cached(
                "INSERT INTO journal (seq, at, terminal_id, operator, kind, sale_id, attempt_id,
                 amount, currency, klarna_request_id, klarna_transaction_id, correlation_id,
                 detail, prev_hash, hash) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
            )?
            .execute(params![
                seq,
                at,
                self.terminal_id,
                e.operator,
                e.kind.as_str(),
                e.sale_id,
                e.attempt_id,
                e.amount,
                e.currency,
                e.klarna_request_id,
                e.klarna_transaction_id,
                e.correlation_id,
                detail,
                prev_hash,
                hash
            ])?;
        Ok(seq)
    }
}

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub rows: i64,
    /// The chain hash of the last row: what a Z-report quotes.
    pub head: String,
    /// The first row whose link is broken, and why.
    pub first_broken: Option<(i64, String)>,
}

/// A journal row as read back: the stored row (`store::archive::raw_row`, the one reader of a
/// row's columns) with its detail parsed.
pub(crate) fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<JournalRow> {
    super::archive::raw_row(r).map(JournalRow::from)
}

impl From<super::archive::ArchivedRow> for JournalRow {
    fn from(a: super::archive::ArchivedRow) -> Self {
        let detail = serde_json::from_str(&a.detail).unwrap_or(serde_json::Value::String(a.detail));
        JournalRow {
            seq: a.seq,
            at: a.at,
            terminal_id: a.terminal_id,
            operator: a.operator,
            kind: a.kind,
            sale_id: a.sale_id,
            attempt_id: a.attempt_id,
            amount: a.amount,
            currency: a.currency,
            klarna_request_id: a.klarna_request_id,
            klarna_transaction_id: a.klarna_transaction_id,
            correlation_id: a.correlation_id,
            detail,
            prev_hash: a.prev_hash,
            hash: a.hash,
        }
    }
}

pub(crate) const COLUMNS: &str =
    "seq, at, terminal_id, operator, kind, sale_id, attempt_id, amount, currency,
    klarna_request_id, klarna_transaction_id, correlation_id, detail, prev_hash, hash";

/// How a client pages through the journal's raw rows: after `after` (a row's `seq`; from the
/// start when absent), at most `limit` (100 when absent, at most 1000).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct JournalQuery {
    #[param(nullable = false)]
    pub after: Option<i64>,
    #[param(nullable = false)]
    pub limit: Option<i64>,
}

impl JournalQuery {
    pub fn after(&self) -> i64 {
        self.after.unwrap_or(0)
    }

    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

impl Db {
    /// Rows after `after_seq`, oldest first, at most `limit`.
    pub fn journal_rows(&self, after_seq: i64, limit: i64) -> Result<Vec<JournalRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = st.query_map(params![after_seq, limit], row_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored hash of live row `seq` (None once it is archived, or if there is none).
    pub(crate) fn journal_hash(&self, seq: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT hash FROM journal WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn journal_for_sale(&self, sale_id: &str) -> Result<Vec<JournalRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM journal WHERE seq IN (
                 SELECT seq FROM journal_lookup WHERE sale_id = ?1
                 UNION ALL
                 SELECT seq FROM journal WHERE seq > (SELECT upto FROM journal_indexed)
                     AND sale_id = ?1)
             ORDER BY seq"
        ))?;
        let rows = st.query_map(params![sale_id], row_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Walks the live chain from the first row (or from the newest archive's last hash, which
    /// `archive::verify_archives` checks); reports the first row whose stored hash, previous hash
    /// or sequence does not follow from the rows before it.
    pub fn verify_journal(&self) -> Result<VerifyReport, StoreError> {
        let (anchor_seq, anchor_hash) =
            archive_anchor(&self.conn)?.unwrap_or_else(|| (0, GENESIS_HASH.to_string()));
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM journal ORDER BY seq"))?;
        let mut rows = st.query([])?;
        let mut prev_hash = anchor_hash;
        let mut expected_seq = anchor_seq + 1;
        let mut count = 0;
        while let Some(r) = rows.next()? {
            count += 1;
            let seq: i64 = r.get(0)?;
            // Read raw text so a tampered detail is hashed as stored, not as re-serialized.
            let detail: String = r.get(12)?;
            let stored_prev: String = r.get(13)?;
            let stored_hash: String = r.get(14)?;
            let broken = |why: String| {
                Ok(VerifyReport {
                    rows: count,
                    head: prev_hash.clone(),
                    first_broken: Some((seq, why)),
                })
            };
            if seq != expected_seq {
                return broken(format!(
                    "expected row {expected_seq}, found row {seq}: rows are missing"
                ));
            }
            if stored_prev != prev_hash {
                return broken("its previous-hash does not match the row before it".into());
            }
            let (at, tid, op, kind): (String, String, String, String) =
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let opt = |i: usize| -> rusqlite::Result<Option<String>> { r.get(i) };
            let (sale, att, cur, kreq, ktx, corr) =
                (opt(5)?, opt(6)?, opt(8)?, opt(9)?, opt(10)?, opt(11)?);
            let h = Hashed {
                seq,
                at: &at,
                terminal_id: &tid,
                operator: &op,
                kind: &kind,
                sale_id: sale.as_deref(),
                attempt_id: att.as_deref(),
                amount: r.get(7)?,
                currency: cur.as_deref(),
                klarna_request_id: kreq.as_deref(),
                klarna_transaction_id: ktx.as_deref(),
                correlation_id: corr.as_deref(),
                detail: &detail,
            };
            if chain_hash(&prev_hash, &h) != stored_hash {
                return broken("its contents do not match its hash: the row was changed".into());
            }
            prev_hash = stored_hash;
            expected_seq += 1;
        }
        Ok(VerifyReport {
            rows: count,
            head: prev_hash,
            first_broken: None,
        })
    }
}

/// For tests outside the store that prove the journal's defences (`archive/tests.rs`): each
/// does one named thing to the raw table, so those tests hold no SQL of their own.
#[cfg(test)]
impl Db {
    /// Rows in the live table (archived rows have left it).
    pub(crate) fn live_journal_rows(&self) -> rusqlite::Result<i64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))
    }

    /// Adds `add` to row `seq`'s amount behind the chain's back, as someone with the file could
    /// (dropping the triggers that refuse it first).
    pub(crate) fn tamper_journal_amount(&self, seq: i64, add: i64) -> rusqlite::Result<()> {
        self.conn.execute_batch(&format!(
            "DROP TRIGGER journal_no_update; DROP TRIGGER journal_no_delete;
             UPDATE journal SET amount = amount + {add} WHERE seq = {seq}"
        ))
    }

    /// Tries to delete every live row the ordinary way (the triggers must refuse).
    pub(crate) fn try_delete_journal(&self) -> rusqlite::Result<usize> {
        self.conn.execute("DELETE FROM journal", [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.db"), "till-1").unwrap();
        (dir, db)
    }

    fn append(db: &mut Db, n: i64) {
        for i in 0..n {
            db.write(|w| {
                let mut e = JournalEntry::new(JournalKind::LineAdded, "ann");
                e.amount = Some(100 + i);
                e.currency = Some("SEK".into());
                w.journal(e)
            })
            .unwrap();
        }
    }

    #[test]
    fn an_untouched_chain_verifies_and_survives_reopening() {
        let (dir, mut db) = db();
        append(&mut db, 5);
        drop(db);
        let mut db = Db::open(&dir.path().join("k.db"), "till-1").unwrap();
        append(&mut db, 2);
        let r = db.verify_journal().unwrap();
        assert_eq!(r.rows, 7);
        assert_eq!(r.first_broken, None);
        assert_eq!(r.head, db.journal_rows(6, 1).unwrap()[0].hash);
    }

    fn tamper(db: &Db, sql: &str) {
        db.conn
            .execute_batch(&format!(
                "DROP TRIGGER journal_no_update; DROP TRIGGER journal_no_delete; {sql}"
            ))
            .unwrap();
    }

    #[test]
    fn editing_an_amount_breaks_the_chain_at_that_row() {
        let (_d, mut db) = db();
        append(&mut db, 5);
        tamper(&db, "UPDATE journal SET amount = 1 WHERE seq = 3");
        let r = db.verify_journal().unwrap();
        assert_eq!(r.first_broken.as_ref().map(|b| b.0), Some(3), "{r:?}");
    }

    #[test]
    fn deleting_a_row_breaks_the_chain_at_the_gap() {
        let (_d, mut db) = db();
        append(&mut db, 5);
        tamper(&db, "DELETE FROM journal WHERE seq = 2");
        assert_eq!(
            db.verify_journal().unwrap().first_broken.map(|b| b.0),
            Some(3)
        );
    }

    #[test]
    fn the_journal_refuses_updates_without_tampering() {
        let (_d, mut db) = db();
        append(&mut db, 1);
        assert!(
            db.conn
                .execute("UPDATE journal SET amount = 1", [])
                .is_err()
        );
        assert!(db.conn.execute("DELETE FROM journal", []).is_err());
    }

    #[test]
    fn a_rolled_back_transaction_leaves_no_gap_in_the_chain() {
        let (_d, mut db) = db();
        append(&mut db, 1);
        let r: Result<(), StoreError> = db.write(|w| {
            w.journal(JournalEntry::new(JournalKind::SaleOpened, "ann"))?;
            Err(StoreError::Invalid("changed my mind".into()))
        });
        assert!(r.is_err());
        append(&mut db, 1);
        let r = db.verify_journal().unwrap();
        assert_eq!((r.rows, r.first_broken), (2, None));
    }
}
