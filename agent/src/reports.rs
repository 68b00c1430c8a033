//! X-report (mid-day, changes nothing) and Z-report (day close): per-currency totals over the
//! journal rows since the last close, and the chain hash at the close, stored and journaled so an
//! auditor can check that nothing before it changed. Printable at 40 columns; exportable.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};
use crate::store::journal::GENESIS_HASH;
use crate::store::{Db, JournalEntry, JournalKind, StoreError};

/// A count and its amount in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tally {
    pub count: i64,
    pub amount: i64,
}

impl Tally {
    fn add(&mut self, count: i64, amount: i64) {
        self.count += count;
        self.amount += amount;
    }
}

/// Payment attempts by how they ended, in the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptOutcomes {
    pub paid: Tally,
    pub declined: Tally,
    pub expired: Tally,
    pub canceled: Tally,
    pub failed: Tally,
    /// Approved after the till had given up: never charged, but a manager should know.
    pub completed_after_abandon: Tally,
}

/// Everything a report says about one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrencyTotals {
    pub currency: String,
    /// Sales paid (finalized) in the period.
    pub sales: Tally,
    pub returns: Tally,
    /// Refunds Klarna accepted in the period.
    pub refunds_sent: Tally,
    /// Refunds queued (in this period or before) and not yet sent or resolved at the report.
    pub refunds_pending: Tally,
    pub attempts: AttemptOutcomes,
    pub sales_opened: i64,
    pub sales_abandoned: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    X,
    Z,
}

/// An X- or Z-report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayReport {
    pub kind: ReportKind,
    /// The Z-report's number; an X-report has none.
    pub close_no: Option<i64>,
    pub terminal_id: String,
    pub made_at: String,
    /// The journal rows the report covers: after the last close, up to and including `last_seq`.
    pub first_seq: i64,
    pub last_seq: i64,
    /// Time of the first and last row covered.
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    /// The chain hash of row `last_seq`: fixes every row up to it.
    pub chain_head: String,
    pub rows: i64,
    /// Per currency, in code order.
    pub currencies: Vec<CurrencyTotals>,
}

/// A stored day close, as an auditor lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayClose {
    pub close_no: i64,
    pub closed_at: String,
    pub operator: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub chain_head: String,
}

