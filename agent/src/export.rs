//! Files a manager hands on: the log and reports as CSV (header row, ISO 8601 times, amounts as
//! decimals in the currency's exponent, so a spreadsheet opens them cleanly) or as JSON.

use std::io::Write;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};
use crate::reports::{DayReport, Tally};
use crate::store::LogEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Json,
}

impl FromStr for ExportFormat {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "json" => Ok(ExportFormat::Json),
            other => Err(ExportError::Format(other.chars().take(16).collect())),
        }
    }
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("unknown export format {0:?}: use csv or json")]
    Format(String),
    #[error("writing the export failed: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing the export failed: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A text cell a spreadsheet will not run as a formula (OWASP's CSV injection advice): a cell
/// that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`. Numbers
/// and times are written by kassa and are never passed through this.
pub fn inert_cell(cell: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match cell.first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => {
            let mut v = Vec::with_capacity(cell.len() + 1);
            v.push(b'\'');
            v.extend_from_slice(cell);
            std::borrow::Cow::Owned(v)
        }
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// An amount as a decimal in its currency's exponent; minor units when the currency is unknown.
pub fn decimal(amount: i64, currency: Option<&str>) -> String {
    match currency.and_then(|c| c.parse::<Currency>().ok()) {
        Some(c) => Money::new(amount, c).decimal(),
        None => amount.to_string(),
    }
}

/// One CSV line of the log; the columns, in order, are the header row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCsvRow {
    pub seq: i64,
    /// ISO 8601 / RFC 3339, UTC.
    pub at: String,
    pub terminal_id: String,
    pub operator: String,
    pub log_kind: String,
    pub kind: String,
    pub state: Option<String>,
    pub sale_id: Option<String>,
    pub payment_id: Option<String>,
    /// A decimal in the currency's exponent ("118.00", "500" for JPY).
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub klarna_request_id: Option<String>,
    pub klarna_transaction_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The row's detail as JSON text.
    pub detail: String,
    pub hash: String,
}

impl From<&LogEntry> for LogCsvRow {
    fn from(e: &LogEntry) -> Self {
        let r = &e.row;
        LogCsvRow {
            seq: r.seq,
            at: r.at.clone(),
            terminal_id: r.terminal_id.clone(),
            operator: r.operator.clone(),
            log_kind: e.kind.as_str().into(),
            kind: r.kind.clone(),
            state: e.state.clone(),
            sale_id: r.sale_id.clone(),
            payment_id: r.attempt_id.clone(),
            amount: r.amount.map(|a| decimal(a, r.currency.as_deref())),
            currency: r.currency.clone(),
            klarna_request_id: r.klarna_request_id.clone(),
            klarna_transaction_id: r.klarna_transaction_id.clone(),
            correlation_id: r.correlation_id.clone(),
            detail: e.detail_text.clone(),
            hash: r.hash.clone(),
        }
    }
}

/// The digits of `amount` as a decimal with `exp` places after the point, appended to `out`
/// (what `Money::decimal` gives, without allocating: an export writes one for every row).
fn push_decimal(out: &mut String, amount: i64, exp: u32) {
    use std::fmt::Write as _;
    let abs = amount.unsigned_abs();
    if amount < 0 {
        out.push('-');
    }
    // Writing to a String cannot fail.
    if exp == 0 {
        let _ = write!(out, "{abs}");
    } else {
        let scale = 10u64.pow(exp);
        let _ = write!(
            out,
            "{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = exp as usize
        );
    }
}

/// Writes log entries as they come: CSV with a header row, or one JSON array.
pub struct LogWriter<W: Write> {
    out: Inner<W>,
    rows: usize,
    /// Reused for each row's seq and amount, so a CSV row allocates nothing.
    seq: String,
    amount: String,
    /// The last currency code seen and its exponent (None: unknown, amounts in minor units);
    /// rows come in runs of one currency, and looking a code up is a search of the ISO table.
    currency: Option<(String, Option<u32>)>,
}

enum Inner<W: Write> {
    // Boxed: the CSV writer carries its buffer state inline.
    Csv(Box<csv::Writer<W>>),
    Json(W),
}

