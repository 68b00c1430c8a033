//! Kassa's Klarna client (klarna-api.md §1–§5): one method per operation, every call tagged,
//! correlated, timed and classified, and its outcome mapped to a `KlarnaError` that says what to do.

/// What Klarna's answers mean, from the domain core (no I/O).
pub use kassa_core::klarna_answer as answer;
mod error;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

pub use answer::{AuthorizeOutcome, RequestRead, RequestState, StepUp};
pub use error::{KlarnaError, classify, retry_after};
use wire::*;

use crate::config::{ConfigError, KlarnaConfig, Secret};

/// Paths marked [inferred] in klarna-api.md live here only, so correcting one is one edit.
pub mod paths {
    pub const AUTHORIZE: &str = "/payment/authorize";
    pub const PAYMENT_REQUESTS: &str = "/payment/requests"; // [inferred] GET path
    pub const TRANSACTIONS: &str = "/payment/transactions";
    pub const CAPTURES: &str = "captures"; // [inferred]
    pub const REFUNDS: &str = "refunds"; // [inferred]
    pub const VOID: &str = "void"; // [inferred]
    pub const PRESENTATION: &str = "/payment/presentation";
}

/// Klarna's SLO categories (klarna-api.md §2, from the service-level seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum SloCategory {
    PaymentTransactionGeneral,
    PaymentRequest,
    PaymentConfirmation,
    CustomerTokenCharge,
    ReadOnlyPaymentTransaction,
    MessagingPlacements,
}

impl SloCategory {
    pub const ALL: [SloCategory; 6] = [
        SloCategory::PaymentTransactionGeneral,
        SloCategory::PaymentRequest,
        SloCategory::PaymentConfirmation,
        SloCategory::CustomerTokenCharge,
        SloCategory::ReadOnlyPaymentTransaction,
        SloCategory::MessagingPlacements,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SloCategory::PaymentTransactionGeneral => "Payment Transaction General",
            SloCategory::PaymentRequest => "Payment Request",
            SloCategory::PaymentConfirmation => "Payment Confirmation",
            SloCategory::CustomerTokenCharge => "Customer Token Charge",
            SloCategory::ReadOnlyPaymentTransaction => "Read-only Payment Transaction",
            SloCategory::MessagingPlacements => "Messaging Placements",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ServiceClass {
    TransactionsCritical,
    TransactionsNonCritical,
    AdditionalServices,
}

impl ServiceClass {
    pub fn name(self) -> &'static str {
        match self {
            ServiceClass::TransactionsCritical => "Transactions Critical",
            ServiceClass::TransactionsNonCritical => "Transactions Non-critical",
            ServiceClass::AdditionalServices => "Additional Services",
        }
    }
}

/// Each Klarna operation kassa performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Authorize,
    FinalAuthorize,
    /// A first authorization with a customer code scanned from the customer's app.
    CustomerTokenAuthorize,
    ReadPaymentRequest,
    CancelPaymentRequest,
    ReadTransaction,
    Capture,
    Refund,
    Void,
    Eligibility,
}

impl Operation {
    pub fn slo(self) -> (SloCategory, ServiceClass) {
        use Operation as O;
        use ServiceClass as C;
        use SloCategory as S;
        match self {
            O::Authorize => (S::PaymentTransactionGeneral, C::TransactionsCritical),
            O::ReadPaymentRequest | O::CancelPaymentRequest => {
                (S::PaymentRequest, C::TransactionsCritical)
            }
            O::FinalAuthorize => (S::PaymentConfirmation, C::TransactionsCritical),
            O::CustomerTokenAuthorize => (S::CustomerTokenCharge, C::TransactionsCritical),
            O::ReadTransaction => (S::ReadOnlyPaymentTransaction, C::TransactionsNonCritical),
            O::Capture | O::Refund | O::Void => {
                (S::PaymentTransactionGeneral, C::TransactionsNonCritical)
            }
            O::Eligibility => (S::MessagingPlacements, C::AdditionalServices),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Operation::Authorize => "authorize",
            Operation::FinalAuthorize => "final_authorize",
            Operation::CustomerTokenAuthorize => "customer_token_authorize",
            Operation::ReadPaymentRequest => "read_payment_request",
            Operation::CancelPaymentRequest => "cancel_payment_request",
            Operation::ReadTransaction => "read_transaction",
            Operation::Capture => "capture",
            Operation::Refund => "refund",
            Operation::Void => "void",
            Operation::Eligibility => "eligibility",
        }
    }
}

