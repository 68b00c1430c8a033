//! Retention: old journal rows move out of the live database into zstd-compressed JSON-lines files
//! that still verify (each records the hash it chains from and its last hash) and stay searchable.
//! Only rows inside a closed day are archived, so a report never needs an archive file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::journal::{GENESIS_HASH, Hashed, archive_anchor, chain_hash};
use crate::store::{
    Db, JournalEntry, JournalKind, JournalRow, LogEntry, LogError, LogFilter, StoreError,
    VerifyReport,
};

const FORMAT: &str = "kassa-journal-archive/1";

/// What went wrong archiving or reading archives; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a readable kassa journal archive: {message}")]
    Format { path: PathBuf, message: String },
    #[error(
        "the live journal is broken at row {0} ({1}): run `kassa journal verify` before archiving"
    )]
    Broken(i64, String),
}

impl From<rusqlite::Error> for ArchiveError {
    fn from(e: rusqlite::Error) -> Self {
        ArchiveError::Store(e.into())
    }
}

/// The first line of an archive file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveHeader {
    pub format: String,
    pub terminal_id: String,
    pub first_seq: i64,
    pub last_seq: i64,
    /// The hash of the row before `first_seq` (the genesis hash for the first archive).
    pub prev_hash: String,
    pub last_hash: String,
    pub rows: i64,
}

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

impl ArchivedRow {
    fn expected_hash(&self, prev_hash: &str) -> String {
        chain_hash(
            prev_hash,
            &Hashed {
                seq: self.seq,
                at: &self.at,
                terminal_id: &self.terminal_id,
                operator: &self.operator,
                kind: &self.kind,
                sale_id: self.sale_id.as_deref(),
                attempt_id: self.attempt_id.as_deref(),
                amount: self.amount,
                currency: self.currency.as_deref(),
                klarna_request_id: self.klarna_request_id.as_deref(),
                klarna_transaction_id: self.klarna_transaction_id.as_deref(),
                correlation_id: self.correlation_id.as_deref(),
                detail: &self.detail,
            },
        )
    }

    fn into_journal_row(self) -> (JournalRow, String) {
        let detail = serde_json::from_str(&self.detail)
            .unwrap_or_else(|_| serde_json::Value::String(self.detail.clone()));
        let row = JournalRow {
            seq: self.seq,
            at: self.at,
            terminal_id: self.terminal_id,
            operator: self.operator,
            kind: self.kind,
            sale_id: self.sale_id,
            attempt_id: self.attempt_id,
            amount: self.amount,
            currency: self.currency,
            klarna_request_id: self.klarna_request_id,
            klarna_transaction_id: self.klarna_transaction_id,
            correlation_id: self.correlation_id,
            detail,
            prev_hash: self.prev_hash,
            hash: self.hash,
        };
        (row, self.detail)
    }
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

/// The whole chain checked: archive files, then the live table, then every day close's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub archives: usize,
    pub archived_rows: i64,
    pub live: VerifyReport,
    pub day_closes_checked: usize,
    /// The first broken link anywhere: row (or archive's first row) and why.
    pub first_broken: Option<(i64, String)>,
}

/// Sha-256 of everything written through it, so the file's hash needs no second read.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArchivedRow> {
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

