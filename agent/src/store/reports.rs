//! The day closes and the journal totals an X- or Z-report is made of: the statements behind
//! `reports.rs` (which prints a report), with the report types they fill, kept with the store's
//! other SQL. A close's totals are counted inside its own transaction, so they are the rows it
//! closes on.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::journal::GENESIS_HASH;
use super::{Db, InvalidParam, JournalEntry, JournalKind, StoreError};

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

/// What each way of paying took toward sales in the period (a tender handed back when its sale
/// was abandoned is taken off), and what went back through it in returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenderTotals {
    pub klarna: Tally,
    pub cash: Tally,
    pub card_terminal: Tally,
    /// Refunds paid out in cash (Klarna's refunds are `refunds_sent` and `refunds_pending`).
    pub cash_refunded: Tally,
    /// Refunds made on the store's card terminal.
    pub card_terminal_refunded: Tally,
}

/// The cash drawer: what it should hold, and (at a day close) what was counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CashDrawer {
    pub float: i64,
    pub paid_in: i64,
    /// Taken out (a positive amount).
    pub paid_out: i64,
    /// Cash kept from sales: given less change (cash rounding included).
    pub cash_sales: i64,
    /// Cash handed back: tenders voided with their sale, and refunds paid out.
    pub cash_returned: i64,
    /// Cash rounding in the drawer's favour (negative: in the customers').
    pub rounding: i64,
    /// float + paid in − paid out + cash sales − cash returned.
    pub expected: i64,
    /// Counted at the day close (a Z-report), when given.
    pub counted: Option<i64>,
    /// counted − expected: positive is too much cash, negative too little.
    pub difference: Option<i64>,
}

/// Everything a report says about one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrencyTotals {
    pub currency: String,
    /// Sales paid (receipts issued) in the period, by their totals.
    pub sales: Tally,
    /// The sales' money by how it was paid (reports made before tenders existed have none).
    #[serde(default)]
    pub tenders: TenderTotals,
    #[serde(default)]
    pub drawer: CashDrawer,
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
            "SELECT kind, currency,
                 CASE WHEN kind LIKE 'outbox%' AND json_valid(detail)
                     THEN json_extract(detail, '$.operation')
                 WHEN kind IN ('tender_taken', 'tender_voided', 'tender_refunded')
                     AND json_valid(detail) THEN json_extract(detail, '$.tender')
                 WHEN kind = 'cash_movement' AND json_valid(detail)
                     THEN json_extract(detail, '$.movement') END,
             COUNT(*), COALESCE(SUM(amount), 0),
             COALESCE(SUM(CASE WHEN kind LIKE 'tender%' AND json_valid(detail)
                 THEN json_extract(detail, '$.drawer') END), 0)
             FROM journal WHERE seq > ?1 AND seq <= ?2 GROUP BY 1, 2, 3",
        )?;
        let mut q = st.query(params![after, upto])?;
        while let Some(r) = q.next()? {
            let (kind, cur, op): (String, Option<String>, Option<String>) =
                (r.get(0)?, r.get(1)?, r.get(2)?);
            let (n, sum, drawer): (i64, i64, i64) = (r.get(3)?, r.get(4)?, r.get(5)?);
            rows += n;
            let Some(cur) = cur else { continue };
            let t = by_cur.entry(cur.clone()).or_insert_with(|| CurrencyTotals {
                currency: cur,
                ..Default::default()
            });
            match (kind.as_str(), op.as_deref()) {
                ("receipt_issued", _) => t.sales.add(n, sum),
                ("finalized", _) => {
                    t.tenders.klarna.add(n, sum);
                    t.attempts.paid.add(n, sum);
                }
                ("tender_taken", Some("cash")) => {
                    t.tenders.cash.add(n, sum);
                    t.drawer.cash_sales += drawer;
                    t.drawer.rounding += drawer - sum;
                }
                ("tender_voided", Some("cash")) => {
                    t.tenders.cash.add(-n, -sum);
                    t.drawer.cash_returned -= drawer;
                    t.drawer.rounding -= -drawer - sum;
                }
                ("tender_refunded", Some("cash")) => {
                    t.tenders.cash_refunded.add(n, sum);
                    t.drawer.cash_returned -= drawer;
                    // A full refund gives the sale's cash rounding back with it.
                    t.drawer.rounding -= -drawer - sum;
                }
                ("tender_taken", Some("card_terminal")) => t.tenders.card_terminal.add(n, sum),
                ("tender_voided", Some("card_terminal")) => t.tenders.card_terminal.add(-n, -sum),
                ("tender_refunded", Some("card_terminal")) => {
                    t.tenders.card_terminal_refunded.add(n, sum)
                }
                ("cash_movement", Some("float")) => t.drawer.float += sum,
                ("cash_movement", Some("paid_in")) => t.drawer.paid_in += sum,
                ("cash_movement", Some("paid_out")) => t.drawer.paid_out -= sum,
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
    for t in by_cur.values_mut() {
        let d = &mut t.drawer;
        d.expected = d.float + d.paid_in - d.paid_out + d.cash_sales - d.cash_returned;
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
    let upto = super::journal::tail(conn)?.map_or(0, |t| t.0);
    Ok((after, upto))
}

/// How a client asks for an X- or Z-report: the format to render it in and, for a day close, who
/// closes the day.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// json (default), text (for the receipt printer) or csv.
    pub format: Option<String>,
    /// Who closes the day (journaled); "manager" when absent.
    pub operator: Option<String>,
    /// Day close only: the cash counted in the drawer, in minor units of the till's currency
    /// (0 to 2147483647); the report names its difference from what the drawer should hold.
    #[param(minimum = 0, maximum = 2147483647)]
    pub counted_cash: Option<i64>,
}

/// The formats a report is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    /// Plain text, as the receipt printer prints it.
    Text,
    Csv,
}

