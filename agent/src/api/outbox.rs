//! Local API for post-purchase operations and Klarna's health: queue refunds, captures and voids
//! (they go through the durable outbox), list and resolve queued operations, and the SLO table.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::{ApiError, ApiJson, ApiState, ErrorBody};
use crate::health::{CategoryFigures, SloQuery};
use crate::klarna::wire::LineItem;
use crate::money::{Currency, KLARNA_MAX_AMOUNT};
use crate::outbox::{NewOperation, Operation, OutboxRow};
use crate::store::outbox::ListQuery;
use crate::terminal::{KlarnaStatus, TerminalError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationLine {
    pub name: String,
    pub reference: Option<String>,
    pub quantity: i64,
    pub unit_price: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransactionOperation {
    pub currency: String,
    /// Lines being refunded or captured; the amount is their sum.
    pub line_items: Vec<OperationLine>,
    /// Your reference for this refund or capture (shown to Klarna).
    pub reference: String,
    pub operator: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    pub operator: Option<String>,
    #[serde(default)]
    pub note: String,
}

#[derive(OpenApi)]
#[openapi(
    paths(refund, capture, void, list, show, retry, dismiss, slo, klarna_status),
    components(schemas(
        NewTransactionOperation,
        OperationLine,
        Resolve,
        OutboxRow,
        CategoryFigures,
        KlarnaStatus
    ))
)]
pub struct OutboxDoc;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/transactions/{id}/refunds", post(refund))
        .route("/v1/transactions/{id}/captures", post(capture))
        .route("/v1/transactions/{id}/void", post(void))
        .route("/v1/outbox", get(list))
        .route("/v1/outbox/{id}", get(show))
        .route("/v1/outbox/{id}/retry", post(retry))
        .route("/v1/outbox/{id}/dismiss", post(dismiss))
        .route("/v1/slo", get(slo))
        .route("/v1/klarna/status", get(klarna_status))
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).field(field)
}

async fn queue(
    s: &ApiState,
    operation: Operation,
    transaction_id: String,
    b: NewTransactionOperation,
) -> Result<(StatusCode, Json<OutboxRow>), ApiError> {
    let currency: Currency = b
        .currency
        .parse()
        .map_err(|e: crate::money::MoneyError| bad("currency", e.to_string()))?;
    if !transaction_id.starts_with("krn:payment:") || transaction_id.len() > 200 {
        return Err(bad("id", "not a Klarna payment transaction id"));
    }
    if b.reference.trim().is_empty() || b.reference.len() > 255 {
        return Err(bad("reference", "reference must be 1 to 255 characters"));
    }
    let mut lines = vec![];
    let mut amount: i64 = 0;
    for (i, l) in b.line_items.into_iter().enumerate() {
        if l.quantity < 1 || l.unit_price < 0 || l.name.trim().is_empty() {
            return Err(bad(
                &format!("line_items[{i}]"),
                "each line needs a name, quantity ≥ 1 and unit_price ≥ 0",
            ));
        }
        let total = l
            .unit_price
            .checked_mul(l.quantity)
            .filter(|t| *t <= KLARNA_MAX_AMOUNT)
            .ok_or_else(|| bad(&format!("line_items[{i}]"), "line total too large"))?;
        amount = amount
            .checked_add(total)
            .filter(|a| *a <= KLARNA_MAX_AMOUNT)
            .ok_or_else(|| bad("line_items", "total too large"))?;
        lines.push(LineItem {
            name: l.name,
            quantity: l.quantity,
            unit_price: l.unit_price,
            total_amount: total,
            reference: l.reference,
        });
    }
    if operation != Operation::Void && amount < 1 {
        return Err(bad(
            "line_items",
            "the lines must add up to at least 1 minor unit",
        ));
    }
    let op = NewOperation {
        operation,
        transaction_id,
        currency: currency.code().to_string(),
        amount,
        line_items: lines,
        reference: b.reference,
        operator: s.terminal.operator(b.operator)?,
        sale_id: None,
    };
    let row = s.terminal.queue_operation(op, None).await?;
    Ok((StatusCode::ACCEPTED, Json(row)))
}