/// Reads a whole archive file: its header and rows (not yet checked against each other).
pub fn read_archive(path: &Path) -> Result<(ArchiveHeader, Vec<ArchivedRow>), ArchiveError> {
    let bad = |message: String| ArchiveError::Format {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(io(path))?;
    let dec = zstd::Decoder::new(file).map_err(io(path))?;
    let mut lines = BufReader::new(dec).lines();
    let header: ArchiveHeader = match lines.next() {
        Some(l) => {
            serde_json::from_str(&l.map_err(io(path))?).map_err(|e| bad(format!("header: {e}")))?
        }
        None => return Err(bad("the file is empty".into())),
    };
    if header.format != FORMAT {
        return Err(bad(format!("unknown format {:?}", header.format)));
    }
    let mut rows = Vec::new();
    for (i, l) in lines.enumerate() {
        let l = l.map_err(io(path))?;
        rows.push(serde_json::from_str(&l).map_err(|e| bad(format!("line {}: {e}", i + 2)))?);
    }
    Ok((header, rows))
}

fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(io(path))?;
    Ok(hex::encode(h.finalize()))
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

    /// Moves the rows older than `cutoff` (RFC 3339) that lie inside a closed day into a new
    /// archive file in `dir`; journals that it did. None when there is nothing to archive.
    pub fn archive_journal(
        &mut self,
        dir: &Path,
        cutoff: &str,
        operator: &str,
    ) -> Result<Option<ArchiveRecord>, ArchiveError> {
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
                "SELECT {} FROM journal WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
                crate::store::journal::COLUMNS
            ))?;
            st.query_map(params![anchor_seq, last], raw_row)?
                .collect::<Result<_, _>>()?
        };
        // Only an intact chain is archived: a broken one must be seen where it is.
        let mut prev = anchor_hash.clone();
        for (i, r) in rows.iter().enumerate() {
            let want = anchor_seq + 1 + i as i64;
            if r.seq != want {
                return Err(ArchiveError::Broken(want, "rows are missing".into()));
            }
            if r.prev_hash != prev || r.expected_hash(&prev) != r.hash {
                return Err(ArchiveError::Broken(
                    r.seq,
                    "its hash does not match".into(),
                ));
            }
            prev = r.hash.clone();
        }
        let header = ArchiveHeader {
            format: FORMAT.into(),
            terminal_id: self.terminal_id.clone(),
            first_seq: anchor_seq + 1,
            last_seq: last,
            prev_hash: anchor_hash,
            last_hash: prev,
            rows: rows.len() as i64,
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(format!(
            "journal-{:012}-{:012}.jsonl.zst",
            header.first_seq, last
        ));
        let tmp = path.with_extension("zst.tmp");
        let file_sha256 = {
            let f = File::create(&tmp).map_err(io(&tmp))?;
            let mut enc = zstd::Encoder::new(
                HashingWriter {
                    inner: f,
                    hash: Sha256::new(),
                },
                9,
            )
            .map_err(io(&tmp))?;
            let mut line = |v: &dyn erased::Line| -> Result<(), ArchiveError> {
                let mut s = v.json().map_err(|e| ArchiveError::Format {
                    path: tmp.clone(),
                    message: e.to_string(),
                })?;
                s.push('\n');
                enc.write_all(s.as_bytes()).map_err(io(&tmp))
            };
            line(&header)?;
            for r in &rows {
                line(r)?;
            }
            let w = enc.finish().map_err(io(&tmp))?;
            w.inner.sync_all().map_err(io(&tmp))?;
            hex::encode(w.hash.finalize())
        };
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Ok(d) = File::open(dir) {
            // The rename must survive a power cut before the rows leave the database.
            let _ = d.sync_all();
        }
        let record = ArchiveRecord {
            first_seq: header.first_seq,
            last_seq: last,
            prev_hash: header.prev_hash.clone(),
            last_hash: header.last_hash.clone(),
            rows: header.rows,
            file: path.clone(),
            file_sha256,
            archived_at: crate::now_rfc3339(),
        };
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
        })?;
        Ok(Some(record))
    }

    /// Verifies every archive file, then the live table from the newest archive's last hash, then
    /// that each day close's chain head is the hash of the row it closed on.
    pub fn audit_journal(&self) -> Result<AuditReport, ArchiveError> {
        let archives = self.archives()?;
        let closes: Vec<(i64, i64, String)> = {
            let mut st = self.conn.prepare(
                "SELECT close_no, last_seq, chain_head FROM day_closes ORDER BY close_no",
            )?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?
        };
        let wanted: HashMap<i64, ()> = closes.iter().map(|c| (c.1, ())).collect();
        let mut hash_at: HashMap<i64, String> = HashMap::new();
        hash_at.insert(0, GENESIS_HASH.into());
        let mut prev = GENESIS_HASH.to_string();
        let mut expected = 1;
        let mut archived_rows = 0;
        let empty_live = || VerifyReport {
            rows: 0,
            head: String::new(),
            first_broken: None,
        };
        let broken = |seq: i64, why: String, archived_rows: i64| AuditReport {
            archives: archives.len(),
            archived_rows,
            live: empty_live(),
            day_closes_checked: 0,
            first_broken: Some((seq, why)),
        };
        for a in &archives {
            let name = a.file.display();
            if !a.file.exists() {
                return Ok(broken(
                    a.first_seq,
                    format!("archive file {name} is missing"),
                    archived_rows,
                ));
            }
            if sha256_file(&a.file)? != a.file_sha256 {
                return Ok(broken(
                    a.first_seq,
                    format!("archive file {name} was changed since it was written"),
                    archived_rows,
                ));
            }
            let (header, rows) = read_archive(&a.file)?;
            if header.first_seq != a.first_seq || header.prev_hash != prev {
                return Ok(broken(
                    a.first_seq,
                    format!("archive file {name} does not follow the archive before it"),
                    archived_rows,
                ));
            }
            for r in rows {
                if r.seq != expected {
                    return Ok(broken(
                        r.seq,
                        format!("in {name}: expected row {expected}: rows are missing"),
                        archived_rows,
                    ));
                }
                if r.prev_hash != prev {
                    return Ok(broken(
                        r.seq,
                        format!("in {name}: its previous-hash does not match the row before it"),
                        archived_rows,
                    ));
                }
                if r.expected_hash(&prev) != r.hash {
                    return Ok(broken(
                        r.seq,
                        format!("in {name}: its contents do not match its hash"),
                        archived_rows,
                    ));
                }
                if wanted.contains_key(&r.seq) {
                    hash_at.insert(r.seq, r.hash.clone());
                }
                prev = r.hash;
                expected += 1;
                archived_rows += 1;
            }
            if expected - 1 != a.last_seq || prev != a.last_hash {
                return Ok(broken(
                    a.first_seq,
                    format!("archive file {name} does not end where the database says"),
                    archived_rows,
                ));
            }
        }
        let live = self.verify_journal()?;
        if let Some(b) = &live.first_broken {
            return Ok(AuditReport {
                archives: archives.len(),
                archived_rows,
                live: live.clone(),
                day_closes_checked: 0,
                first_broken: Some(b.clone()),
            });
        }
        let mut checked = 0;
        let mut first_broken = None;
        for (close_no, last_seq, head) in &closes {
            let actual = match hash_at.get(last_seq) {
                Some(h) => Some(h.clone()),
                None => self
                    .conn
                    .query_row("SELECT hash FROM journal WHERE seq = ?1", [last_seq], |r| {
                        r.get(0)
                    })
                    .optional()?,
            };
            checked += 1;
            if actual.as_ref() != Some(head) {
                first_broken = Some((
                    *last_seq,
                    format!(
                        "day close #{close_no} quotes a chain head that row {last_seq} does not have"
                    ),
                ));
                break;
            }
        }
        Ok(AuditReport {
            archives: archives.len(),
            archived_rows,
            live,
            day_closes_checked: checked,
            first_broken,
        })
    }

    /// Log rows from archive files with seq below `before`, newest first, at most `limit`.
    pub(crate) fn archived_log(
        &self,
        filter: &LogFilter,
        before: i64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, LogError> {
        let mut out = Vec::new();
        let archives = self.archives()?;
        let mut states = HashMap::new();
        for a in archives.iter().rev().filter(|a| a.first_seq < before) {
            let (_, rows) = read_archive(&a.file).map_err(|e| LogError::Archive(e.to_string()))?;
            for r in rows.into_iter().rev().filter(|r| r.seq < before) {
                let (row, detail) = r.into_journal_row();
                let state = self.state_of(&row, &mut states)?;
                let e = LogEntry::new(row, detail, state);
                if filter.matches(&e) {
                    out.push(e);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Header and rows go through one writer; this lets both be serialized by the same closure.
mod erased {
    pub trait Line {
        fn json(&self) -> serde_json::Result<String>;
    }
    impl<T: serde::Serialize> Line for T {
        fn json(&self) -> serde_json::Result<String> {
            serde_json::to_string(self)
        }
    }
}

#[cfg(test)]
mod tests;