/// One finished Klarna call, as the health model and metrics see it.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub operation: Operation,
    pub category: SloCategory,
    pub class: ServiceClass,
    /// HTTP status, or None when no answer came (timeout, reset, refused).
    pub status: Option<u16>,
    pub latency: Duration,
    pub at: Instant,
}

/// Receives every call's record (metrics, health).
pub type CallObserver = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// The headers of one call that the caller chooses.
#[derive(Debug, Clone, Default)]
pub struct CallOptions<'a> {
    pub correlation_id: &'a str,
    pub idempotency_key: Option<&'a str>,
    /// The session token of a completed payment request: the call is a final authorization.
    pub session_token: Option<&'a str>,
    /// A Klarna customer code scanned from the customer's app, for a first authorization. Klarna
    /// takes it in the same header as the session token (`Klarna-Network-Session-Token` [doc]).
    pub customer_token: Option<&'a str>,
}

#[derive(Clone)]
pub struct KlarnaClient {
    http: reqwest::Client,
    /// `<base_url>/v2/accounts/<partner account>`.
    account_url: String,
    api_key: Secret,
    metadata: String,
    observer: Option<CallObserver>,
}

impl std::fmt::Debug for KlarnaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KlarnaClient")
            .field("account_url", &self.account_url)
            .finish_non_exhaustive()
    }
}

