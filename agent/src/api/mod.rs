//! The local control API (HTTP on loopback, bearer token): how the UI and an existing POS system
//! drive the till, as Adyen's and Stripe's terminal APIs are driven. Serves its own OpenAPI document.

pub mod devices;
pub mod log;
pub mod outbox;
pub mod returns;
pub mod serve;
pub mod webhook;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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

/// The body of every error answer: a code for programs, a sentence for people, and the field.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait (sent as `Retry-After` too), for 429 and 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Every error the API answers: `{"error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }
    pub(crate) fn field(mut self, f: impl Into<String>) -> Self {
        self.field = Some(f.into());
        self
    }
}

impl From<InvalidParam> for ApiError {
    fn from(e: InvalidParam) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.message).field(e.field)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_after;
        let mut r = (self.status, Json(serde_json::json!({"error": self}))).into_response();
        if let Some(s) = retry
            && let Ok(v) = header::HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

impl From<TerminalError> for ApiError {
    fn from(e: TerminalError) -> Self {
        // A manager's refusal keeps its own answer (403, 409, 429 with Retry-After).
        let e = match e {
            TerminalError::Manager(m) => return ApiError::from(m),
            e => e,
        };
        let (status, code) = match &e {
            TerminalError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            TerminalError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            TerminalError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            TerminalError::KlarnaUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "klarna_unavailable")
            }
            TerminalError::NotEligible => (StatusCode::UNPROCESSABLE_ENTITY, "klarna_not_eligible"),
            TerminalError::KlarnaRefused { .. } => (StatusCode::BAD_GATEWAY, "klarna_refused"),
            TerminalError::Forbidden(_) => (StatusCode::FORBIDDEN, "approval_required"),
            TerminalError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            TerminalError::Manager(_) => (StatusCode::FORBIDDEN, "wrong_manager_pin"),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("internal error: {e}");
        }
        ApiError::new(status, code, e.to_string())
    }
}

/// JSON body extractor whose errors name the offending field (`lines[0].unit_price`).
pub struct ApiJson<T>(pub T);

/// The largest request body the API reads (stated in the OpenAPI document).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// How much of an oversize body is still read (and dropped) before the 413 is sent.
const DRAIN_BYTES: usize = 32 * 1024 * 1024;

/// A request body of at most `MAX_BODY_BYTES`. A larger one is read on to its end (up to
/// `DRAIN_BYTES` more, and dropped) before it is refused with 413: a client that is still
/// sending would otherwise find the connection closed under it and never read the answer.
pub struct LimitedBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for LimitedBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        use http_body_util::BodyExt;
        let mut body = req.into_body();
        let mut kept = bytes::BytesMut::new();
        let mut seen: usize = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("the body could not be read: {e}"),
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen <= MAX_BODY_BYTES {
                kept.extend_from_slice(&data);
            } else if seen > MAX_BODY_BYTES + DRAIN_BYTES {
                break;
            }
        }
        if seen > MAX_BODY_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
        Ok(LimitedBody(kept.freeze()))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let LimitedBody(bytes) = LimitedBody::from_request(req, state).await?;
        // Strict JSON: one object and nothing after it (serde would read an array as the
        // struct's fields in order, and stop before trailing bytes).
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body must be one JSON object",
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let bad = |e: serde_path_to_error::Error<serde_json::Error>| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let err = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                inner.to_string(),
            );
            if path == "." { err } else { err.field(path) }
        };
        let value = serde_path_to_error::deserialize(&mut *de).map_err(bad)?;
        de.end().map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("unexpected data after the JSON object: {e}"),
            )
        })?;
        Ok(ApiJson(value))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLine {
    /// Shown on the receipt and sent to Klarna: 1 to 255 characters, no control characters.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// Your SKU or article number: 1 to 255 characters, no control characters.
    #[schema(min_length = 1, max_length = 255)]
    pub reference: Option<String>,
    #[schema(minimum = 1, maximum = 100000)]
    pub quantity: i64,
    /// Minor units of the sale's currency (öre, cent); the line's total is at most 2147483647.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub unit_price: i64,
}

