//! Local API for tenders other than Klarna: pay a sale (or part of it) in cash or on the
//! store's card terminal, and record cash put into or taken out of the drawer.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{ApiError, ApiJson, ApiState, ErrorBody};
use crate::terminal::{CashMovementKind, Tendered};
use kassa_core::sale::TenderRow;
use kassa_core::tender::{Settlement, TenderInput, TenderKind, TenderState};

#[derive(OpenApi)]
#[openapi(
    paths(take_tender, cash_movement),
    components(schemas(
        NewTender,
        TenderTaken,
        Tendered,
        TenderRow,
        TenderKind,
        TenderState,
        Settlement,
        NewCashMovement,
        CashMovementKind,
        CashMoved
    ))
)]
pub struct TendersDoc;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/sales/{id}/tenders", post(take_tender))
        .route("/v1/drawer/movements", post(cash_movement))
}

/// A tender: `cash` with `given`, or `card_terminal` with `amount` and `reference`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTender {
    pub kind: TenderKind,
    /// Cash handed over, in minor units: at least what is left pays it all (the rest is change);
    /// less pays that part.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub given: Option<i64>,
    /// What the card terminal charged, in minor units (at most what is left to pay).
    #[schema(minimum = 1, maximum = 2147483647)]
    pub amount: Option<i64>,
    /// The card terminal's reference for the charge: 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub reference: Option<String>,
    #[schema(min_length = 1, max_length = 64)]
    pub operator: Option<String>,
    /// A UUID the client makes for this tender: sent again (after a lost answer), the tender
    /// already taken is answered, never taken twice.
    #[schema(min_length = 36, max_length = 36)]
    pub id: Option<String>,
}

/// What a tender did, and whether the cash drawer opened for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenderTaken {
    #[serde(flatten)]
    pub tendered: Tendered,
    /// The drawer on the receipt printer was kicked open (cash only; false without a printer).
    pub drawer_opened: bool,
}

/// Pay an open sale, or part of it, in cash or on the store's card terminal. When nothing is
/// left the sale is paid and its receipt issued; otherwise the rest is due (Klarna's request is
/// then for the rest). Refused while a Klarna payment is in flight.
#[utoipa::path(post, path = "/v1/sales/{id}/tenders", params(("id" = String, Path)),
    request_body = NewTender,
    responses((status = 201, body = TenderTaken), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn take_tender(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NewTender>,
) -> Result<impl IntoResponse, ApiError> {
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", m);
    let input = match (b.kind, b.given, b.amount, b.reference) {
        (TenderKind::Cash, Some(given), None, None) => TenderInput::Cash { given },
        (TenderKind::Cash, ..) => return Err(bad("cash takes `given` alone").field("given")),
        (TenderKind::CardTerminal, None, Some(amount), Some(reference)) => {
            TenderInput::CardTerminal { amount, reference }
        }
        (TenderKind::CardTerminal, ..) => {
            return Err(
                bad("a card terminal tender takes `amount` and `reference`").field("amount")
            );
        }
    };
    let cash = matches!(input, TenderInput::Cash { .. });
    let tendered = s.terminal.take_tender(&id, input, b.operator, b.id).await?;
    let drawer_opened = match (&s.devices, cash) {
        (Some(d), true) => d.open_drawer().await,
        _ => false,
    };
    Ok((
        StatusCode::CREATED,
        Json(TenderTaken {
            tendered,
            drawer_opened,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCashMovement {
    pub kind: CashMovementKind,
    /// Minor units, positive: the direction comes from `kind`.
    #[schema(minimum = 1, maximum = 2147483647)]
    pub amount: i64,
    /// ISO 4217; the till's currency when absent.
    #[schema(min_length = 3, max_length = 3)]
    pub currency: Option<String>,
    /// Why (required for paid in and paid out): at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: String,
    #[schema(min_length = 1, max_length = 64)]
    pub operator: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CashMoved {
    /// The journal row that records it.
    pub seq: i64,
    pub drawer_opened: bool,
}

/// Record cash put into the drawer (the day's float, paid in) or taken out (paid out); the X-
/// and Z-reports count it in the cash the drawer should hold.
#[utoipa::path(post, path = "/v1/drawer/movements", request_body = NewCashMovement,
    responses((status = 201, body = CashMoved), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn cash_movement(
    State(s): State<ApiState>,
    ApiJson(b): ApiJson<NewCashMovement>,
) -> Result<impl IntoResponse, ApiError> {
    let currency = super::parse_currency(b.currency)?.unwrap_or(s.terminal.config().currency);
    let seq = s
        .terminal
        .cash_movement(b.kind, b.amount, currency, b.reason, b.operator)
        .await?;
    let drawer_opened = match &s.devices {
        Some(d) => d.open_drawer().await,
        None => false,
    };
    Ok((StatusCode::CREATED, Json(CashMoved { seq, drawer_opened })))
}
