//! What `kassa bench` (`bench.rs`) needs of SQLite itself: a bare table written with kassa's
//! pragmas, the baseline every store write is measured against on the same disk, and the
//! checkpoint controls that keep one measurement from running on into the next. Here so the
//! benchmark, like every other module, holds no SQL.

use std::path::Path;

use rusqlite::Connection;

use super::{Db, StoreError, configure};

/// A bare SQLite insert with kassa's pragmas, in its own transaction: no journal, no chain.
pub struct Baseline {
    conn: Connection,
}

impl Baseline {
    /// Creates `path` with one plain table.
    pub fn create(path: &Path) -> rusqlite::Result<Baseline> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        conn.execute_batch(
            "CREATE TABLE t (seq INTEGER PRIMARY KEY, at TEXT, kind TEXT, amount INTEGER, currency TEXT, detail TEXT, hash TEXT)",
        )?;
        Ok(Baseline { conn })
    }

    /// One row about the size of a journal row, committed durably.
    pub fn insert(&mut self, i: i64) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO t (at, kind, amount, currency, detail, hash) VALUES (?1, 'line_added', ?2, 'SEK', '{}', ?3)",
            rusqlite::params![crate::now_rfc3339(), i, format!("{i:064x}")],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Leaves the WAL to grow, so its size counts the pages every commit wrote.
    pub fn stop_autocheckpoint(&self) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)
    }
}

impl Db {
    /// As `Baseline::stop_autocheckpoint`, on the store's own connection.
    pub fn stop_autocheckpoint(&self) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)
    }

    /// Copies the whole WAL into the database and empties it, waiting for readers: between
    /// benchmark phases only, never on a till's path.
    pub fn checkpoint_truncate(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}
