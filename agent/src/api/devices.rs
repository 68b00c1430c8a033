//! Local API for the till's peripherals: what each configured device is doing (for `kassa devices`
//! and the support desk), and printing a paid sale's receipt again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::{ApiError, ApiJson, ApiState, ErrorBody};
use crate::devices::{DeviceStatus, Devices, DevicesError, DevicesReport, ReceiptPrinted};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrintReceipt {
    /// Who asked for the reprint (recorded in the journal).
    pub operator: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    paths(devices, print_receipt),
    components(schemas(DevicesReport, DeviceStatus, ReceiptPrinted, PrintReceipt))
)]
pub struct DevicesDoc;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/devices", get(devices))
        .route("/v1/sales/{id}/receipt", post(print_receipt))
}

impl From<DevicesError> for ApiError {
    fn from(e: DevicesError) -> Self {
        match e {
            DevicesError::Terminal(e) => e.into(),
            DevicesError::NoPrinter => {
                ApiError::new(StatusCode::CONFLICT, "no_printer", e.to_string())
            }
            DevicesError::NotPrinted(_) | DevicesError::ReportNotPrinted(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_printed",
                e.to_string(),
            ),
            DevicesError::Catalogue(_) | DevicesError::Device { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

pub(super) fn service(s: &ApiState) -> Result<&Devices, ApiError> {
    s.devices.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "devices_not_running",
            "the peripherals service is not running in this agent",
        )
    })
}

/// Every configured peripheral and its state (`connected`, `disconnected`, `paper_out`,
/// `cover_open`, `offline`), the customer display's lines, and receipts waiting for a reprint.
#[utoipa::path(get, path = "/v1/devices",
    responses((status = 200, body = DevicesReport), (status = 503, body = ErrorBody)))]
async fn devices(State(s): State<ApiState>) -> Result<Json<DevicesReport>, ApiError> {
    Ok(Json(service(&s)?.report().await?))
}

/// Print a paid sale's receipt (again): after the printer ran out of paper, or on request.
/// The journal records whether it printed.
#[utoipa::path(post, path = "/v1/sales/{id}/receipt", params(("id" = String, Path)),
    request_body = PrintReceipt,
    responses((status = 200, body = ReceiptPrinted), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn print_receipt(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PrintReceipt>,
) -> Result<Json<ReceiptPrinted>, ApiError> {
    Ok(Json(service(&s)?.reprint_receipt(&id, b.operator).await?))
}
