//! The database's side of archiving: which live rows the next archive file may take, the
//! `journal_archives` table, and the one transaction that records a written file and removes its
//! rows. The statements behind `archive.rs` (which writes, reads and checks the files), kept with
//! the store's other SQL.

use std::path::PathBuf;

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::journal::{COLUMNS, GENESIS_HASH, archive_anchor};
use super::{Db, JournalEntry, JournalKind, StoreError};

/// One journal row exactly as stored: `detail` stays the raw text its hash covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedRow {
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
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An archive file as the database remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveRecord {
    pub first_seq: i64,
    pub last_seq: i64,
    pub prev_hash: String,
    pub last_hash: String,
    pub rows: i64,
    pub file: PathBuf,
    pub file_sha256: String,
    pub archived_at: String,
}

/// The live rows the next archive file would hold, and where they chain from.
pub(crate) struct ArchiveSpan {
    /// The last row already archived (0 before the first archive) and its hash.
    pub anchor_seq: i64,
    pub anchor_hash: String,
    /// Rows `anchor_seq + 1 ..= last`, oldest first, as stored (not yet checked).
    pub rows: Vec<ArchivedRow>,
    pub last: i64,
}

/// A journal row exactly as stored, from a query that selects `journal::COLUMNS` in order.
pub(crate) fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArchivedRow> {
    Ok(ArchivedRow {
        seq: r.get(0)?,
        at: r.get(1)?,
        terminal_id: r.get(2)?,
        operator: r.get(3)?,
        kind: r.get(4)?,
        sale_id: r.get(5)?,
        attempt_id: r.get(6)?,
        amount: r.get(7)?,
        currency: r.get(8)?,
        klarna_request_id: r.get(9)?,
        klarna_transaction_id: r.get(10)?,
        correlation_id: r.get(11)?,
        detail: r.get(12)?,
        prev_hash: r.get(13)?,
        hash: r.get(14)?,
    })
}

impl Db {
    /// Archive files, oldest first.
    pub fn archives(&self) -> Result<Vec<ArchiveRecord>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT first_seq, last_seq, prev_hash, last_hash, rows, file, file_sha256, archived_at
             FROM journal_archives ORDER BY first_seq",
        )?;
        let rows = st.query_map([], |r| {
            let file: String = r.get(5)?;
            Ok(ArchiveRecord {
                first_seq: r.get(0)?,
                last_seq: r.get(1)?,
                prev_hash: r.get(2)?,
                last_hash: r.get(3)?,
                rows: r.get(4)?,
                file: PathBuf::from(file),
                file_sha256: r.get(6)?,
                archived_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The rows older than `cutoff` (RFC 3339) that lie inside a closed day and are not yet
    /// archived; None when there are none.
    pub(crate) fn archivable(&mut self, cutoff: &str) -> Result<Option<ArchiveSpan>, StoreError> {
        let (anchor_seq, anchor_hash) =
            archive_anchor(&self.conn)?.unwrap_or_else(|| (0, GENESIS_HASH.to_string()));
        let closed: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(last_seq), 0) FROM day_closes",
            [],
            |r| r.get(0),
        )?;
        // The longest run of rows that are all older than the cutoff: a clock that went back
        // must not pull a newer row into an archive. (Through the lookup index on `at`, once
        // it holds every row.)
        self.index_journal(None)?;
        let first_new: Option<i64> = self.conn.query_row(
            "SELECT MIN(seq) FROM journal_lookup WHERE at >= ?1",
            [cutoff],
            |r| r.get(0),
        )?;
        let tail: i64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM journal", [], |r| {
                    r.get(0)
                })?;
        let last = first_new.map_or(tail, |s| s - 1).min(closed);
        if last <= anchor_seq {
            return Ok(None);
        }
        let rows: Vec<ArchivedRow> = {
            let mut st = self.conn.prepare(&format!(
                "SELECT {COLUMNS} FROM journal WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
            ))?;
            st.query_map(params![anchor_seq, last], raw_row)?
                .collect::<Result<_, _>>()?
        };
        Ok(Some(ArchiveSpan {
            anchor_seq,
            anchor_hash,
            rows,
            last,
        }))
    }

    /// Records a written (and synced) archive file and takes its rows out of the live table
    /// and the derived indexes, journaling that it did: one transaction.
    pub(crate) fn record_archive(
        &mut self,
        record: &ArchiveRecord,
        operator: &str,
    ) -> Result<(), StoreError> {
        self.write(|w| {
            w.tx.execute(
                "INSERT INTO journal_archives (first_seq, last_seq, prev_hash, last_hash, rows,
                 file, file_sha256, archived_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                params![
                    record.first_seq,
                    record.last_seq,
                    record.prev_hash,
                    record.last_hash,
                    record.rows,
                    record.file.to_string_lossy(),
                    record.file_sha256,
                    record.archived_at
                ],
            )?;
            // The archived rows leave the derived indexes too: index any still waiting first,
            // so the watermark never points below rows they do not hold.
            w.index_journal(None)?;
            w.tx.execute(
                "DELETE FROM journal_text WHERE rowid BETWEEN ?1 AND ?2",
                params![record.first_seq, record.last_seq],
            )?;
            w.tx.execute(
                "DELETE FROM journal_lookup WHERE seq BETWEEN ?1 AND ?2",
                params![record.first_seq, record.last_seq],
            )?;
            w.tx.execute(
                "DELETE FROM journal WHERE seq BETWEEN ?1 AND ?2",
                params![record.first_seq, record.last_seq],
            )?;
            let mut e = JournalEntry::new(JournalKind::JournalArchived, operator);
            e.detail = serde_json::json!({
                "file": record.file.to_string_lossy(), "first_seq": record.first_seq,
                "last_seq": record.last_seq, "last_hash": record.last_hash,
                "file_sha256": record.file_sha256, "rows": record.rows,
            });
            w.journal(e)?;
            Ok(())
        })
    }

    /// Every day close's (number, last row, chain head), oldest first: what an audit checks.
    pub(crate) fn day_close_heads(&self) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT close_no, last_seq, chain_head FROM day_closes ORDER BY close_no")?;
        Ok(st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    }
}
