//! The local control API (HTTP on loopback, bearer token): how the UI and an existing POS system
//! drive the till, as Adyen's and Stripe's terminal APIs are driven. Serves its own OpenAPI document.

mod body;
pub mod devices;
mod error;
pub mod log;
pub mod outbox;
pub mod returns;
mod sales;
pub mod serve;
pub mod staff;
pub mod tenders;
pub mod webhook;

pub use body::{ApiJson, LimitedBody, MAX_BODY_BYTES};
pub use error::{ApiError, ErrorBody};
use error::{ErrorResponses, json_errors};
use sales::*;
pub use sales::{
    AddLines, Cancel, Discount, EditLine, NewLine, NewSale, ResolveDoubt, StartPayment,
};

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::{OpenApi, ToSchema};

use crate::config::Secret;
use crate::metrics::Metrics;
use crate::money::Currency;
use crate::store::{
    AttemptRow, InvalidParam, JournalQuery, JournalRow, LineInput, SaleView, VerifyReport,
};
use crate::terminal::{DoubtResolution, PaymentOptions, Terminal, TerminalError};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub terminal: Terminal,
    pub metrics: Metrics,
    token: Arc<Secret>,
    /// The peripherals service; absent in agents started without one.
    pub devices: Option<crate::devices::Devices>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub payments_in_flight: usize,
    /// Klarna online / degraded / offline, maintenance, and what waits in the outbox.
    pub klarna: Option<crate::terminal::KlarnaStatus>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kassa local control API", description = "Drive a kassa store terminal: sales, Klarna payments, events."),
    paths(create_sale, get_sale, add_lines, edit_line, remove_line, discount_sale, start_payment, cancel_payment, abandon_sale, resolve_doubt, events, journal, verify, health, metrics_text, openapi, klarna_webhook),
    components(schemas(NewSale, NewLine, AddLines, EditLine, Discount, crate::manager::ManagerApproval, StartPayment, ResolveDoubt, Cancel, SaleView, AttemptRow, JournalRow, VerifyReport, ApiError, ErrorBody, Health)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

pub fn router(terminal: Terminal, metrics: Metrics, token: Secret) -> Router {
    router_with_devices(terminal, metrics, token, None)
}

/// As `router`, with `/v1/devices` and receipt printing answered by `devices`.
pub fn router_with_devices(
    terminal: Terminal,
    metrics: Metrics,
    token: Secret,
    devices: Option<crate::devices::Devices>,
) -> Router {
    let state = ApiState {
        terminal,
        metrics,
        token: Arc::new(token),
        devices,
    };
    let authed = Router::new()
        .route("/v1/sales", post(create_sale))
        .route("/v1/sales/{id}", get(get_sale))
        .route("/v1/sales/{id}/lines", post(add_lines))
        .route("/v1/sales/{id}/lines/{line_no}", patch(edit_line))
        .route("/v1/sales/{id}/lines/{line_no}/remove", post(remove_line))
        .route("/v1/sales/{id}/discount", post(discount_sale))
        .route("/v1/sales/{id}/payments", post(start_payment))
        .route("/v1/sales/{id}/payments/cancel", post(cancel_payment))
        .route("/v1/sales/{id}/cancel", post(abandon_sale))
        .route("/v1/payments/{id}/resolve", post(resolve_doubt))
        .route("/v1/events", get(events))
        .route("/v1/journal", get(journal))
        .route("/v1/journal/verify", get(verify))
        .merge(outbox::routes())
        .merge(returns::routes())
        .merge(log::routes())
        .merge(devices::routes())
        .merge(tenders::routes())
        .merge(staff::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            staff::with_session,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    Router::new()
        .merge(authed)
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi))
        .route("/v1/klarna/webhooks", post(klarna_webhook))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

async fn require_token(
    State(s): State<ApiState>,
    req: Request,
    next: axum::middleware::Next,
) -> Result<Response, ApiError> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = given.as_bytes().ct_eq(s.token.expose().as_bytes()).into();
    if !ok || given.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        ));
    }
    Ok(next.run(req).await)
}