impl From<NewLine> for LineInput {
    fn from(l: NewLine) -> Self {
        LineInput {
            name: l.name,
            reference: l.reference,
            quantity: l.quantity,
            unit_price: l.unit_price,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSale {
    /// ISO 4217 code; the terminal's configured currency when absent.
    #[schema(min_length = 3, max_length = 3)]
    pub currency: Option<String>,
    /// Who opens the sale (journaled): 1 to 64 characters; the configured default when absent.
    #[schema(min_length = 1, max_length = 64)]
    pub operator: Option<String>,
    /// At most 500 lines in a sale.
    #[serde(default)]
    #[schema(max_items = 500)]
    pub lines: Vec<NewLine>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLines {
    #[schema(min_length = 1, max_length = 64)]
    pub operator: Option<String>,
    /// The sale holds at most 500 lines in all.
    #[schema(max_items = 500)]
    pub lines: Vec<NewLine>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartPayment {
    pub operator: Option<String>,
    /// A customer code scanned from the customer's Klarna app (Klarna's
    /// `klarna_network_session_token`), sent as the `Klarna-Network-Session-Token` header of the
    /// first authorization. `interoperability_token` is its older name. At most 4,096 characters.
    #[serde(alias = "interoperability_token")]
    #[schema(max_length = 4096)]
    pub klarna_network_session_token: Option<String>,
    /// Klarna's `klarna_network_data` from the customer's Klarna app, passed through untouched (a
    /// string; `interoperability_data`, its older name, may be an object, passed on as its JSON
    /// text). At most 16,384 characters.
    #[serde(alias = "interoperability_data")]
    #[schema(value_type = String, max_length = 16384)]
    pub klarna_network_data: Option<serde_json::Value>,
}

/// A manager's decision about a payment in doubt.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveDoubt {
    /// `paid` (Klarna has the payment: give its transaction id) or `not_paid`.
    #[schema(pattern = "^(paid|not_paid)$")]
    pub outcome: String,
    /// For `paid`: Klarna's transaction id (`krn:payment:…:transaction:…`), checked at Klarna.
    pub klarna_transaction_id: Option<String>,
    /// The manager deciding (journaled), 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub manager: String,
    /// What the manager checked, at most 500 characters.
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    pub operator: Option<String>,
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
    paths(create_sale, get_sale, add_lines, start_payment, cancel_payment, abandon_sale, resolve_doubt, events, journal, verify, health, metrics_text, openapi, klarna_webhook),
    components(schemas(NewSale, NewLine, AddLines, StartPayment, ResolveDoubt, Cancel, SaleView, AttemptRow, JournalRow, VerifyReport, ApiError, ErrorBody, Health)),
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

/// Every error the API answers is JSON (`{"error":{"code","message","field"}}`), including
/// the rejections of axum's own extractors and router (a bad path id or query string, a body
/// over the limit, a wrong method), which it writes as plain text.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        s if s.is_server_error() => "internal",
        _ => "invalid_request",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string()
    } else {
        text
    };
    let mut out = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
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

/// Runs a change that talks to Klarna or leaves a follower behind in a task of its own, so a
/// client that hangs up (or a request cut by the timeout, or its connection closed to make room)
/// never leaves it half done: an attempt with no follower, a cancel never confirmed.
async fn detached<T: Send + 'static>(
    change: impl std::future::Future<Output = Result<T, TerminalError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(change)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(ApiError::from)
}

fn parse_currency(c: Option<String>) -> Result<Option<Currency>, ApiError> {
    c.map(|c| {
        c.parse::<Currency>().map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
                .field("currency")
        })
    })
    .transpose()
}

/// Open a sale with its lines.
#[utoipa::path(post, path = "/v1/sales", request_body = NewSale,
    responses((status = 201, body = SaleView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create_sale(
    State(s): State<ApiState>,
    ApiJson(b): ApiJson<NewSale>,
) -> Result<impl IntoResponse, ApiError> {
    let currency = parse_currency(b.currency)?;
    let lines = b.lines.into_iter().map(LineInput::from).collect();
    let view = s.terminal.open_sale(currency, b.operator, lines).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Read a sale with its lines and payments.
#[utoipa::path(get, path = "/v1/sales/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SaleView), (status = 404, body = ErrorBody)))]
async fn get_sale(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<SaleView>, ApiError> {
    Ok(Json(s.terminal.sale(&id).await?))
}

/// Add lines to an open sale.
#[utoipa::path(post, path = "/v1/sales/{id}/lines", params(("id" = String, Path)), request_body = AddLines,
    responses((status = 200, body = SaleView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_lines(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<AddLines>,
) -> Result<Json<SaleView>, ApiError> {
    let lines = b.lines.into_iter().map(LineInput::from).collect();
    Ok(Json(s.terminal.add_lines(&id, b.operator, lines).await?))
}

/// Start a Klarna payment for the sale's total; the answer carries the QR code's URL
/// (`payment_request_url`) or, if Klarna's answer is delayed, state `requested`.
#[utoipa::path(post, path = "/v1/sales/{id}/payments", params(("id" = String, Path)), request_body = StartPayment,
    responses((status = 201, body = AttemptRow), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn start_payment(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<StartPayment>,
) -> Result<impl IntoResponse, ApiError> {
    let too_long = |field: &str, max: usize| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field} is longer than {max} characters"),
        )
        .field(field)
    };
    if b.klarna_network_session_token
        .as_ref()
        .is_some_and(|t| t.len() > 4096)
    {
        return Err(too_long("klarna_network_session_token", 4096));
    }
    let network_data = match b.klarna_network_data {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    };
    if network_data.as_ref().is_some_and(|d| d.len() > 16384) {
        return Err(too_long("klarna_network_data", 16384));
    }
    let opts = PaymentOptions {
        customer_token: b.klarna_network_session_token,
        network_data,
    };
    let t = s.terminal.clone();
    let a = detached(async move { t.start_payment(&id, b.operator, opts).await }).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// A manager decides a payment in doubt (one whose Klarna answer could not be read, so the
/// customer may have been charged): `paid` with Klarna's transaction id (checked at Klarna: same
/// amount, currency and sale) or `not_paid`. Needs the manager PIN in `Kassa-Manager-Pin`; a wrong
/// PIN is refused (403) and journaled. Until then the sale takes no other payment.
#[utoipa::path(post, path = "/v1/payments/{id}/resolve", params(("id" = String, Path),
        ("Kassa-Manager-Pin" = String, Header, description = "The manager PIN")),
    request_body = ResolveDoubt,
    responses((status = 200, body = AttemptRow), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn resolve_doubt(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ResolveDoubt>,
) -> Result<Json<AttemptRow>, ApiError> {
    let bad = |field: &str, m: &str| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", m).field(field)
    };
    if b.manager.trim().is_empty() || b.manager.len() > 64 {
        return Err(bad("manager", "manager must be 1 to 64 characters"));
    }
    if b.note.as_ref().is_some_and(|n| n.len() > 500) {
        return Err(bad("note", "note must be at most 500 characters"));
    }
    let resolution = match (b.outcome.as_str(), b.klarna_transaction_id) {
        ("paid", Some(tx)) => DoubtResolution::Paid {
            klarna_transaction_id: tx,
        },
        ("paid", None) => {
            return Err(bad(
                "klarna_transaction_id",
                "a payment marked paid needs Klarna's transaction id",
            ));
        }
        ("not_paid", None) => DoubtResolution::NotPaid,
        ("not_paid", Some(_)) => {
            return Err(bad(
                "klarna_transaction_id",
                "a payment marked not paid has no Klarna transaction id",
            ));
        }
        _ => return Err(bad("outcome", "outcome is paid or not_paid")),
    };
    let pin = headers
        .get(log::PIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
    let t = s.terminal.clone();
    let manager = b.manager.trim().to_string();
    Ok(Json(
        detached(async move {
            t.resolve_doubt(&id, resolution, &manager, pin, b.note)
                .await
        })
        .await?,
    ))
}

/// Cancel the payment in progress; the sale stays open.
#[utoipa::path(post, path = "/v1/sales/{id}/payments/cancel", params(("id" = String, Path)), request_body = Cancel,
    responses((status = 200, body = SaleView), (status = 409, body = ErrorBody)))]
async fn cancel_payment(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Cancel>,
) -> Result<Json<SaleView>, ApiError> {
    let t = s.terminal.clone();
    Ok(Json(
        detached(async move { t.cancel_payment(&id, b.operator).await }).await?,
    ))
}

/// Abandon the sale and any payment in progress.
#[utoipa::path(post, path = "/v1/sales/{id}/cancel", params(("id" = String, Path)), request_body = Cancel,
    responses((status = 200, body = SaleView), (status = 409, body = ErrorBody)))]
async fn abandon_sale(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Cancel>,
) -> Result<Json<SaleView>, ApiError> {
    let t = s.terminal.clone();
    Ok(Json(
        detached(async move { t.abandon_sale(&id, b.operator).await }).await?,
    ))
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
    ErrorResponses.modify(&mut doc);
    doc
}

/// Adds to every operation the error answers the API can give it whatever the route: 400 (a bad
/// path id or query), 401 (no or a wrong token, where one is needed), 404 (an id that names
/// nothing, where the path or body has one), 405, 413 and 415 (where a body is sent), 429
/// (manager PIN locked), 500, 502 (Klarna refused, where Klarna is asked), and 503 (no answer
/// within the request timeout, or Klarna unreachable). Each is `ErrorBody`; `api_fuzz.rs` fails
/// on any status an operation does not list.
struct ErrorResponses;
impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
        let error = |what: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(what)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_id = path.contains('{');
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                let open = op.security.as_ref().is_some_and(|s| {
                    s.iter().all(|r| {
                        serde_json::to_value(r)
                            .is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
                    })
                });
                let mut add = vec![
                    ("400", "the request is not valid (body, path or query)"),
                    ("405", "the method is not allowed on this path"),
                    ("500", "the terminal failed; nothing was changed"),
                    ("503", "no answer within 30 s, or Klarna cannot be reached"),
                ];
                if !open {
                    add.push(("401", "no or a wrong bearer token"));
                }
                if has_id || op.request_body.is_some() {
                    add.push(("404", "an id in the path or body names nothing"));
                }
                if ["payments", "returns", "transactions"]
                    .iter()
                    .any(|p| path.contains(p))
                {
                    add.push(("502", "Klarna refused the request"));
                }
                if op.request_body.is_some() || path == "/v1/klarna/webhooks" {
                    add.push(("413", "the body is larger than 2 MiB"));
                    add.push(("415", "the body is not application/json"));
                }
                if path.starts_with("/v1/reports/z") || path.ends_with("/resolve") {
                    add.push((
                        "429",
                        "too many wrong manager PINs: wait Retry-After seconds",
                    ));
                }
                for (status, what) in add {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(what));
                }
            }
        }
    }
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
