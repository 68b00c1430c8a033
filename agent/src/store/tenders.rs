//! A sale's tenders other than Klarna (cash, the store's card terminal) as rows. What a tender
//! may do is decided in `kassa_core::tender`; here it is written, with its journal row in the
//! same transaction by the caller.

use rusqlite::{OptionalExtension, params};

use super::{StoreError, WriteTx};
pub use kassa_core::sale::TenderRow;
pub use kassa_core::tender::{TenderEvent, TenderKind, TenderState};

const COLUMNS: &str = "id, sale_id, kind, state, amount, given, change, rounding, reference,
    refunded, operator, created_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TenderRow> {
    let kind: String = r.get(2)?;
    let state: String = r.get(3)?;
    Ok(TenderRow {
        id: r.get(0)?,
        sale_id: r.get(1)?,
        kind: TenderKind::parse(&kind)
            .ok_or_else(|| super::undecodable(2, "tender kind", &kind))?,
        state: TenderState::parse(&state)
            .ok_or_else(|| super::undecodable(3, "tender state", &state))?,
        amount: r.get(4)?,
        given: r.get(5)?,
        change: r.get(6)?,
        rounding: r.get(7)?,
        reference: r.get(8)?,
        refunded: r.get(9)?,
        operator: r.get(10)?,
        created_at: r.get(11)?,
    })
}

/// The sale's tenders, oldest first.
pub(super) fn query_tenders(
    conn: &rusqlite::Connection,
    sale_id: &str,
) -> Result<Vec<TenderRow>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sale_tenders WHERE sale_id = ?1 ORDER BY created_at, rowid"
    ))?;
    let rows = st
        .query_map([sale_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

impl WriteTx<'_> {
    pub fn insert_tender(&mut self, t: &TenderRow) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO sale_tenders ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
            ))?
            .execute(params![
                t.id,
                t.sale_id,
                t.kind.as_str(),
                t.state.as_str(),
                t.amount,
                t.given,
                t.change,
                t.rounding,
                t.reference,
                t.refunded,
                t.operator,
                t.created_at
            ])?;
        Ok(())
    }

    pub fn tender(&self, id: &str) -> Result<TenderRow, StoreError> {
        self.tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM sale_tenders WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("tender {id}")))
    }

    /// Moves a tender by `event` (`kassa_core::tender::TenderState::next`) and writes it back;
    /// returns the row as written.
    pub fn move_tender(&mut self, id: &str, event: TenderEvent) -> Result<TenderRow, StoreError> {
        let mut t = self.tender(id)?;
        t.state = t
            .state
            .next(event, t.left())
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        if let TenderEvent::Refund(a) = event {
            t.refunded += a;
        }
        self.tx
            .prepare_cached("UPDATE sale_tenders SET state = ?2, refunded = ?3 WHERE id = ?1")?
            .execute(params![t.id, t.state.as_str(), t.refunded])?;
        Ok(t)
    }
}