/// Server-sent events: each event is a whole sale (`event: sale`) after any change.
#[utoipa::path(get, path = "/v1/events", responses((status = 200, description = "text/event-stream of sales")))]
async fn events(State(s): State<ApiState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(s.terminal.subscribe()).filter_map(|r| {
        // A lagging subscriber skips to the newest sales rather than failing.
        let ev = r.ok()?;
        Event::default()
            .event("sale")
            .json_data(&ev.sale)
            .ok()
            .map(Ok)
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Journal rows after `after` (oldest first), at most `limit` (default 100, max 1000).
#[utoipa::path(get, path = "/v1/journal", params(JournalQuery),
    responses((status = 200, body = [JournalRow])))]
async fn journal(
    State(s): State<ApiState>,
    q: Query<JournalQuery>,
) -> Result<Json<Vec<JournalRow>>, ApiError> {
    let (after, limit) = (q.after(), q.limit());
    let rows = s
        .terminal
        .store()
        .call(move |db| db.journal_rows(after, limit))
        .await
        .map_err(TerminalError::from)?;
    Ok(Json(rows))
}

/// Walks the journal's whole hash chain; names the first broken row, if any.
#[utoipa::path(get, path = "/v1/journal/verify", responses((status = 200, body = VerifyReport)))]
async fn verify(State(s): State<ApiState>) -> Result<Json<VerifyReport>, ApiError> {
    let r = s
        .terminal
        .store()
        .call(|db| db.verify_journal())
        .await
        .map_err(TerminalError::from)?;
    Ok(Json(r))
}

/// Liveness of the agent.
#[utoipa::path(get, path = "/health", security(()), responses((status = 200, body = Health)))]
async fn health(State(s): State<ApiState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        payments_in_flight: s.terminal.payments_in_flight(),
        klarna: s.terminal.klarna_status().await.ok(),
    })
}

/// Prometheus metrics (OpenMetrics text): Klarna calls per operation and SLO category, the
/// outbox, Klarna's health.
#[utoipa::path(get, path = "/metrics", security(()),
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
async fn metrics_text(State(s): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode_with_health(s.terminal.health()),
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", security(()),
    responses((status = 200, description = "the OpenAPI 3 document", content_type = "application/json")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// The whole OpenAPI document: every route, and on every operation the errors any of them can
/// answer (see `ErrorResponses`).
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa::Modify;
    let mut doc = ApiDoc::openapi();
    doc.merge(outbox::OutboxDoc::openapi());
    doc.merge(returns::ReturnsDoc::openapi());
    doc.merge(log::LogDoc::openapi());
    doc.merge(devices::DevicesDoc::openapi());
    doc.merge(tenders::TendersDoc::openapi());
    doc.merge(staff::StaffDoc::openapi());
    ErrorResponses.modify(&mut doc);
    doc
}

/// Klarna's webhooks (HMAC-SHA256 signed, `Klarna-Signature` and `Klarna-Signing-Key-Id`); a
/// signature that does not verify is answered 400 and changes nothing. Bodies up to 2 MiB.
#[utoipa::path(post, path = "/v1/klarna/webhooks", security(()),
    params(("Klarna-Signature" = String, Header, description = "hex HMAC-SHA256 of the body"),
           ("Klarna-Signing-Key-Id" = String, Header, description = "the signing key's id")),
    request_body(content = Object, description = "Klarna's event envelope: metadata and payload", content_type = "application/json"),
    responses((status = 200, description = "accepted (or a redelivery, ignored)"),
              (status = 400, body = ErrorBody, description = "bad signature, unknown key or malformed event")))]
async fn klarna_webhook(
    State(s): State<ApiState>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<StatusCode, ApiError> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    // Klarna's pages: a signature that does not verify is answered 400 Bad Request.
    let unauthorized = |e: webhook::WebhookError| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_signature", e.to_string())
    };
    let (Some(sig), Some(key_id)) = (h("klarna-signature"), h("klarna-signing-key-id")) else {
        return Err(unauthorized(webhook::WebhookError::MissingHeaders));
    };
    webhook::verify_signature(
        &s.terminal.config().klarna.webhook_signing_keys,
        key_id,
        sig,
        &body,
    )
    .map_err(unauthorized)?;
    let env: webhook::Envelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?;
    if !s
        .terminal
        .remember_webhook_event(&env.metadata.event_id)
        .await?
    {
        tracing::debug!(event_id = %env.metadata.event_id, "duplicate webhook ignored");
        return Ok(StatusCode::OK);
    }
    tracing::info!(event_type = %env.metadata.event_type, "Klarna webhook");
    if env
        .metadata
        .event_type
        .starts_with("payment.request.state-change.")
    {
        s.terminal.webhook_request_event(&env.payload).await?;
    } else if let Some(rid) = env.payment_request_id() {
        s.terminal.nudge_request(rid).await?;
    }
    Ok(StatusCode::OK)
}