impl<W: Write> LogWriter<W> {
    pub fn new(format: ExportFormat, w: W) -> Result<Self, ExportError> {
        let out = match format {
            ExportFormat::Csv => {
                // A larger buffer than csv's 8 KiB: fewer writes to a socket or file.
                let mut c = csv::WriterBuilder::new()
                    .buffer_capacity(256 * 1024)
                    .from_writer(w);
                c.write_record(LOG_CSV_HEADER)?;
                Inner::Csv(Box::new(c))
            }
            ExportFormat::Json => {
                let mut w = w;
                w.write_all(b"[")?;
                Inner::Json(w)
            }
        };
        Ok(LogWriter {
            out,
            rows: 0,
            seq: String::new(),
            amount: String::new(),
            currency: None,
        })
    }

    pub fn write(&mut self, e: &LogEntry) -> Result<(), ExportError> {
        match &mut self.out {
            Inner::Csv(c) => {
                // The same columns as `LogCsvRow` (which the tests read back), written from
                // borrowed fields instead of a struct of cloned strings.
                use std::fmt::Write as _;
                let r = &e.row;
                self.seq.clear();
                let _ = write!(self.seq, "{}", r.seq);
                self.amount.clear();
                if let Some(a) = r.amount {
                    let code = r.currency.as_deref();
                    let exp = match (&self.currency, code) {
                        (Some((last, exp)), Some(code)) if last == code => *exp,
                        (_, Some(code)) => {
                            let exp = code.parse::<Currency>().ok().map(Currency::exponent);
                            self.currency = Some((code.to_string(), exp));
                            exp
                        }
                        (_, None) => None,
                    };
                    push_decimal(&mut self.amount, a, exp.unwrap_or(0));
                }
                fn opt(v: &Option<String>) -> std::borrow::Cow<'_, [u8]> {
                    inert_cell(v.as_deref().unwrap_or("").as_bytes())
                }
                c.write_record([
                    std::borrow::Cow::Borrowed(self.seq.as_bytes()),
                    std::borrow::Cow::Borrowed(r.at.as_bytes()),
                    inert_cell(r.terminal_id.as_bytes()),
                    inert_cell(r.operator.as_bytes()),
                    std::borrow::Cow::Borrowed(e.kind.as_str().as_bytes()),
                    inert_cell(r.kind.as_bytes()),
                    opt(&e.state),
                    opt(&r.sale_id),
                    opt(&r.attempt_id),
                    std::borrow::Cow::Borrowed(self.amount.as_bytes()),
                    opt(&r.currency),
                    opt(&r.klarna_request_id),
                    opt(&r.klarna_transaction_id),
                    opt(&r.correlation_id),
                    inert_cell(e.detail_text.as_bytes()),
                    std::borrow::Cow::Borrowed(r.hash.as_bytes()),
                ])?
            }
            Inner::Json(w) => {
                if self.rows > 0 {
                    w.write_all(b",\n")?;
                }
                serde_json::to_writer(&mut *w, e)?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Ends the file (the CSV header was written at the start, so even an empty file has it).
    pub fn finish(self) -> Result<W, ExportError> {
        match self.out {
            Inner::Csv(c) => c.into_inner().map_err(|e| ExportError::Io(e.into_error())),
            Inner::Json(mut w) => {
                w.write_all(b"]\n")?;
                Ok(w)
            }
        }
    }
}

pub const LOG_CSV_HEADER: [&str; 16] = [
    "seq",
    "at",
    "terminal_id",
    "operator",
    "log_kind",
    "kind",
    "state",
    "sale_id",
    "payment_id",
    "amount",
    "currency",
    "klarna_request_id",
    "klarna_transaction_id",
    "correlation_id",
    "detail",
    "hash",
];

/// One line of a report's CSV: a measure of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportCsvRow {
    pub report: String,
    pub close_no: Option<i64>,
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    pub currency: String,
    pub measure: String,
    pub count: i64,
    pub amount: String,
    pub chain_head: String,
}

/// A report as a file.
pub fn write_report(format: ExportFormat, r: &DayReport, w: impl Write) -> Result<(), ExportError> {
    match format {
        ExportFormat::Json => Ok(serde_json::to_writer_pretty(w, r)?),
        ExportFormat::Csv => {
            let mut c = csv::Writer::from_writer(w);
            let kind = match r.kind {
                crate::reports::ReportKind::X => "X",
                crate::reports::ReportKind::Z => "Z",
            };
            for cur in &r.currencies {
                let a = &cur.attempts;
                let (tn, d) = (&cur.tenders, &cur.drawer);
                let one = |amount| Tally { count: 1, amount };
                let mut measures: Vec<(&str, Tally)> = vec![
                    ("sales", cur.sales),
                    ("paid_klarna", tn.klarna),
                    ("paid_cash", tn.cash),
                    ("paid_card_terminal", tn.card_terminal),
                    ("refunded_cash", tn.cash_refunded),
                    ("refunded_card_terminal", tn.card_terminal_refunded),
                    ("drawer_float", one(d.float)),
                    ("drawer_paid_in", one(d.paid_in)),
                    ("drawer_paid_out", one(d.paid_out)),
                    ("drawer_cash_sales", one(d.cash_sales)),
                    ("drawer_cash_returned", one(d.cash_returned)),
                    ("drawer_rounding", one(d.rounding)),
                    ("drawer_expected", one(d.expected)),
                    ("returns", cur.returns),
                    ("refunds_sent", cur.refunds_sent),
                    ("refunds_pending", cur.refunds_pending),
                    ("payments_paid", a.paid),
                    ("payments_declined", a.declined),
                    ("payments_expired", a.expired),
                    ("payments_canceled", a.canceled),
                    ("payments_failed", a.failed),
                    (
                        "payments_completed_after_abandon",
                        a.completed_after_abandon,
                    ),
                ];
                if let (Some(counted), Some(diff)) = (d.counted, d.difference) {
                    measures.push(("drawer_counted", one(counted)));
                    measures.push(("drawer_difference", one(diff)));
                }
                for (measure, t) in measures {
                    c.serialize(ReportCsvRow {
                        report: kind.into(),
                        close_no: r.close_no,
                        period_from: r.period_from.clone(),
                        period_to: r.period_to.clone(),
                        currency: cur.currency.clone(),
                        measure: measure.into(),
                        count: t.count,
                        amount: decimal(t.amount, Some(&cur.currency)),
                        chain_head: r.chain_head.clone(),
                    })?;
                }
            }
            c.flush()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::tests::db_with_history;
    use crate::store::{LogFilter, LogKind};

    #[test]
    fn the_log_csv_round_trips_through_a_csv_parser() {
        let (_dir, db, _h) = db_with_history(3, 150);
        let mut entries = Vec::new();
        let f = LogFilter::default();
        db.log_each(&f, |e| {
            entries.push(e.clone());
            Ok(())
        })
        .expect("log reads");
        let mut w = LogWriter::new(ExportFormat::Csv, Vec::new()).expect("writer");
        for e in &entries {
            w.write(e).expect("row written");
        }
        let bytes = w.finish().expect("finished");
        let mut rd = csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(
            rd.headers().expect("header row").iter().collect::<Vec<_>>(),
            LOG_CSV_HEADER
        );
        let back: Vec<LogCsvRow> = rd
            .deserialize()
            .collect::<Result<_, _>>()
            .expect("every row parses");
        let want: Vec<LogCsvRow> = entries.iter().map(LogCsvRow::from).collect();
        assert_eq!(back, want);
        // Amounts are decimals in each currency's exponent: JPY has none, SEK two.
        let jpy = back
            .iter()
            .find(|r| r.currency.as_deref() == Some("JPY") && r.amount.is_some());
        assert!(jpy.is_some_and(|r| !r.amount.as_deref().unwrap_or(".").contains('.')));
        let sek = back
            .iter()
            .find(|r| r.currency.as_deref() == Some("SEK") && r.amount.is_some());
        assert!(sek.is_some_and(|r| {
            r.amount
                .as_deref()
                .unwrap_or("")
                .split('.')
                .nth(1)
                .map(str::len)
                == Some(2)
        }));
        assert!(
            back.iter()
                .all(|r| chrono::DateTime::parse_from_rfc3339(&r.at).is_ok())
        );
    }

    #[test]
    fn an_empty_csv_still_has_its_header_and_json_is_an_array() {
        let w = LogWriter::new(ExportFormat::Csv, Vec::new()).expect("writer");
        let text = String::from_utf8(w.finish().expect("finished")).expect("utf-8");
        assert_eq!(text.trim_end(), LOG_CSV_HEADER.join(","));
        let (_dir, db, _h) = db_with_history(5, 10);
        let page = db
            .log_page(
                &LogFilter {
                    kinds: vec![LogKind::Sale],
                    ..Default::default()
                },
                None,
                5,
            )
            .expect("page");
        let mut w = LogWriter::new(ExportFormat::Json, Vec::new()).expect("writer");
        for e in &page.entries {
            w.write(e).expect("written");
        }
        let v: serde_json::Value =
            serde_json::from_slice(&w.finish().expect("finished")).expect("valid JSON");
        assert_eq!(v.as_array().map(Vec::len), Some(5));
        assert_eq!(v[0]["log_kind"], "sale");
    }
}
