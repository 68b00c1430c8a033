//! What a failed Klarna call means for the caller (klarna-api.md §1): each variant is one thing to do.

use std::time::Duration;

use super::wire::ErrorBody;

#[derive(Debug, Clone, thiserror::Error)]
pub enum KlarnaError {
    /// 400/403/404/409: the request is wrong or not allowed; retrying it unchanged cannot help.
    #[error("Klarna refused the request ({status} {code}): {message}")]
    Final {
        status: u16,
        code: String,
        message: String,
        body: Box<ErrorBody>,
    },
    /// 401: the API key is wrong or was rotated; an operator must fix the configuration.
    #[error("Klarna rejected kassa's credentials ({status}): check the API key")]
    Auth { status: u16 },
    /// 429: wait `retry_after`, then retry with the same idempotency key.
    #[error("Klarna is throttling requests; retry in {retry_after:?}")]
    Throttled { retry_after: Duration },
    /// The request may or may not have taken effect (5xx, timeout after sending, reset, garbled
    /// answer): retry with the same idempotency key, or read the resource first.
    #[error("Klarna's answer was lost ({0}); the outcome is unknown")]
    UnknownOutcome(String),
    /// The request never left the terminal (no connection): nothing happened at Klarna.
    #[error("Klarna cannot be reached ({0})")]
    Unreachable(String),
}

impl KlarnaError {
    /// Whether the same request may be sent again with the same idempotency key.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            KlarnaError::Throttled { .. }
                | KlarnaError::UnknownOutcome(_)
                | KlarnaError::Unreachable(_)
        )
    }

    /// The failure as the core's decisions see it (`kassa_core::decide`).
    pub fn failure(&self) -> kassa_core::decide::Failure {
        use kassa_core::decide::Failure;
        match self {
            KlarnaError::Final { .. } | KlarnaError::Auth { .. } => Failure::Refused {
                code: self.code().to_string(),
                message: self.to_string(),
            },
            KlarnaError::Throttled { retry_after } => Failure::Throttled {
                retry_after: *retry_after,
            },
            KlarnaError::UnknownOutcome(_) => Failure::Unknown(self.to_string()),
            KlarnaError::Unreachable(_) => Failure::Unreachable(self.to_string()),
        }
    }

    /// Klarna's error code, for the journal and the manager.
    pub fn code(&self) -> &str {
        match self {
            KlarnaError::Final { code, .. } => code,
            KlarnaError::Auth { .. } => "UNAUTHORIZED",
            KlarnaError::Throttled { .. } => "RATE_LIMITED",
            KlarnaError::UnknownOutcome(_) => "UNKNOWN_OUTCOME",
            KlarnaError::Unreachable(_) => "UNREACHABLE",
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            KlarnaError::Final { status, .. } | KlarnaError::Auth { status } => Some(*status),
            KlarnaError::Throttled { .. } => Some(429),
            _ => None,
        }
    }
}

/// Maps an HTTP error status and its body to what the caller must do.
pub fn classify(status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) -> KlarnaError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    match status {
        401 => KlarnaError::Auth { status },
        429 => KlarnaError::Throttled {
            retry_after: retry_after(headers),
        },
        400..=499 => {
            let b = parsed.unwrap_or_default();
            KlarnaError::Final {
                status,
                code: b
                    .error_code
                    .clone()
                    .unwrap_or_else(|| format!("HTTP_{status}")),
                message: b.message().unwrap_or_else(|| "no message".into()),
                body: Box::new(b),
            }
        }
        _ => KlarnaError::UnknownOutcome(format!("HTTP {status}")),
    }
}

/// The delay a 429 names: `Retry-After` seconds [inferred], else `X-Ratelimit-Reset` [doc, classic
/// API], else one second (the caller's back-off adds jitter and growth).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    let secs = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
    };
    let s = secs("retry-after")
        .or_else(|| secs("x-ratelimit-reset"))
        .unwrap_or(1.0);
    // Never trust a server to park the till for more than ten minutes.
    Duration::from_secs_f64(s.min(600.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn check(status: u16, headers: &[(&'static str, &str)], body: &str, expected: &str) {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let e = classify(status, &h, body.as_bytes());
        assert_eq!(
            format!("{e:?}").split(['{', '(', ' ']).next().unwrap(),
            expected,
            "{e:?}"
        );
        assert_eq!(
            e.is_retryable(),
            matches!(expected, "Throttled" | "UnknownOutcome" | "Unreachable")
        );
    }

    #[test]
    fn statuses_map_to_what_the_caller_must_do() {
        let body = r#"{"error_code":"VALIDATION_ERROR","error_message":"amount"}"#;
        check(400, &[], body, "Final");
        check(403, &[], body, "Final");
        check(404, &[], "not json", "Final");
        check(409, &[], body, "Final");
        check(401, &[], body, "Auth");
        check(429, &[("retry-after", "3")], body, "Throttled");
        check(500, &[], body, "UnknownOutcome");
        check(503, &[], "", "UnknownOutcome");
    }

    #[test]
    fn final_errors_carry_klarnas_code_and_message() {
        let e = classify(
            400,
            &HeaderMap::new(),
            br#"{"error_code":"VALIDATION_ERROR","error_message":"amount mismatch"}"#,
        );
        assert_eq!(e.code(), "VALIDATION_ERROR");
        assert!(e.to_string().contains("amount mismatch"));
    }

    #[test]
    fn the_throttle_delay_comes_from_the_response() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), Duration::from_secs(1));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Duration::from_secs(2));
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&h), Duration::from_millis(500));
        h.insert("retry-after", HeaderValue::from_static("99999"));
        assert_eq!(retry_after(&h), Duration::from_secs(600));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), Duration::from_secs(2));
    }
}
