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
use crate::store::reports::{ReportFormat, ReportQuery};
use crate::store::{LogEntry, LogError, LogKind, LogPage, LogQuery, MAX_PAGE, StoreError};

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
    let (before, limit) = (q.before, q.page_size());
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

fn render(r: &DayReport, format: ReportFormat) -> Result<Response, ApiError> {
    match format {
        ReportFormat::Json => Ok(Json(r).into_response()),
        ReportFormat::Text => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            r.to_text(),
        )
            .into_response()),
        ReportFormat::Csv => {
            let mut out = Vec::new();
            write_report(ExportFormat::Csv, r, &mut out).map_err(internal)?;
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
        }
    }
}

/// The X-report: totals since the last day close. Closes nothing.
#[utoipa::path(get, path = "/v1/reports/x", params(ReportQuery),
    responses((status = 200, body = DayReport)))]
async fn x_report(
    State(s): State<ApiState>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let r = current_x_report(&s).await?;
    render(&r, q.format()?)
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
    let format = q.format()?;
    let pin = headers
        .get(PIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
    // Signed in, the day is closed by who is signed in (and no one else).
    let operator = s.terminal.operator_or(q.operator.clone(), "manager")?;
    manager::authorize(s.terminal.store(), pin, "day_close", &operator).await?;
    let op = operator.clone();
    let counted: Vec<(String, i64)> = q
        .counted_cash
        .map(|n| (s.terminal.config().currency.code().to_string(), n))
        .into_iter()
        .collect();
    let r = s
        .terminal
        .store()
        .call(move |db| db.close_day_counted(&op, &counted))
        .await
        .map_err(store_err)?;
    let mut resp = render(&r, format)?;
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

/// Who asks for a report to be printed. Unlike the other query types it stays with its handlers:
/// it feeds no store query, only hands the operator to the devices service (which fills in the
/// default).
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
