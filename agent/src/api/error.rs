//! The API's one error shape (`{"error":{code,message,field?,retry_after?}}`): how the till's
//! errors map onto statuses, axum's own plain-text rejections rewritten into it, and the errors
//! every operation lists in the OpenAPI document (which `tests/api_fuzz.rs` holds it to).

use super::*;

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
            TerminalError::OtherOperator(_) => (StatusCode::FORBIDDEN, "not_signed_in_as"),
            TerminalError::SignIn => (StatusCode::UNAUTHORIZED, "sign_in_required"),
            TerminalError::Manager(_) => (StatusCode::FORBIDDEN, "wrong_manager_pin"),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("internal error: {e}");
        }
        ApiError::new(status, code, e.to_string())
    }
}
/// Every error the API answers is JSON (`{"error":{"code","message","field"}}`), including
/// the rejections of axum's own extractors and router (a bad path id or query string, a body
/// over the limit, a wrong method), which it writes as plain text.
pub(super) async fn json_errors(resp: Response) -> Response {
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
/// Adds to every operation the error answers the API can give it whatever the route: 400 (a bad
/// path id or query), 401 (no or a wrong token, where one is needed), 404 (an id that names
/// nothing, where the path or body has one), 405, 413 and 415 (where a body is sent), 429
/// (manager PIN locked), 500, 502 (Klarna refused, where Klarna is asked), and 503 (no answer
/// within the request timeout, or Klarna unreachable). Each is `ErrorBody`; `api_fuzz.rs` fails
/// on any status an operation does not list.
pub(super) struct ErrorResponses;
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
