//! Returns of a sale made at this till, found by its receipt: which of its lines already came
//! back, and the return as a row with its lines, written in the transaction that gives the
//! money back (tenders' refunds and Klarna's outbox row are the caller's, in the same commit).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Db, StoreError, WriteTx};

/// A recorded return of a till sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SaleReturnRecord {
    pub id: String,
    pub sale_id: String,
    pub currency: String,
    /// What the customer gets back, in all.
    pub amount: i64,
    /// Of which through Klarna (a refund in the outbox).
    pub klarna_amount: i64,
    pub outbox_id: Option<i64>,
    /// Each tender's part: `[{"tender": "cash", "tender_id": …, "amount": …}, …]`.
    #[schema(value_type = Object)]
    pub shares: serde_json::Value,
    /// Lines returned: `(line_no, quantity)`.
    pub lines: Vec<(i64, i64)>,
    pub reason: String,
    pub restock: bool,
    pub operator: String,
    pub approved_by: Option<String>,
    pub created_at: String,
}

/// What a new return writes.
pub struct NewSaleReturn<'a> {
    pub id: &'a str,
    pub sale_id: &'a str,
    pub currency: &'a str,
    pub amount: i64,
    pub klarna_amount: i64,
    pub outbox_id: Option<i64>,
    pub shares: &'a serde_json::Value,
    pub lines: &'a [(i64, i64)],
    pub reason: &'a str,
    pub restock: bool,
    pub operator: &'a str,
    pub approved_by: Option<&'a str>,
}

fn returned_in(
    conn: &rusqlite::Connection,
    sale_id: &str,
) -> Result<HashMap<i64, i64>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT line_no, SUM(quantity) FROM sale_return_lines WHERE sale_id = ?1 GROUP BY line_no",
    )?;
    let rows = st
        .query_map([sale_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn klarna_returned_in(conn: &rusqlite::Connection, sale_id: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(klarna_amount), 0) FROM sale_returns WHERE sale_id = ?1",
        [sale_id],
        |r| r.get(0),
    )?)
}

impl Db {
    /// What returns of this sale already sent back through Klarna.
    pub fn klarna_returned(&self, sale_id: &str) -> Result<i64, StoreError> {
        klarna_returned_in(&self.conn, sale_id)
    }

    /// Quantities of the sale's lines already returned, by line number.
    pub fn returned_lines(&self, sale_id: &str) -> Result<HashMap<i64, i64>, StoreError> {
        returned_in(&self.conn, sale_id)
    }

    pub fn sale_return(&self, id: &str) -> Result<SaleReturnRecord, StoreError> {
        let mut r = self
            .conn
            .prepare_cached(
                "SELECT id, sale_id, currency, amount, klarna_amount, outbox_id, shares, reason,
                    restock, operator, approved_by, created_at FROM sale_returns WHERE id = ?1",
            )?
            .query_row([id], |r| {
                let shares: String = r.get(6)?;
                Ok(SaleReturnRecord {
                    id: r.get(0)?,
                    sale_id: r.get(1)?,
                    currency: r.get(2)?,
                    amount: r.get(3)?,
                    klarna_amount: r.get(4)?,
                    outbox_id: r.get(5)?,
                    shares: serde_json::from_str(&shares).unwrap_or_default(),
                    lines: vec![],
                    reason: r.get(7)?,
                    restock: r.get(8)?,
                    operator: r.get(9)?,
                    approved_by: r.get(10)?,
                    created_at: r.get(11)?,
                })
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("return {id}")))?;
        let mut st = self.conn.prepare_cached(
            "SELECT line_no, quantity FROM sale_return_lines WHERE return_id = ?1 ORDER BY line_no",
        )?;
        r.lines = st
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(r)
    }
}

impl WriteTx<'_> {
    /// Quantities already returned, read inside the transaction that records another return.
    pub fn returned_lines(&self, sale_id: &str) -> Result<HashMap<i64, i64>, StoreError> {
        returned_in(&self.tx, sale_id)
    }

    pub fn insert_sale_return(&mut self, r: &NewSaleReturn<'_>) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO sale_returns (id, sale_id, currency, amount, klarna_amount, outbox_id,
                    shares, reason, restock, operator, approved_by, created_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
            )?
            .execute(params![
                r.id,
                r.sale_id,
                r.currency,
                r.amount,
                r.klarna_amount,
                r.outbox_id,
                r.shares.to_string(),
                r.reason,
                r.restock,
                r.operator,
                r.approved_by,
                crate::now_rfc3339()
            ])?;
        for (line_no, quantity) in r.lines {
            self.tx
                .prepare_cached(
                    "INSERT INTO sale_return_lines (return_id, sale_id, line_no, quantity)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![r.id, r.sale_id, line_no, quantity])?;
        }
        Ok(())
    }
}
