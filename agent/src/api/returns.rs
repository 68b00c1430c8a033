//! Local API for in-store returns: look a purchase up by its Klarna transaction id, record a
//! return (its refund goes through the outbox), and read a recorded return with its slip.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;

use super::{ApiError, ApiJson, ApiState, ErrorBody};
use crate::returns::{
    ManagerApproval, Purchase, PurchaseLine, ReturnLine, ReturnRecord, ReturnRequest,
    SaleReturnLine, SaleReturnRecord, SaleReturnRequest,
};

#[derive(OpenApi)]
#[openapi(
    paths(lookup, create, show, return_sale, show_sale_return),
    components(schemas(
        SaleReturnRequest,
        SaleReturnLine,
        SaleReturnRecord,
        Purchase,
        PurchaseLine,
        ReturnRequest,
        ReturnLine,
        ManagerApproval,
        ReturnRecord
    ))
)]
pub struct ReturnsDoc;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/returns/purchases/{transaction_id}", get(lookup))
        .route("/v1/returns", post(create))
        .route("/v1/returns/{id}", get(show))
        .route("/v1/sales/{id}/returns", post(return_sale))
        .route("/v1/sale-returns/{id}", get(show_sale_return))
}

/// Return lines of a paid sale made at this till (found by its receipt). The money goes back
/// the way it came: shared over the sale's tenders in proportion to what each still holds; cash
/// is paid out, the card terminal's part is refunded there, Klarna's part is queued in the
/// outbox and sent exactly once.
#[utoipa::path(post, path = "/v1/sales/{id}/returns", params(("id" = String, Path)),
    request_body = SaleReturnRequest,
    responses((status = 201, body = SaleReturnRecord), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn return_sale(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SaleReturnRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let r = s.terminal.return_sale(&id, b).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// A recorded return of a till sale, with each tender's share.
#[utoipa::path(get, path = "/v1/sale-returns/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SaleReturnRecord), (status = 404, body = ErrorBody)))]
async fn show_sale_return(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<SaleReturnRecord>, ApiError> {
    Ok(Json(s.terminal.sale_return(&id).await?))
}

/// The purchase behind a Klarna transaction id (scanned from a receipt or order confirmation),
/// with what can still be returned.
#[utoipa::path(get, path = "/v1/returns/purchases/{transaction_id}", params(("transaction_id" = String, Path)),
    responses((status = 200, body = Purchase), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn lookup(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Purchase>, ApiError> {
    Ok(Json(s.terminal.find_purchase(&id).await?))
}

/// Record a return; the refund is queued in the outbox and sent exactly once.
#[utoipa::path(post, path = "/v1/returns", request_body = ReturnRequest,
    responses((status = 201, body = ReturnRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn create(
    State(s): State<ApiState>,
    ApiJson(b): ApiJson<ReturnRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let r = s.terminal.create_return(b).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// A recorded return, with where its refund stands and the customer's slip.
#[utoipa::path(get, path = "/v1/returns/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ReturnRecord), (status = 404, body = ErrorBody)))]
async fn show(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ReturnRecord>, ApiError> {
    Ok(Json(s.terminal.return_record(&id).await?))
}
