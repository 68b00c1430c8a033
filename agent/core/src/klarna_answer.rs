//! Reading Klarna's answers into what they mean for the till (klarna-api.md §3, "Reading answers
//! tolerantly"). Klarna's pages span several API generations, so each field kassa needs is looked
//! up at every place a documented generation puts it, first match wins, unknown fields ignored.
//! The places are data (`paths`), so correcting one is one edit; the fixtures under
//! `tests/fixtures/klarna/` pin each place to the page that documents it.
//!
//! The rule that matters for money: an answer that might mean "approved" but that kassa cannot
//! place is never read as a decline. Only an explicit `DECLINED` is a decline.

use serde_json::Value;

/// Where each field lives, as JSON pointers, in the order they are tried.
pub mod paths {
    /// `payment_transaction_response.result` [doc].
    pub const RESULT: &[&str] = &["/payment_transaction_response/result"];
    pub const RESULT_REASON: &[&str] = &["/payment_transaction_response/result_reason"];
    /// The transaction sits inside `payment_transaction_response` [doc, "Auto-capture" sample];
    /// the top level is where an earlier version of our contract put it.
    pub const TRANSACTION_ID: &[&str] = &[
        "/payment_transaction_response/payment_transaction/payment_transaction_id",
        "/payment_transaction/payment_transaction_id",
    ];
    /// Beside `payment_transaction_response`, at the top level [doc].
    pub const PAYMENT_REQUEST: &[&str] = &[
        "/payment_request",
        "/payment_transaction_response/payment_request",
    ];
    /// Inside a payment request: its id.
    pub const REQUEST_ID: &[&str] = &[
        "/payment_request_id",
        "/state_context/customer_interaction/payment_request_id",
    ];
    /// Inside a payment request: the URL to show as a QR code. Server-side pages put it in the
    /// customer interaction [doc]; the in-store draft pages offer a `qr_code` object [draft].
    pub const REQUEST_URL: &[&str] = &[
        "/state_context/customer_interaction/payment_request_url",
        "/state_context/customer_interaction/qr_code/target_url",
        "/state_context/qr_code/target_url",
        "/qr_code/target_url",
        "/payment_request_url",
    ];
    /// Inside a completed payment request: the session token for the final authorization.
    /// `klarna_network_session_token` [doc], then `payment_token` [doc, older generation]; the
    /// top level is where an earlier version of our contract put it.
    pub const SESSION_TOKEN: &[&str] = &[
        "/state_context/klarna_network_session_token",
        "/state_context/payment_token",
        "/klarna_network_session_token",
        "/payment_token",
    ];
    /// Inside a webhook's `payload`: the same token, as the completed event carries it [doc].
    pub const WEBHOOK_SESSION_TOKEN: &[&str] = &[
        "/klarna_network_session_token",
        "/payment_token",
        "/state_context/klarna_network_session_token",
        "/state_context/payment_token",
    ];
}

/// What a cashier is told when a code is not a Klarna transaction id.
pub const NOT_A_TRANSACTION_ID: &str = "that is not a Klarna payment transaction id (krn:payment:…:transaction:…); scan the QR code on the receipt or order confirmation";

/// `s` as a Klarna transaction id (`krn:payment:<region>:transaction:<uuid>`), trimmed; `None`
/// when it is not one.
pub fn transaction_id(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = s.len() <= 120
        && s.starts_with("krn:payment:")
        && s.split(':').nth(3) == Some("transaction")
        && s.rsplit(':')
            .next()
            .is_some_and(|u| uuid::Uuid::parse_str(u).is_ok());
    ok.then(|| s.to_string())
}

/// The first string found at any of `paths` (empty strings do not count).
pub fn string_at<'a>(v: &'a Value, paths: &[&str]) -> Option<&'a str> {
    paths
        .iter()
        .find_map(|p| v.pointer(p).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
}

fn value_at<'a>(v: &'a Value, paths: &[&str]) -> Option<&'a Value> {
    paths
        .iter()
        .find_map(|p| v.pointer(p))
        .filter(|v| v.is_object())
}

/// What an authorize answer (first or final) means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// The customer must act: show the request's URL as a QR code.
    StepUp(StepUp),
    /// Klarna created the payment transaction: the sale is paid.
    Approved { transaction_id: String },
    /// Klarna said no (`DECLINED`), with its reason when it gave one.
    Declined { reason: Option<String> },
    /// A 2xx answer kassa cannot place. When `money_may_have_moved`, the customer may have been
    /// charged: retry with the same idempotency key, then ask a person; never read it as a decline.
    Unplaceable {
        why: String,
        money_may_have_moved: bool,
    },
}

/// A payment request from a `STEP_UP_REQUIRED` answer; fields kassa could not find are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    pub request_id: Option<String>,
    pub url: Option<String>,
    pub expires_at: Option<String>,
}