/// Totals over journal rows `(after, upto]`, read with `conn` (a transaction or the connection).
fn compute(
    conn: &rusqlite::Connection,
    kind: ReportKind,
    terminal_id: &str,
    after: i64,
    upto: i64,
) -> Result<DayReport, StoreError> {
    let mut by_cur: BTreeMap<String, CurrencyTotals> = BTreeMap::new();
    let mut rows = 0;
    {
        let mut st = conn.prepare_cached(
            "SELECT kind, currency, CASE WHEN kind LIKE 'outbox%' AND json_valid(detail)
                 THEN json_extract(detail, '$.operation') END,
             COUNT(*), COALESCE(SUM(amount), 0)
             FROM journal WHERE seq > ?1 AND seq <= ?2 GROUP BY 1, 2, 3",
        )?;
        let mut q = st.query(params![after, upto])?;
        while let Some(r) = q.next()? {
            let (kind, cur, op): (String, Option<String>, Option<String>) =
                (r.get(0)?, r.get(1)?, r.get(2)?);
            let (n, sum): (i64, i64) = (r.get(3)?, r.get(4)?);
            rows += n;
            let Some(cur) = cur else { continue };
            let t = by_cur.entry(cur.clone()).or_insert_with(|| CurrencyTotals {
                currency: cur,
                ..Default::default()
            });
            match (kind.as_str(), op.as_deref()) {
                ("finalized", _) => {
                    t.sales.add(n, sum);
                    t.attempts.paid.add(n, sum);
                }
                ("payment_declined", _) => t.attempts.declined.add(n, sum),
                ("payment_expired", _) => t.attempts.expired.add(n, sum),
                ("payment_canceled", _) => t.attempts.canceled.add(n, sum),
                ("payment_failed", _) => t.attempts.failed.add(n, sum),
                ("completed_after_abandon", _) => t.attempts.completed_after_abandon.add(n, sum),
                ("return_recorded", _) => t.returns.add(n, sum),
                ("outbox_sent", Some("refund")) => t.refunds_sent.add(n, sum),
                ("sale_opened", _) => t.sales_opened += n,
                ("sale_abandoned", _) => t.sales_abandoned += n,
                _ => {}
            }
        }
    }
    // Pending refunds: every queued refund up to the report without a sent or resolved row.
    // One pass over the outbox rows, from the `journal_outbox` index alone (a year holds tens
    // of thousands, each on its own table page), plus the rows not indexed yet.
    {
        let mut done: HashSet<String> = HashSet::new();
        let mut queued: Vec<(Option<String>, Option<String>, i64)> = Vec::new();
        let mut st = conn.prepare_cached(
            "SELECT kind, outbox_id, operation, currency, COALESCE(amount, 0)
             FROM journal_lookup
             WHERE kind LIKE 'outbox%'
               AND kind IN ('outbox_queued', 'outbox_sent', 'outbox_resolved') AND seq <= ?1
             UNION ALL
             SELECT kind,
                 (CASE WHEN json_valid(detail) THEN json_extract(detail, '$.outbox_id') END),
                 (CASE WHEN json_valid(detail) THEN json_extract(detail, '$.operation') END),
                 currency, COALESCE(amount, 0)
             FROM journal
             WHERE seq > (SELECT upto FROM journal_indexed) AND seq <= ?1
               AND kind IN ('outbox_queued', 'outbox_sent', 'outbox_resolved')",
        )?;
        let mut q = st.query([upto])?;
        while let Some(r) = q.next()? {
            let kind: String = r.get(0)?;
            // The outbox journals its ids as integers (generated history as text): either
            // names the same operation.
            let id: Option<String> = match r.get::<_, rusqlite::types::Value>(1)? {
                rusqlite::types::Value::Integer(n) => Some(n.to_string()),
                rusqlite::types::Value::Text(t) => Some(t),
                _ => None,
            };
            if kind == "outbox_queued" {
                if r.get::<_, Option<String>>(2)?.as_deref() == Some("refund") {
                    queued.push((id, r.get(3)?, r.get(4)?));
                }
            } else if let Some(id) = id {
                done.insert(id);
            }
        }
        for (id, cur, amount) in queued {
            if id.as_ref().is_some_and(|id| done.contains(id)) {
                continue;
            }
            let Some(cur) = cur else { continue };
            let t = by_cur.entry(cur.clone()).or_insert_with(|| CurrencyTotals {
                currency: cur,
                ..Default::default()
            });
            t.refunds_pending.add(1, amount);
        }
    }
    let at = |seq: i64| -> Result<Option<String>, StoreError> {
        Ok(conn
            .query_row("SELECT at FROM journal WHERE seq = ?1", [seq], |r| r.get(0))
            .optional()?)
    };
    let chain_head = if upto == 0 {
        GENESIS_HASH.to_string()
    } else {
        conn.query_row("SELECT hash FROM journal WHERE seq = ?1", [upto], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or_else(|| GENESIS_HASH.to_string())
    };
    Ok(DayReport {
        kind,
        close_no: None,
        terminal_id: terminal_id.to_string(),
        made_at: crate::now_rfc3339(),
        first_seq: after + 1,
        last_seq: upto,
        period_from: if upto > after { at(after + 1)? } else { None },
        period_to: if upto > after { at(upto)? } else { None },
        chain_head,
        rows,
        currencies: by_cur.into_values().collect(),
    })
}

/// (last seq of the last close, or 0) and the journal's last seq (live or archived).
fn period(conn: &rusqlite::Connection) -> Result<(i64, i64), StoreError> {
    let after: i64 = conn.query_row(
        "SELECT COALESCE(MAX(last_seq), 0) FROM day_closes",
        [],
        |r| r.get(0),
    )?;
    let upto = crate::store::journal::tail(conn)?.map_or(0, |t| t.0);
    Ok((after, upto))
}

impl Db {
    /// The X-report: what a close now would say. Changes nothing.
    pub fn x_report(&self) -> Result<DayReport, StoreError> {
        let (after, upto) = period(&self.conn)?;
        compute(&self.conn, ReportKind::X, &self.terminal_id, after, upto)
    }

    /// The Z-report: closes the day in one transaction, storing the report and its chain head
    /// and journaling the close as a manager action.
    pub fn close_day(&mut self, operator: &str) -> Result<DayReport, StoreError> {
        let terminal_id = self.terminal_id.clone();
        self.write(|w| {
            let (after, upto) = period(&w.tx)?;
            let mut report = compute(&w.tx, ReportKind::Z, &terminal_id, after, upto)?;
            let close_no: i64 = w.tx.query_row(
                "SELECT COALESCE(MAX(close_no), 0) + 1 FROM day_closes",
                [],
                |r| r.get(0),
            )?;
            report.close_no = Some(close_no);
            let json = serde_json::to_string(&report)
                .map_err(|e| StoreError::Invalid(format!("report: {e}")))?;
            w.tx.execute(
                "INSERT INTO day_closes (close_no, closed_at, operator, first_seq, last_seq,
                 chain_head, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    close_no,
                    report.made_at,
                    operator,
                    report.first_seq,
                    report.last_seq,
                    report.chain_head,
                    json
                ],
            )?;
            let mut e = JournalEntry::new(JournalKind::ManagerAction, operator);
            e.detail = serde_json::json!({
                "action": "day_close", "close_no": close_no, "first_seq": report.first_seq,
                "last_seq": report.last_seq, "chain_head": report.chain_head,
                "currencies": report.currencies,
            });
            w.journal(e)?;
            Ok(report)
        })
    }

    /// The Z-report stored by day close `close_no`, to print or export it again.
    pub fn day_close_report(&self, close_no: i64) -> Result<DayReport, StoreError> {
        let json: String = self
            .conn
            .prepare_cached("SELECT report FROM day_closes WHERE close_no = ?1")?
            .query_row([close_no], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("day close {close_no}")))?;
        serde_json::from_str(&json)
            .map_err(|e| StoreError::Invalid(format!("day close {close_no}: {e}")))
    }

    /// Every day close, oldest first.
    pub fn day_closes(&self) -> Result<Vec<DayClose>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT close_no, closed_at, operator, first_seq, last_seq, chain_head
             FROM day_closes ORDER BY close_no",
        )?;
        let rows = st.query_map([], |r| {
            Ok(DayClose {
                close_no: r.get(0)?,
                closed_at: r.get(1)?,
                operator: r.get(2)?,
                first_seq: r.get(3)?,
                last_seq: r.get(4)?,
                chain_head: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Width of the report as a file or on screen; printed, it takes the printer's width.
pub const WIDTH: usize = 40;
/// Narrowest width the report's lines fit (a 58 mm printer has 32 columns).
const MIN_WIDTH: usize = 32;

fn money(amount: i64, currency: &str) -> String {
    match currency.parse::<Currency>() {
        Ok(c) => Money::new(amount, c).decimal(),
        Err(_) => amount.to_string(),
    }
}

/// One line: label on the left, count and amount right-aligned, never wider than `width`.
fn line(out: &mut String, width: usize, label: &str, count: Option<i64>, amount: &str) {
    let right = match count {
        Some(n) => format!("{n:>5} {amount:>14}"),
        None => format!("{amount:>20}"),
    };
    let room = width.saturating_sub(right.chars().count() + 1);
    let label: String = label.chars().take(room).collect();
    out.push_str(&format!("{label:<room$} {right}\n"));
}

impl DayReport {
    /// The report as plain text, 40 columns (files, the screen).
    pub fn to_text(&self) -> String {
        self.to_text_width(WIDTH)
    }

    /// The report as plain text `width` columns wide (at least 32): a receipt printer's width.
    pub fn to_text_width(&self, width: usize) -> String {
        let width = width.max(MIN_WIDTH);
        let line = |out: &mut String, label: &str, count: Option<i64>, amount: &str| {
            line(out, width, label, count, amount)
        };
        let mut out = String::new();
        let rule = |c: char| std::iter::repeat_n(c, width).collect::<String>() + "\n";
        let title = match (self.kind, self.close_no) {
            (ReportKind::Z, Some(n)) => format!("Z-REPORT (DAY CLOSE) #{n}"),
            (ReportKind::Z, None) => "Z-REPORT (DAY CLOSE)".into(),
            (ReportKind::X, _) => "X-REPORT (NOT A CLOSE)".into(),
        };
        out.push_str(&rule('='));
        out.push_str(&format!("{title:^width$}\n"));
        out.push_str(&rule('='));
        line(&mut out, "Terminal", None, &self.terminal_id);
        line(
            &mut out,
            "Made",
            None,
            &self.made_at.chars().take(19).collect::<String>(),
        );
        if let (Some(f), Some(t)) = (&self.period_from, &self.period_to) {
            line(
                &mut out,
                "From",
                None,
                &f.chars().take(19).collect::<String>(),
            );
            line(
                &mut out,
                "To",
                None,
                &t.chars().take(19).collect::<String>(),
            );
        }
        line(
            &mut out,
            "Journal rows",
            None,
            &format!("{}..{}", self.first_seq, self.last_seq),
        );
        out.push_str("Chain head:\n");
        // Two halves of 32, indented where the paper has room: easy to read out and compare.
        let indent = if width >= 34 { "  " } else { "" };
        for chunk in self.chain_head.as_bytes().chunks(32) {
            out.push_str(&format!("{indent}{}\n", String::from_utf8_lossy(chunk)));
        }
        if self.currencies.is_empty() {
            out.push_str(&rule('-'));
            out.push_str("No sales in this period.\n");
        }
        for c in &self.currencies {
            let m = |t: &Tally| money(t.amount, &c.currency);
            out.push_str(&rule('-'));
            out.push_str(&format!(
                "{:<w$}{:>8}\n",
                c.currency,
                "count",
                w = width - 8
            ));
            line(&mut out, "Sales", Some(c.sales.count), &m(&c.sales));
            line(&mut out, "Returns", Some(c.returns.count), &m(&c.returns));
            line(
                &mut out,
                "Refunds sent",
                Some(c.refunds_sent.count),
                &m(&c.refunds_sent),
            );
            line(
                &mut out,
                "Refunds pending",
                Some(c.refunds_pending.count),
                &m(&c.refunds_pending),
            );
            out.push_str("Payments by outcome\n");
            let a = &c.attempts;
            for (label, t) in [
                ("  paid", &a.paid),
                ("  declined", &a.declined),
                ("  expired", &a.expired),
                ("  canceled", &a.canceled),
                ("  failed", &a.failed),
                ("  approved after abandon", &a.completed_after_abandon),
            ] {
                line(&mut out, label, Some(t.count), &m(t));
            }
            line(&mut out, "Sales opened", None, &c.sales_opened.to_string());
            line(
                &mut out,
                "Sales abandoned",
                None,
                &c.sales_abandoned.to_string(),
            );
        }
        out.push_str(&rule('='));
        out
    }
}

#[cfg(test)]
mod tests;