/// Queue a refund on a Klarna transaction (sent by the outbox, exactly once).
#[utoipa::path(post, path = "/v1/transactions/{id}/refunds", params(("id" = String, Path)),
    request_body = NewTransactionOperation,
    responses((status = 202, body = OutboxRow), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn refund(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NewTransactionOperation>,
) -> Result<impl IntoResponse, ApiError> {
    queue(&s, Operation::Refund, id, b).await
}

/// Queue a capture on a Klarna transaction.
#[utoipa::path(post, path = "/v1/transactions/{id}/captures", params(("id" = String, Path)),
    request_body = NewTransactionOperation, responses((status = 202, body = OutboxRow)))]
async fn capture(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NewTransactionOperation>,
) -> Result<impl IntoResponse, ApiError> {
    queue(&s, Operation::Capture, id, b).await
}

/// Queue a void (release of the remaining authorization) on a Klarna transaction.
#[utoipa::path(post, path = "/v1/transactions/{id}/void", params(("id" = String, Path)),
    request_body = NewTransactionOperation, responses((status = 202, body = OutboxRow)))]
async fn void(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NewTransactionOperation>,
) -> Result<impl IntoResponse, ApiError> {
    queue(&s, Operation::Void, id, b).await
}

/// Operations in the outbox, oldest first; `after` (the last id of the previous page) pages on.
#[utoipa::path(get, path = "/v1/outbox", params(ListQuery),
    responses((status = 200, body = [OutboxRow])))]
async fn list(
    State(s): State<ApiState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<OutboxRow>>, ApiError> {
    let (state, after, limit) = (q.state()?, q.after(), q.limit());
    let rows = s
        .terminal
        .store()
        .call(move |db| db.outbox_list(state, after, limit))
        .await
        .map_err(TerminalError::from)?;
    Ok(Json(rows))
}

/// One operation with its attempts and last error.
#[utoipa::path(get, path = "/v1/outbox/{id}", params(("id" = i64, Path)), responses((status = 200, body = OutboxRow), (status = 404, body = ErrorBody)))]
async fn show(State(s): State<ApiState>, Path(id): Path<i64>) -> Result<Json<OutboxRow>, ApiError> {
    Ok(Json(
        s.terminal
            .store()
            .call(move |db| db.outbox_get(id))
            .await
            .map_err(TerminalError::from)?,
    ))
}

/// A manager sends an operation that needed attention again (journaled).
#[utoipa::path(post, path = "/v1/outbox/{id}/retry", params(("id" = i64, Path)), request_body = Resolve,
    responses((status = 200, body = OutboxRow), (status = 409, body = ErrorBody)))]
async fn retry(
    State(s): State<ApiState>,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<Resolve>,
) -> Result<Json<OutboxRow>, ApiError> {
    let op = s.terminal.operator_or(b.operator, "manager")?;
    Ok(Json(
        s.terminal.resolve_operation(id, true, op, b.note).await?,
    ))
}

/// A manager dismisses an operation that needed attention (journaled).
#[utoipa::path(post, path = "/v1/outbox/{id}/dismiss", params(("id" = i64, Path)), request_body = Resolve,
    responses((status = 200, body = OutboxRow), (status = 409, body = ErrorBody)))]
async fn dismiss(
    State(s): State<ApiState>,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<Resolve>,
) -> Result<Json<OutboxRow>, ApiError> {
    let op = s.terminal.operator_or(b.operator, "manager")?;
    Ok(Json(
        s.terminal.resolve_operation(id, false, op, b.note).await?,
    ))
}

/// Klarna's figures per SLO category over a window (5m, 1h, 24h, 30d).
#[utoipa::path(get, path = "/v1/slo", params(SloQuery), responses((status = 200, body = [CategoryFigures])))]
async fn slo(
    State(s): State<ApiState>,
    Query(q): Query<SloQuery>,
) -> Result<Json<Vec<CategoryFigures>>, ApiError> {
    let w = q.window()?;
    Ok(Json(s.terminal.health().table(w, chrono::Utc::now())))
}

/// Klarna online / degraded / offline, the breaker, maintenance and the outbox.
#[utoipa::path(get, path = "/v1/klarna/status", responses((status = 200, body = KlarnaStatus)))]
async fn klarna_status(State(s): State<ApiState>) -> Result<Json<KlarnaStatus>, ApiError> {
    Ok(Json(s.terminal.klarna_status().await?))
}
