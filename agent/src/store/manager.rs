//! The manager PIN's row and the journal rows of manager actions: the statements behind
//! `manager.rs` (which hashes and checks PINs off the database thread), kept with the store's
//! other SQL.

use rusqlite::{OptionalExtension, params};

use super::{Db, JournalEntry, JournalKind, StoreError};

impl Db {
    /// Stores a new PIN hash (replacing any) and journals that the PIN was set.
    pub fn set_manager_pin(&mut self, phc: &str, operator: &str) -> Result<(), StoreError> {
        let had_one = self.manager_pin_hash()?.is_some();
        self.write(|w| {
            w.tx.execute(
                "INSERT INTO manager_pin (id, phc, set_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET phc = excluded.phc, set_at = excluded.set_at",
                params![phc, crate::now_rfc3339()],
            )?;
            // The store PIN is the `manager` account's PIN (migration V15): one secret, not two.
            w.tx.execute(
                "INSERT INTO staff (id, name, role, phc, active, created_at)
                 VALUES ('manager', 'Store manager', 'manager', ?1, 1, ?2)
                 ON CONFLICT (id) DO UPDATE SET phc = excluded.phc",
                params![phc, crate::now_rfc3339()],
            )?;
            let mut e = JournalEntry::new(JournalKind::ManagerAction, operator);
            e.detail = serde_json::json!({"action": "set_pin", "replaced": had_one});
            w.journal(e)?;
            Ok(())
        })
    }

    pub fn manager_pin_hash(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT phc FROM manager_pin WHERE id = 1", [], |r| r.get(0))
            .optional()?)
    }

    /// Journals a manager action (or a refused one) that changes nothing else.
    pub fn journal_manager_action(
        &mut self,
        operator: &str,
        detail: serde_json::Value,
    ) -> Result<i64, StoreError> {
        self.write(|w| {
            let mut e = JournalEntry::new(JournalKind::ManagerAction, operator);
            e.detail = detail;
            w.journal(e)
        })
    }
}
