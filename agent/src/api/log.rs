//! The manager's endpoints: the transaction log (paged, filtered), its export, the X-report and
//! the day close (Z-report), which needs the manager PIN in the `Kassa-Manager-Pin` header.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::{ApiError, ApiState, ErrorBody};
use crate::export::{ExportFormat, LogWriter, write_report};
use crate::manager::{self, ManagerError};
use crate::reports::DayReport;
use crate::store::{LogEntry, LogError, LogFilter, LogKind, LogPage, MAX_PAGE, StoreError};

/// The header that carries the manager PIN.
pub const PIN_HEADER: &str = "kassa-manager-pin";

#[derive(OpenApi)]
#[openapi(
    paths(log, export, x_report, z_report, print_x_report, print_z_report),
    components(schemas(LogPage, LogEntry, LogKind, DayReport))
)]
pub struct LogDoc;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/log", get(log))
        .route("/v1/log/export", get(export))
        .route("/v1/reports/x", get(x_report))
        .route("/v1/reports/z", post(z_report))
        .route("/v1/reports/x/print", post(print_x_report))
        .route("/v1/reports/z/{close_no}/print", post(print_z_report))
}

/// The log's filters as query parameters; all optional, all must match.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// A date (2025-03-01, from its start, UTC) or an RFC 3339 time.
    pub from: Option<String>,
    /// A date (through its end) or an RFC 3339 time (exclusive).
    pub to: Option<String>,
    /// Comma-separated: sale, payment, return, refund, outbox, manager, system.
    pub kind: Option<String>,
    /// Current state of the payment (or sale), or an outbox row's state.
    pub state: Option<String>,
    /// Minor units, inclusive.
    pub min_amount: Option<i64>,
    pub max_amount: Option<i64>,
    pub currency: Option<String>,
    pub operator: Option<String>,
    /// A sale id, payment id, Klarna request or transaction id, or correlation id.
    pub reference: Option<String>,
    /// Case-insensitive substring of an id, the operator or the detail.
    pub text: Option<String>,
    /// Page cursor: `next_before` from the previous page.
    pub before: Option<i64>,
    /// Rows per page (default 50, at most 5000).
    pub limit: Option<usize>,
    /// For the export: csv (default) or json.
    pub format: Option<String>,
}

impl LogQuery {
    /// Builds the store's filter; shared with the CLI's flags.
    pub fn filter(&self) -> Result<LogFilter, LogError> {
        let mut f = LogFilter {
            kinds: match &self.kind {
                Some(k) => LogKind::parse_list(k)?,
                None => Vec::new(),
            },
            state: self.state.clone(),
            min_amount: self.min_amount,
            max_amount: self.max_amount,
            currency: self.currency.clone(),
            operator: self.operator.clone(),
            reference: self.reference.clone(),
            text: self.text.clone().filter(|t| !t.is_empty()),
            ..Default::default()
        };
        if let Some(s) = &self.from {
            f = f.from(s)?;
        }
        if let Some(s) = &self.to {
            f = f.to(s)?;
        }
        f.validate()?;
        Ok(f)
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Invalid { field, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).field(field)
            }
            other => internal(other),
        }
    }
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        let (status, code) = match &e {
            ManagerError::WrongPin | ManagerError::PinMissing | ManagerError::BadPin => {
                (StatusCode::FORBIDDEN, "wrong_manager_pin")
            }
            ManagerError::NoPin => (StatusCode::CONFLICT, "no_manager_pin"),
            ManagerError::LockedOut { retry_after_secs } => {
                let mut r = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "manager_pin_locked",
                    e.to_string(),
                );
                r.retry_after = Some(*retry_after_secs);
                return r;
            }
            _ => return internal(e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("internal error: {e}");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

fn store_err(e: StoreError) -> ApiError {
    // The same mapping as everywhere else (a caller's mistake is 4xx, never 500).
    ApiError::from(crate::terminal::TerminalError::from(e))
}

/// Indexes the journal rows the idle indexer has not reached yet, so a filter can use the
/// indexes (the log is correct without them, only slower, so a failure, e.g. another process
/// holding the write lock, does not fail the read).
fn catch_up(db: &mut crate::store::Db) -> Result<(), crate::store::LogError> {
    if let Err(e) = db.index_journal(None) {
        tracing::warn!(error = %e, "log read with the journal's tail unindexed");
    }
    Ok(())
}

/// One page of the transaction log, newest first.
#[utoipa::path(get, path = "/v1/log", params(LogQuery),
    responses((status = 200, body = LogPage), (status = 400, body = ErrorBody)))]
async fn log(
    State(s): State<ApiState>,
    Query(q): Query<LogQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let f = q.filter()?;
    let (before, limit) = (q.before, q.limit.unwrap_or(50).clamp(1, MAX_PAGE));
    let page = s
        .terminal
        .store()
        .call(move |db| Ok(catch_up(db).and_then(|()| db.log_page(&f, before, limit))))
        .await
        .map_err(store_err)??;
    Ok(Json(page))
}

/// Every row matching the filters as a file: CSV (default) or JSON.
#[utoipa::path(get, path = "/v1/log/export", params(LogQuery),
    responses((status = 200, description = "text/csv or application/json"), (status = 400, body = ErrorBody)))]