impl ReportQuery {
    /// The format asked for (JSON when absent). Checked before anything is done: a day close in
    /// a format it cannot render must not close the day.
    pub fn format(&self) -> Result<ReportFormat, InvalidParam> {
        match self.format.as_deref().unwrap_or("json") {
            "json" => Ok(ReportFormat::Json),
            "text" => Ok(ReportFormat::Text),
            "csv" => Ok(ReportFormat::Csv),
            _ => Err(InvalidParam::new(
                "format",
                "format must be json, text or csv",
            )),
        }
    }
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
        self.close_day_counted(operator, &[])
    }

    /// As `close_day`, with the cash counted in the drawer per currency: the report sets each
    /// count beside what the drawer should hold and names the difference.
    pub fn close_day_counted(
        &mut self,
        operator: &str,
        counted: &[(String, i64)],
    ) -> Result<DayReport, StoreError> {
        let terminal_id = self.terminal_id.clone();
        self.write(|w| {
            let (after, upto) = period(&w.tx)?;
            let mut report = compute(&w.tx, ReportKind::Z, &terminal_id, after, upto)?;
            for (currency, amount) in counted {
                if !(0..=i64::from(i32::MAX)).contains(amount) {
                    return Err(StoreError::Invalid(format!(
                        "the counted cash ({amount}) must be between 0 and 2147483647 minor units"
                    )));
                }
                let pos = match report
                    .currencies
                    .iter()
                    .position(|c| &c.currency == currency)
                {
                    Some(p) => p,
                    None => {
                        report.currencies.push(CurrencyTotals {
                            currency: currency.clone(),
                            ..Default::default()
                        });
                        report
                            .currencies
                            .sort_by(|a, b| a.currency.cmp(&b.currency));
                        report
                            .currencies
                            .iter()
                            .position(|c| &c.currency == currency)
                            .unwrap_or_default()
                    }
                };
                let d = &mut report.currencies[pos].drawer;
                d.counted = Some(*amount);
                d.difference = Some(amount - d.expected);
            }
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
