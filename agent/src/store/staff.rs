//! Staff accounts as rows: who may sign in at the till, with which role, behind which PIN hash.
//! Adding one is journaled as a manager action; the hash never leaves the store but to be
//! checked (off the database thread, by `staff`).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Db, JournalEntry, JournalKind, StoreError};
pub use kassa_core::staff::Role;

/// A staff account as the API and screens show it (never its PIN hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StaffRow {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub created_at: String,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(StaffRow, String)> {
    let role: String = r.get(2)?;
    Ok((
        StaffRow {
            id: r.get(0)?,
            name: r.get(1)?,
            role: Role::parse(&role).ok_or_else(|| super::undecodable(2, "staff role", &role))?,
            active: r.get(4)?,
            created_at: r.get(5)?,
        },
        r.get(3)?,
    ))
}

impl Db {
    /// The account `id` with its PIN hash, if there is one.
    pub fn staff_member(&self, id: &str) -> Result<Option<(StaffRow, String)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, name, role, phc, active, created_at FROM staff WHERE id = ?1",
            )?
            .query_row([id], from_row)
            .optional()?)
    }

    pub fn staff(&self) -> Result<Vec<StaffRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, name, role, phc, active, created_at FROM staff ORDER BY id",
        )?;
        let rows = st
            .query_map([], |r| from_row(r).map(|x| x.0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Journals a sign-in, sign-out or refusal of staff member `id`.
    pub fn journal_staff_session(&mut self, id: &str, event: &str) -> Result<i64, StoreError> {
        self.write(|w| {
            let mut e = JournalEntry::new(JournalKind::StaffSession, id);
            e.detail = serde_json::json!({"event": event});
            w.journal(e)
        })
    }

    /// Adds an account, or gives an existing one a new name, role and PIN (journaled by `by`).
    pub fn put_staff(
        &mut self,
        id: &str,
        name: &str,
        role: Role,
        phc: &str,
        by: &str,
    ) -> Result<(), StoreError> {
        kassa_core::staff::validate_staff_id(id).map_err(StoreError::Invalid)?;
        super::validate_operator(by)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "a staff name is 1 to 64 characters on one line".into(),
            ));
        }
        self.write(|w| {
            let existed: bool = w.tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM staff WHERE id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            w.tx.execute(
                "INSERT INTO staff (id, name, role, phc, active, created_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
                     phc = excluded.phc, active = 1",
                params![id, name, role.as_str(), phc, crate::now_rfc3339()],
            )?;
            if id == "manager" {
                // The `manager` account's PIN is the store PIN: one secret, kept in step.
                w.tx.execute(
                    "INSERT INTO manager_pin (id, phc, set_at) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET phc = excluded.phc, set_at = excluded.set_at",
                    params![phc, crate::now_rfc3339()],
                )?;
            }
            let mut e = JournalEntry::new(JournalKind::ManagerAction, by);
            e.detail = serde_json::json!({"action": if existed { "staff_changed" } else { "staff_added" },
                "staff_id": id, "role": role.as_str()});
            w.journal(e)?;
            Ok(())
        })
    }
}
