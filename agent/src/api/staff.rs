//! Local API for staff: sign in with a staff id and PIN (a session token comes back, to send as
//! `Kassa-Staff-Session` on every request), sign out, and who is signed in. A request with a
//! session runs as its staff member: every journal row it writes names them.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{ApiError, ApiJson, ApiState, ErrorBody};
use crate::staff::{SignedIn, StaffError};
use crate::store::staff::{Role, StaffRow};

/// The header that carries a staff session's token.
pub const SESSION_HEADER: &str = "Kassa-Staff-Session";

#[derive(OpenApi)]
#[openapi(
    paths(sign_in, sign_out, me, list),
    components(schemas(SignIn, SignedInAnswer, SignedIn, Role, StaffRow, SignedOut))
)]
pub struct StaffDoc;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/staff/sign-in", post(sign_in))
        .route("/v1/staff/sign-out", post(sign_out))
        .route("/v1/staff/me", get(me))
        .route("/v1/staff", get(list))
}

impl From<StaffError> for ApiError {
    fn from(e: StaffError) -> Self {
        match e {
            StaffError::Pin(m) => ApiError::from(m),
            StaffError::Store(s) => ApiError::from(crate::terminal::TerminalError::from(s)),
            e @ StaffError::WrongIdOrPin => {
                ApiError::new(StatusCode::UNAUTHORIZED, "wrong_staff_pin", e.to_string())
            }
            e @ StaffError::SignedOut => {
                ApiError::new(StatusCode::UNAUTHORIZED, "signed_out", e.to_string())
            }
        }
    }
}

/// Runs the request as the staff member its session names; a session that is not open (idle
/// too long, signed out, or from before a restart) is refused, never ignored.
pub(super) async fn with_session(
    State(s): State<ApiState>,
    req: Request,
    next: axum::middleware::Next,
) -> Result<Response, ApiError> {
    // Signing in needs no session, and a stale one left in a client's headers must not stop it.
    let Some(token) = req
        .headers()
        .get(SESSION_HEADER)
        .filter(|_| req.uri().path() != "/v1/staff/sign-in")
    else {
        return Ok(next.run(req).await);
    };
    let who = token
        .to_str()
        .ok()
        .and_then(|t| s.terminal.sessions().resolve(t.trim()))
        .ok_or(StaffError::SignedOut)?;
    Ok(crate::staff::run_as(Some(who), next.run(req)).await)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[schema(min_length = 1, max_length = 64)]
    pub id: String,
    /// 4 to 12 digits.
    #[schema(min_length = 4, max_length = 12)]
    pub pin: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("id", &self.id)
            .field("pin", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedInAnswer {
    /// Send it as `Kassa-Staff-Session` on every request; it stops working after
    /// `idle_lock_secs` without use, at sign-out, and when the agent restarts.
    pub session: String,
    pub staff: SignedIn,
    pub idle_lock_secs: u64,
}

/// Sign in with a staff id and PIN. Wrong PINs count toward the lock-out every PIN at this till
/// shares (429 with Retry-After while it lasts); each sign-in and refusal is journaled.
#[utoipa::path(post, path = "/v1/staff/sign-in", request_body = SignIn,
    responses((status = 201, body = SignedInAnswer), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn sign_in(
    State(s): State<ApiState>,
    ApiJson(b): ApiJson<SignIn>,
) -> Result<impl IntoResponse, ApiError> {
    let t = &s.terminal;
    let (session, staff) = t.sessions().sign_in(t.store(), &b.id, &b.pin).await?;
    Ok((
        StatusCode::CREATED,
        Json(SignedInAnswer {
            session,
            staff,
            idle_lock_secs: t.sessions().idle().as_secs(),
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOut {
    /// False when the session was not open (already signed out or locked).
    pub signed_out: bool,
}

/// Sign out the session in `Kassa-Staff-Session`.
#[utoipa::path(post, path = "/v1/staff/sign-out",
    responses((status = 200, body = SignedOut), (status = 401, body = ErrorBody)))]
async fn sign_out(
    State(s): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<SignedOut>, ApiError> {
    let token = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let t = &s.terminal;
    Ok(Json(SignedOut {
        signed_out: t.sessions().sign_out(t.store(), token.trim()).await?,
    }))
}

/// Who the session in `Kassa-Staff-Session` belongs to.
#[utoipa::path(get, path = "/v1/staff/me",
    responses((status = 200, body = SignedIn), (status = 401, body = ErrorBody)))]
async fn me() -> Result<Json<SignedIn>, ApiError> {
    Ok(Json(crate::staff::current().ok_or(StaffError::SignedOut)?))
}

/// The till's staff accounts (never their PINs).
#[utoipa::path(get, path = "/v1/staff", responses((status = 200, body = [StaffRow])))]
async fn list(State(s): State<ApiState>) -> Result<Json<Vec<StaffRow>>, ApiError> {
    let rows = s
        .terminal
        .store()
        .call(|db| db.staff())
        .await
        .map_err(crate::terminal::TerminalError::from)?;
    Ok(Json(rows))
}