/// Reads a 2xx authorize answer's body.
pub fn authorize_outcome(body: &[u8]) -> AuthorizeOutcome {
    let unplaceable = |why: String| AuthorizeOutcome::Unplaceable {
        why,
        money_may_have_moved: true,
    };
    let v: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return unplaceable("the answer is not a JSON object".into()),
        Err(e) => return unplaceable(format!("the answer is not JSON: {e}")),
    };
    let Some(result) = string_at(&v, paths::RESULT) else {
        return unplaceable("the answer has no payment_transaction_response.result".into());
    };
    match result {
        "APPROVED" => match string_at(&v, paths::TRANSACTION_ID) {
            Some(id) => AuthorizeOutcome::Approved {
                transaction_id: id.to_string(),
            },
            None => unplaceable(
                "APPROVED, but no payment_transaction_response.payment_transaction.payment_transaction_id".into(),
            ),
        },
        "DECLINED" => AuthorizeOutcome::Declined {
            reason: string_at(&v, paths::RESULT_REASON).map(str::to_string),
        },
        "STEP_UP_REQUIRED" => {
            let Some(req) = value_at(&v, paths::PAYMENT_REQUEST) else {
                // Not approved (a step-up is not a charge), but a request may exist that kassa
                // cannot name: the same key will be asked again.
                return AuthorizeOutcome::Unplaceable {
                    why: "STEP_UP_REQUIRED without a payment_request".into(),
                    money_may_have_moved: false,
                };
            };
            AuthorizeOutcome::StepUp(StepUp {
                request_id: string_at(req, paths::REQUEST_ID).map(str::to_string),
                url: string_at(req, paths::REQUEST_URL).map(str::to_string),
                expires_at: req["expires_at"].as_str().map(str::to_string),
            })
        }
        other => unplaceable(format!("unknown authorize result {other:?}")),
    }
}

/// A payment request's state [doc].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestState {
    Submitted,
    InProgress,
    Completed,
    Declined,
    Expired,
    Canceled,
    /// A state this version of kassa does not know; it keeps polling.
    Other(String),
}

impl RequestState {
    pub fn parse(s: &str) -> RequestState {
        match s {
            "SUBMITTED" => RequestState::Submitted,
            "IN_PROGRESS" => RequestState::InProgress,
            "COMPLETED" => RequestState::Completed,
            "DECLINED" => RequestState::Declined,
            "EXPIRED" => RequestState::Expired,
            // Klarna spells it CANCELED; accept the British spelling too.
            "CANCELED" | "CANCELLED" => RequestState::Canceled,
            other => RequestState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RequestState::Submitted => "SUBMITTED",
            RequestState::InProgress => "IN_PROGRESS",
            RequestState::Completed => "COMPLETED",
            RequestState::Declined => "DECLINED",
            RequestState::Expired => "EXPIRED",
            RequestState::Canceled => "CANCELED",
            RequestState::Other(s) => s,
        }
    }
}

/// A payment request as read (GET), canceled (DELETE) or named by a webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestRead {
    pub request_id: Option<String>,
    pub state: RequestState,
    pub url: Option<String>,
    pub expires_at: Option<String>,
    /// Issued on COMPLETED; valid 60 minutes; never stored or logged by kassa.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for RequestRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRead")
            .field("request_id", &self.request_id)
            .field("state", &self.state)
            .field("url", &self.url)
            .field("session_token", &self.session_token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Reads a payment request (the body of GET or DELETE on it).
pub fn request_read(body: &[u8]) -> Result<RequestRead, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    request_from(&v, paths::SESSION_TOKEN)
}

/// Reads a payment request from a JSON object (an answer, or a webhook's `payload`).
pub fn request_from(v: &Value, token_paths: &[&str]) -> Result<RequestRead, String> {
    if !v.is_object() {
        return Err("the answer is not a JSON object".into());
    }
    let state = v["state"]
        .as_str()
        .ok_or("the payment request has no state")?;
    Ok(RequestRead {
        request_id: string_at(v, paths::REQUEST_ID).map(str::to_string),
        state: RequestState::parse(state),
        url: string_at(v, paths::REQUEST_URL).map(str::to_string),
        expires_at: v["expires_at"].as_str().map(str::to_string),
        session_token: string_at(v, token_paths).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(v: Value) -> AuthorizeOutcome {
        authorize_outcome(v.to_string().as_bytes())
    }

    #[test]
    fn approved_is_read_where_klarna_documents_the_transaction_and_where_we_once_put_it() {
        let documented = json!({"payment_transaction_response": {"result": "APPROVED",
            "payment_transaction": {"payment_transaction_id": "krn:payment:eu1:transaction:1"}}});
        let legacy = json!({"payment_transaction_response": {"result": "APPROVED"},
            "payment_transaction": {"payment_transaction_id": "krn:payment:eu1:transaction:1"}});
        for v in [documented, legacy] {
            assert_eq!(
                outcome(v),
                AuthorizeOutcome::Approved {
                    transaction_id: "krn:payment:eu1:transaction:1".into()
                }
            );
        }
    }

    #[test]
    fn approved_without_a_transaction_is_never_a_decline() {
        for v in [
            json!({"payment_transaction_response": {"result": "APPROVED"}}),
            json!({"payment_transaction_response": {"result": "APPROVED",
                "payment_transaction": {"payment_transaction_id": ""}}}),
            json!({"payment_transaction_response": {"result": "SOMETHING_NEW"}}),
            json!({"payment_transaction_response": {}}),
            json!([1, 2]),
        ] {
            assert!(
                matches!(
                    outcome(v.clone()),
                    AuthorizeOutcome::Unplaceable {
                        money_may_have_moved: true,
                        ..
                    }
                ),
                "{v}"
            );
        }
        assert!(matches!(
            authorize_outcome(b"{\"payment_transaction_response\": {\"res"),
            AuthorizeOutcome::Unplaceable { .. }
        ));
    }

    #[test]
    fn the_session_token_is_read_inside_state_context_in_either_generation() {
        for token_at in [
            json!({"state_context": {"klarna_network_session_token": "t"}}),
            json!({"state_context": {"payment_token": "t"}}),
        ] {
            let mut v =
                json!({"payment_request_id": "krn:payment:eu1:request:1", "state": "COMPLETED"});
            v.as_object_mut()
                .unwrap()
                .extend(token_at.as_object().unwrap().clone());
            let r = request_read(v.to_string().as_bytes()).unwrap();
            assert_eq!(r.state, RequestState::Completed);
            assert_eq!(r.session_token.as_deref(), Some("t"));
        }
    }
}
