//! The journal's derived indexes (the trigram index of its text and `journal_lookup`, which
//! carries every lookup index), filled after the commit instead of inside it: the database
//! thread indexes new rows in batches when it is idle, and readers take rows past the watermark
//! from the journal itself (or index them first). A journal row costs its commit one page
//! instead of ten, and FTS5 no longer flushes a segment per commit.

use rusqlite::{OptionalExtension, params};

use super::{Db, StoreError, WriteTx};

/// Rows indexed per idle batch: a few milliseconds, so a job arriving meanwhile barely waits.
pub(crate) const IDLE_BATCH: i64 = 500;

impl Db {
    /// Indexes up to `max` rows not yet indexed (all of them with `None`); returns how many it
    /// indexed. The indexes are derived data, so the commit need not wait for the disk.
    pub fn index_journal(&mut self, max: Option<i64>) -> Result<i64, StoreError> {
        if !self.journal_index_behind()? {
            return Ok(0);
        }
        self.write_relaxed(|w| w.index_journal(max))
    }

    /// Whether journal rows wait to be indexed (a read, cheap enough to ask when idle).
    pub fn journal_index_behind(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM journal
                 WHERE seq > (SELECT upto FROM journal_indexed))",
            )?
            .query_row([], |r| r.get(0))?)
    }
}

impl WriteTx<'_> {
    /// As `Db::index_journal`, inside this transaction (which also reads the watermark, so two
    /// processes never index the same rows twice).
    pub(crate) fn index_journal(&mut self, max: Option<i64>) -> Result<i64, StoreError> {
        let upto: i64 = self
            .tx
            .prepare_cached("SELECT upto FROM journal_indexed")?
            .query_row([], |r| r.get(0))?;
        let last: Option<i64> = self
            .tx
            .prepare_cached("SELECT MAX(seq) FROM journal")?
            .query_row([], |r| r.get(0))
            .optional()?
            .flatten();
        let Some(last) = last.filter(|l| *l > upto) else {
            return Ok(0);
        };
        let end = max.map_or(last, |m| last.min(upto.saturating_add(m.max(1))));
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO journal_text (rowid, operator, sale_id, attempt_id, klarna_request_id,
                     klarna_transaction_id, correlation_id, detail)
                 SELECT seq, operator, sale_id, attempt_id, klarna_request_id, klarna_transaction_id,
                     correlation_id, detail FROM journal WHERE seq > ?1 AND seq <= ?2",
            )?
            .execute(params![upto, end])?;
        self.tx
            .prepare_cached(
                "INSERT INTO journal_lookup (seq, at, operator, kind, sale_id, attempt_id, amount,
                     currency, klarna_request_id, klarna_transaction_id, correlation_id, outbox_id,
                     operation)
                 SELECT seq, at, operator, kind, sale_id, attempt_id, amount, currency,
                     klarna_request_id, klarna_transaction_id, correlation_id,
                     CASE WHEN kind LIKE 'outbox%' AND json_valid(detail)
                         THEN json_extract(detail, '$.outbox_id') END,
                     CASE WHEN kind LIKE 'outbox%' AND json_valid(detail)
                         THEN json_extract(detail, '$.operation') END
                 FROM journal WHERE seq > ?1 AND seq <= ?2",
            )?
            .execute(params![upto, end])?;
        self.tx
            .prepare_cached("UPDATE journal_indexed SET upto = ?1")?
            .execute([end])?;
        Ok(n as i64)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Db, JournalEntry, JournalKind};

    fn matches(db: &Db, word: &str) -> i64 {
        db.conn
            .query_row(
                "SELECT COUNT(*) FROM journal_text WHERE journal_text MATCH ?1",
                [format!("\"{word}\"")],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn rows_are_indexed_after_the_commit_in_batches_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("k.db"), "till-1").unwrap();
        for i in 0..7 {
            db.write(|w| {
                let mut e = JournalEntry::new(JournalKind::LineAdded, &format!("clerk-{i}"));
                e.detail = serde_json::json!({"note": "zebra crossing"});
                w.journal(e)
            })
            .unwrap();
        }
        assert!(db.journal_index_behind().unwrap());
        assert_eq!(
            matches(&db, "zebra"),
            0,
            "nothing is indexed inside the commit"
        );
        assert_eq!(db.index_journal(Some(5)).unwrap(), 5);
        assert_eq!(matches(&db, "zebra"), 5);
        assert_eq!(db.index_journal(None).unwrap(), 2);
        assert_eq!(db.index_journal(None).unwrap(), 0);
        assert!(!db.journal_index_behind().unwrap());
        assert_eq!(matches(&db, "zebra"), 7);
        assert_eq!(matches(&db, "clerk-3"), 1);
        let looked_up: i64 = db
            .conn
            .query_row(
                "SELECT COUNT(*) FROM journal_lookup WHERE operator = 'clerk-3'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            looked_up, 1,
            "the lookup indexes are filled in the same batches"
        );
    }
}