async fn export(
    State(s): State<ApiState>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let f = q.filter()?;
    let format: ExportFormat =
        q.format
            .as_deref()
            .unwrap_or("csv")
            .parse()
            .map_err(|e: crate::export::ExportError| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
                    .field("format")
            })?;
    // Page by page, so the database thread is never held for the whole export.
    let mut w = LogWriter::new(format, Vec::new()).map_err(internal)?;
    let mut before = None;
    loop {
        let f = f.clone();
        let page = s
            .terminal
            .store()
            .call(move |db| Ok(catch_up(db).and_then(|()| db.log_page(&f, before, MAX_PAGE))))
            .await
            .map_err(store_err)??;
        for e in &page.entries {
            w.write(e).map_err(internal)?;
        }
        match page.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let body = w.finish().map_err(internal)?;
    let name = match format {
        ExportFormat::Csv => "kassa-log.csv",
        ExportFormat::Json => "kassa-log.json",
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// json (default), text (for the receipt printer) or csv.
    pub format: Option<String>,
    /// Who closes the day (journaled); "manager" when absent.
    pub operator: Option<String>,
}

/// A report format the caller may ask for; checked before anything is done (a day close with a
/// format it cannot render must not close the day).
fn check_format(format: Option<&str>) -> Result<(), ApiError> {
    match format.unwrap_or("json") {
        "json" | "text" | "csv" => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "format must be json, text or csv",
        )
        .field("format")),
    }
}

fn render(r: &DayReport, format: Option<&str>) -> Result<Response, ApiError> {
    check_format(format)?;
    match format.unwrap_or("json") {
        "json" => Ok(Json(r).into_response()),
        "text" => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            r.to_text(),
        )
            .into_response()),
        "csv" => {
            let mut out = Vec::new();
            write_report(ExportFormat::Csv, r, &mut out).map_err(internal)?;
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
        }
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "format must be json, text or csv",
        )
        .field("format")),
    }
}

/// The X-report: totals since the last day close. Closes nothing.
#[utoipa::path(get, path = "/v1/reports/x", params(ReportQuery),
    responses((status = 200, body = DayReport)))]
async fn x_report(
    State(s): State<ApiState>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    render(&current_x_report(&s).await?, q.format.as_deref())
}

/// Close the day (Z-report). Needs the manager PIN in the `Kassa-Manager-Pin` header; a wrong
/// PIN is refused (403) and journaled.
#[utoipa::path(post, path = "/v1/reports/z", params(ReportQuery,
        ("Kassa-Manager-Pin" = String, Header, description = "The manager PIN")),
    responses((status = 201, body = DayReport), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn z_report(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    check_format(q.format.as_deref())?;
    let pin = headers
        .get(PIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
    let operator = q.operator.clone().unwrap_or_else(|| "manager".into());
    crate::store::validate_operator(&operator).map_err(store_err)?;
    manager::authorize(s.terminal.store(), pin, "day_close", &operator).await?;
    let op = operator.clone();
    let r = s
        .terminal
        .store()
        .call(move |db| db.close_day(&op))
        .await
        .map_err(store_err)?;
    let mut resp = render(&r, q.format.as_deref())?;
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PrintQuery {
    /// Who asked for the print (journaled); the configured default operator when absent.
    pub operator: Option<String>,
}

/// Print the X-report (totals since the last close) on the receipt printer. The print, or the
/// failure to print, is journaled.
#[utoipa::path(post, path = "/v1/reports/x/print", params(PrintQuery),
    responses((status = 200, body = DayReport), (status = 409, body = ErrorBody, description = "no receipt printer"),
        (status = 503, body = ErrorBody, description = "the printer did not print (paper out, offline)")))]
async fn print_x_report(
    State(s): State<ApiState>,
    Query(q): Query<PrintQuery>,
) -> Result<Json<DayReport>, ApiError> {
    let r = current_x_report(&s).await?;
    super::devices::service(&s)?
        .print_report(&r, q.operator)
        .await?;
    Ok(Json(r))
}

/// Print a stored Z-report (day close `close_no`) on the receipt printer, the first time or
/// again. The print, or the failure to print, is journaled.
#[utoipa::path(post, path = "/v1/reports/z/{close_no}/print", params(("close_no" = i64, Path), PrintQuery),
    responses((status = 200, body = DayReport), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn print_z_report(
    State(s): State<ApiState>,
    axum::extract::Path(close_no): axum::extract::Path<i64>,
    Query(q): Query<PrintQuery>,
) -> Result<Json<DayReport>, ApiError> {
    let r = s
        .terminal
        .store()
        .call(move |db| db.day_close_report(close_no))
        .await
        .map_err(store_err)?;
    super::devices::service(&s)?
        .print_report(&r, q.operator)
        .await?;
    Ok(Json(r))
}

/// Totals since the last day close, as they stand now.
async fn current_x_report(s: &ApiState) -> Result<DayReport, ApiError> {
    s.terminal
        .store()
        .call(|db| db.x_report())
        .await
        .map_err(store_err)
}
