//! Retention: old journal rows move out of the live database into zstd-compressed JSON-lines files
//! that still verify (each records the hash it chains from and its last hash) and stay searchable.
//! Only rows inside a closed day are archived, so a report never needs an archive file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::archive::ArchiveSpan;
pub use crate::store::archive::{ArchiveRecord, ArchivedRow};
use crate::store::journal::{GENESIS_HASH, Hashed, chain_hash};
use crate::store::{Db, JournalRow, LogEntry, LogError, LogFilter, StoreError, VerifyReport};

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
    /// Moves the rows older than `cutoff` (RFC 3339) that lie inside a closed day into a new
    /// archive file in `dir`; journals that it did. None when there is nothing to archive.
    pub fn archive_journal(
        &mut self,
        dir: &Path,
        cutoff: &str,
        operator: &str,
    ) -> Result<Option<ArchiveRecord>, ArchiveError> {
        let Some(ArchiveSpan {
            anchor_seq,
            anchor_hash,
            rows,
            last,
        }) = self.archivable(cutoff)?
        else {
            return Ok(None);
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
        self.record_archive(&record, operator)?;
        Ok(Some(record))
    }

    /// Verifies every archive file, then the live table from the newest archive's last hash, then
    /// that each day close's chain head is the hash of the row it closed on.
    pub fn audit_journal(&self) -> Result<AuditReport, ArchiveError> {
        let archives = self.archives()?;
        let closes = self.day_close_heads()?;
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
                None => self.journal_hash(*last_seq)?,
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