impl KlarnaClient {
    pub fn new(cfg: &KlarnaConfig, api_key: Secret, production: bool) -> Result<Self, ConfigError> {
        let mut b = reqwest::Client::builder()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .timeout(Duration::from_millis(cfg.request_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("kassa/", env!("CARGO_PKG_VERSION")));
        if production {
            b = b.https_only(true);
        }
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|source| ConfigError::Read {
                path: p.into(),
                source,
            })
        };
        if let Some(ca) = &cfg.ca_file {
            let pem = read(ca)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", ca.display())))?;
            // A pinned CA replaces the system roots: only that CA's certificates are trusted.
            b = b.tls_certs_only(certs);
        }
        if let Some(id) = &cfg.client_identity_file {
            let pem = read(id)?;
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", id.display())))?;
            b = b.identity(identity);
        }
        let http = b
            .build()
            .map_err(|e| ConfigError::Invalid(format!("HTTP client: {e}")))?;
        let metadata = serde_json::json!({
            "integrator": {"name": "kassa", "module_name": "kassa-agent",
                           "module_version": env!("CARGO_PKG_VERSION")},
            "originators": []
        })
        .to_string();
        Ok(KlarnaClient {
            http,
            account_url: format!(
                "{}/v2/accounts/{}",
                cfg.base_url.trim_end_matches('/'),
                cfg.partner_account_id
            ),
            api_key,
            metadata,
            observer: None,
        })
    }

    pub fn with_observer(mut self, observer: CallObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// First authorize of an in-store payment (with `step_up_config`).
    pub async fn authorize(
        &self,
        body: &AuthorizeRequest,
        opts: CallOptions<'_>,
    ) -> Result<AuthorizeOutcome, KlarnaError> {
        self.authorize_raw(&json(body)?, opts).await
    }

    /// Authorize with an already serialized body: a retry must send the very same bytes, or
    /// Klarna's idempotency check sees a different request under the same key. Every 2xx answer
    /// becomes an outcome; one kassa cannot place is `AuthorizeOutcome::Unplaceable`, never an
    /// error the caller could mistake for a refusal.
    pub async fn authorize_raw(
        &self,
        body: &str,
        opts: CallOptions<'_>,
    ) -> Result<AuthorizeOutcome, KlarnaError> {
        let op = match (opts.session_token, opts.customer_token) {
            (Some(_), _) => Operation::FinalAuthorize,
            (None, Some(_)) => Operation::CustomerTokenAuthorize,
            (None, None) => Operation::Authorize,
        };
        let bytes = self
            .send_bytes(op, Method::POST, paths::AUTHORIZE, Some(body), opts)
            .await?;
        let outcome = answer::authorize_outcome(&bytes);
        if let AuthorizeOutcome::Unplaceable { why, .. } = &outcome {
            tracing::warn!(
                op = op.name(),
                "Klarna's 2xx answer cannot be placed: {why}"
            );
        }
        Ok(outcome)
    }

    pub async fn read_payment_request(
        &self,
        id: &str,
        opts: CallOptions<'_>,
    ) -> Result<RequestRead, KlarnaError> {
        self.on_payment_request(Operation::ReadPaymentRequest, Method::GET, id, opts)
            .await
    }

    pub async fn cancel_payment_request(
        &self,
        id: &str,
        opts: CallOptions<'_>,
    ) -> Result<RequestRead, KlarnaError> {
        self.on_payment_request(Operation::CancelPaymentRequest, Method::DELETE, id, opts)
            .await
    }

    /// GET or DELETE on a payment request; its answer is the request as it now stands.
    async fn on_payment_request(
        &self,
        op: Operation,
        method: Method,
        id: &str,
        opts: CallOptions<'_>,
    ) -> Result<RequestRead, KlarnaError> {
        let path = format!("{}/{}", paths::PAYMENT_REQUESTS, encode(id));
        let bytes = self.send_bytes(op, method, &path, None, opts).await?;
        answer::request_read(&bytes).map_err(KlarnaError::UnknownOutcome)
    }

    pub async fn read_transaction(
        &self,
        id: &str,
        opts: CallOptions<'_>,
    ) -> Result<PaymentTransaction, KlarnaError> {
        let path = format!("{}/{}", paths::TRANSACTIONS, encode(id));
        self.send(Operation::ReadTransaction, Method::GET, &path, None, opts)
            .await
    }

    pub async fn capture(
        &self,
        transaction_id: &str,
        body: &CaptureRequest,
        opts: CallOptions<'_>,
    ) -> Result<serde_json::Value, KlarnaError> {
        self.capture_raw(transaction_id, &json(body)?, opts).await
    }

    pub async fn refund(
        &self,
        transaction_id: &str,
        body: &RefundRequest,
        opts: CallOptions<'_>,
    ) -> Result<serde_json::Value, KlarnaError> {
        self.refund_raw(transaction_id, &json(body)?, opts).await
    }

    /// Refund with an already serialized body (the outbox stores the exact bytes).
    pub async fn refund_raw(
        &self,
        transaction_id: &str,
        body: &str,
        opts: CallOptions<'_>,
    ) -> Result<serde_json::Value, KlarnaError> {
        let path = format!(
            "{}/{}/{}",
            paths::TRANSACTIONS,
            encode(transaction_id),
            paths::REFUNDS
        );
        self.send(Operation::Refund, Method::POST, &path, Some(body), opts)
            .await
    }

    /// Capture with an already serialized body (the outbox stores the exact bytes).
    pub async fn capture_raw(
        &self,
        transaction_id: &str,
        body: &str,
        opts: CallOptions<'_>,
    ) -> Result<serde_json::Value, KlarnaError> {
        let path = format!(
            "{}/{}/{}",
            paths::TRANSACTIONS,
            encode(transaction_id),
            paths::CAPTURES
        );
        self.send(Operation::Capture, Method::POST, &path, Some(body), opts)
            .await
    }

    pub async fn void(
        &self,
        transaction_id: &str,
        opts: CallOptions<'_>,
    ) -> Result<serde_json::Value, KlarnaError> {
        let path = format!(
            "{}/{}/{}",
            paths::TRANSACTIONS,
            encode(transaction_id),
            paths::VOID
        );
        self.send(Operation::Void, Method::POST, &path, Some("{}"), opts)
            .await
    }

    /// Whether Klarna may be offered for this amount (klarna-api.md §5).
    pub async fn eligible(
        &self,
        currency: &str,
        locale: &str,
        amount: i64,
        opts: CallOptions<'_>,
    ) -> Result<bool, KlarnaError> {
        let path = format!(
            "{}?currency={}&locale={}&amount={amount}&intents[]=PAY",
            paths::PRESENTATION,
            encode(currency),
            encode(locale)
        );
        let p: Presentation = self
            .send(Operation::Eligibility, Method::GET, &path, None, opts)
            .await?;
        Ok(match p.instruction.as_deref() {
            Some(i) => !i.eq_ignore_ascii_case("HIDE_KLARNA"),
            None => !p.payment_options.is_empty(),
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&str>,
        opts: CallOptions<'_>,
    ) -> Result<T, KlarnaError> {
        let bytes = self.send_bytes(op, method, path, body, opts).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            tracing::warn!(
                op = op.name(),
                "Klarna answered 2xx with a body kassa cannot read: {e}"
            );
            KlarnaError::UnknownOutcome(format!("unreadable answer: {e}"))
        })
    }

    /// One call: its 2xx body, or what its failure means.
    async fn send_bytes(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&str>,
        opts: CallOptions<'_>,
    ) -> Result<bytes::Bytes, KlarnaError> {
        let (category, class) = op.slo();
        let span = tracing::info_span!(
            "klarna",
            op = op.name(),
            slo_category = category.name(),
            service_class = class.name(),
            correlation_id = opts.correlation_id,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty
        );
        let started = Instant::now();
        let result = self
            .send_inner(&method, path, body, &opts)
            .instrument(span.clone())
            .await;
        let latency = started.elapsed();
        let status = match &result {
            Ok((s, _)) => Some(*s),
            Err(Sent::Status(s, _, _)) => Some(*s),
            Err(Sent::NoAnswer(_) | Sent::Unsent(_)) => None,
        };
        span.record("latency_ms", latency.as_secs_f64() * 1000.0);
        if let Some(s) = status {
            span.record("status", s);
        }
        if let Some(obs) = &self.observer {
            obs(&CallRecord {
                operation: op,
                category,
                class,
                status,
                latency,
                at: started,
            });
        }
        let _e = span.enter();
        match result {
            Ok((_, bytes)) => Ok(bytes),
            Err(Sent::Status(s, headers, bytes)) => {
                let e = classify(s, &headers, &bytes);
                tracing::warn!(error = %e, "Klarna call failed");
                Err(e)
            }
            Err(Sent::NoAnswer(m)) => {
                tracing::warn!("Klarna call got no answer: {m}");
                Err(KlarnaError::UnknownOutcome(m))
            }
            Err(Sent::Unsent(m)) => {
                tracing::warn!("Klarna unreachable: {m}");
                Err(KlarnaError::Unreachable(m))
            }
        }
    }

    async fn send_inner(
        &self,
        method: &Method,
        path: &str,
        body: Option<&str>,
        opts: &CallOptions<'_>,
    ) -> Result<(u16, bytes::Bytes), Sent> {
        let url = format!("{}{}", self.account_url, path);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("Authorization", format!("Basic {}", self.api_key.expose()))
            .header("Partner-Correlation-Id", opts.correlation_id)
            .header("Klarna-Integration-Metadata", &self.metadata);
        if let Some(k) = opts.idempotency_key {
            req = req.header("Klarna-Idempotency-Key", k);
        }
        if let Some(t) = opts.session_token.or(opts.customer_token) {
            req = req.header("Klarna-Network-Session-Token", t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                Sent::Unsent(describe(&e))
            } else {
                Sent::NoAnswer(describe(&e))
            }
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Sent::NoAnswer(describe(&e)))?;
        if status.is_success() {
            Ok((status.as_u16(), bytes))
        } else {
            Err(Sent::Status(status.as_u16(), headers, bytes))
        }
    }
}

fn json<B: Serialize + ?Sized>(body: &B) -> Result<String, KlarnaError> {
    // Kassa's own request types always serialize; this only guards against a future mistake.
    serde_json::to_string(body)
        .map_err(|e| KlarnaError::Unreachable(format!("cannot encode request: {e}")))
}

/// How far a request got.
enum Sent {
    Status(u16, reqwest::header::HeaderMap, bytes::Bytes),
    /// Sent, but no (complete) answer came back: the outcome is unknown.
    NoAnswer(String),
    /// Never left the terminal (no connection).
    Unsent(String),
}

/// The error without its URL's query (never secrets, but keep logs short) and with its cause.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Percent-encodes a path segment or query value (Klarna ids contain ':').
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether an HTTP status is one Klarna's availability formula counts as served (2xx, 3xx, 4xx).
pub fn counts_as_served(status: Option<u16>) -> bool {
    matches!(status, Some(s) if StatusCode::from_u16(s).is_ok_and(|s| !s.is_server_error()) && s >= 200)
}
