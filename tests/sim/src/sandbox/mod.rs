//! The Klarna sandbox server: the `klarna` model behind real HTTP(S) on loopback, plus the test
//! controls of klarna-api.md §7 (play the customer, inject faults, read effects, seed orders,
//! deliver signed webhooks). Used in-process by tests and standalone by `kassa sandbox`.

pub mod klarna;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use klarna::{Answer, Call, Model};
pub use klarna::{CustomerAction, Effect, PaymentRequest, Transaction};

/// Largest request body the sandbox reads.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    pub tls: bool,
    pub account_id: String,
    /// The API key kassa must send (`Authorization: Basic <key>`).
    pub api_key: String,
    /// Lifetime of a payment request before it expires.
    pub request_lifetime: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            account_id: "krn:partner:global:account:test:SANDBOX1".into(),
            api_key: "c2FuZGJveDpzZWNyZXQ=".into(),
            request_lifetime: Duration::from_secs(3 * 3600),
        }
    }
}

/// A fault to inject: on one route (see `Model::route_of`, e.g. "authorize", "refund") or all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Wait this long before handling.
    Latency { ms: u64 },
    /// Answer this 5xx without handling.
    ServerError { status: u16 },
    /// Answer 429 with this Retry-After, without handling.
    RateLimited { retry_after_secs: f64 },
    /// Handle, then answer 200 with half of the JSON body.
    Truncated,
    /// Handle, then answer 200 with a body that is not JSON.
    Malformed,
    /// Handle (the effect is applied), then drop the connection without answering.
    LoseResponse,
    /// Drop the connection without handling.
    Reset,
    /// Answer an authorization (first or final) 200 with the result DECLINED, without handling:
    /// Klarna's risk decision said no.
    Declined,
    /// Handle (the effect is applied: a final authorization charges the customer), then answer
    /// 200 with the answer's result but without its payment transaction: an answer a client
    /// cannot place, which it must never read as a decline.
    Unplaceable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Route name, or None for every Klarna route.
    pub route: Option<String>,
    pub fault: Fault,
    /// How many requests it hits; None until cleared.
    pub times: Option<u32>,
}

/// Requests a rate limiter lets through at once: 50 ms worth, at least one. A limiter with no
/// burst at all would punish a client for a timer firing a millisecond early.
pub fn rate_burst(per_sec: f64) -> f64 {
    (per_sec * 0.05).max(1.0)
}

/// Requests per second the sandbox serves before answering 429, like Klarna's per-category limits.
#[derive(Debug)]
struct RateLimit {
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

struct Shared {
    model: Mutex<Model>,
    faults: Mutex<Vec<FaultRule>>,
    rate: Mutex<Option<RateLimit>>,
    /// Requests the sandbox received per route (whatever their fate).
    hits: Mutex<Vec<(String, Instant)>>,
    /// Requests that were served (not throttled, faulted or refused) per route, with their time.
    served: Mutex<Vec<(String, Instant)>>,
    http: reqwest::Client,
    /// Klarna is down: from the moment `set_outage(true)` returns, no request is answered, not
    /// even on a connection accepted before (the serve loop closes those a moment later).
    down: std::sync::atomic::AtomicBool,
    /// Whether the serve loop has closed the port and its connections for the outage.
    closed: (Mutex<bool>, std::sync::Condvar),
}

/// A running sandbox; dropping it stops the server.
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: bool,
    ca_pem: Option<String>,
    outage: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("sandbox TLS setup: {0}")]
    Tls(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sandbox {
    pub async fn start(cfg: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let scheme = if cfg.tls { "https" } else { "http" };
        let host = if cfg.tls {
            format!("localhost:{}", addr.port())
        } else {
            addr.to_string()
        };
        let public_base = format!("{scheme}://{host}");
        let (acceptor, ca_pem) = if cfg.tls {
            let (a, ca) = tls_acceptor()?;
            (Some(a), Some(ca))
        } else {
            (None, None)
        };
        let shared = Arc::new(Shared {
            model: Mutex::new(Model::new(
                cfg.account_id,
                cfg.api_key,
                cfg.request_lifetime,
                public_base,
            )),
            faults: Mutex::new(vec![]),
            rate: Mutex::new(None),
            hits: Mutex::new(vec![]),
            served: Mutex::new(vec![]),
            down: std::sync::atomic::AtomicBool::new(false),
            closed: (Mutex::new(false), std::sync::Condvar::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| SandboxError::Tls(e.to_string()))?,
        });
        let (outage, outage_rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, addr, acceptor, shared.clone(), outage_rx));
        Ok(Sandbox {
            shared,
            addr,
            tls: cfg.tls,
            ca_pem,
            outage,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL kassa's `klarna.base_url` should point at.
    pub fn base_url(&self) -> String {
        lock(&self.shared.model).public_base.clone()
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// PEM of the CA that signed the sandbox's certificate (HTTPS only), for pinning.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn account_id(&self) -> String {
        lock(&self.shared.model).account_id.clone()
    }

    pub fn api_key(&self) -> String {
        lock(&self.shared.model).api_key.clone()
    }

    /// Klarna down: connections are refused until `set_outage(false)`. Returns once the port is
    /// closed (waiting at most a second, for a runtime with one thread that cannot close it
    /// meanwhile); a request already on an open connection is dropped unanswered, never served.
    pub fn set_outage(&self, down: bool) {
        use std::sync::atomic::Ordering;
        self.shared.down.store(down, Ordering::SeqCst);
        if !down {
            *lock(&self.shared.closed.0) = false;
        }
        self.outage.send_replace(down);
        if down {
            let (closed, wake) = &self.shared.closed;
            let guard = lock(closed);
            let _unused = wake
                .wait_timeout_while(guard, Duration::from_secs(1), |c| !*c)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn push_fault(&self, rule: FaultRule) {
        lock(&self.shared.faults).push(rule);
    }

    pub fn fault(&self, route: Option<&str>, fault: Fault, times: Option<u32>) {
        self.push_fault(FaultRule {
            route: route.map(String::from),
            fault,
            times,
        });
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Serve at most `per_sec` Klarna requests a second (with a 50 ms burst); answer 429 beyond.
    pub fn set_rate_limit(&self, per_sec: Option<f64>) {
        *lock(&self.shared.rate) = per_sec.map(|p| RateLimit {
            per_sec: p,
            tokens: 1.0,
            last: Instant::now(),
        });
    }

    pub fn effects(&self) -> Vec<Effect> {
        lock(&self.shared.model).effects.clone()
    }

    pub fn requests(&self) -> Vec<PaymentRequest> {
        let mut v: Vec<_> = lock(&self.shared.model)
            .requests
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|r| r.created_at);
        v
    }

    pub fn request(&self, id: &str) -> Option<PaymentRequest> {
        lock(&self.shared.model).requests.get(id).cloned()
    }

    pub fn transactions(&self) -> Vec<Transaction> {
        let mut v: Vec<_> = lock(&self.shared.model)
            .transactions
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|t| t.created_at);
        v
    }

    /// When each request to a route arrived (including faulted and throttled ones).
    pub fn hit_times(&self, route: &str) -> Vec<Instant> {
        lock(&self.shared.hits)
            .iter()
            .filter(|(r, _)| r == route)
            .map(|(_, t)| *t)
            .collect()
    }

    /// When each request to a route that the model actually handled arrived.
    pub fn served_times(&self, route: &str) -> Vec<Instant> {
        lock(&self.shared.served)
            .iter()
            .filter(|(r, _)| r == route)
            .map(|(_, t)| *t)
            .collect()
    }

    /// How many requests reached a route (including faulted ones).
    pub fn hits(&self, route: &str) -> usize {
        lock(&self.shared.hits)
            .iter()
            .filter(|(r, _)| r == route)
            .count()
    }

    /// The customer acts on their phone.
    pub fn customer(
        &self,
        request_id: &str,
        action: CustomerAction,
    ) -> Result<PaymentRequest, String> {
        let r = lock(&self.shared.model).customer(request_id, action);
        self.shared.clone().deliver_webhooks();
        r
    }

    pub fn seed_order(&self, currency: &str, reference: &str, lines: Vec<Value>) -> Transaction {
        lock(&self.shared.model).seed_order(currency, reference, lines)
    }

    /// Registers a webhook directly (as `POST /v2/notification/webhooks` would); returns the key.
    pub fn add_webhook(&self, url: &str, key_id: &str, secret: &str) {
        let mut m = lock(&self.shared.model);
        m.signing_keys.insert(key_id.into(), secret.into());
        m.webhooks.push(klarna::Webhook {
            webhook_id: format!("webhook-{key_id}"),
            url: url.into(),
            event_types: vec![],
            signing_key_id: key_id.into(),
        });
    }
}

/// Accepts connections until the sandbox is dropped; during an outage the port is closed, so
/// connections are refused exactly as with a real outage.
async fn serve(
    first: TcpListener,
    addr: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut outage: watch::Receiver<bool>,
) {
    let mut listener = Some(first);
    loop {
        let Some(l) = listener.take() else {
            // Wait for the outage to end, then reopen the same port.
            while *outage.borrow_and_update() {
                if outage.changed().await.is_err() {
                    return;
                }
            }
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!("sandbox cannot rebind {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            continue;
        };
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = l.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    conns.spawn(connection(stream, acceptor.clone(), shared.clone()));
                }
                changed = outage.changed() => {
                    if changed.is_err() { return; }
                    if *outage.borrow_and_update() { break; }
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(l);
        conns.abort_all();
        let (closed, wake) = &shared.closed;
        *lock(closed) = true;
        wake.notify_all();
    }
}

async fn connection(
    stream: TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let _ = stream.set_nodelay(true);
    let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
    let builder = hyper::server::conn::http1::Builder::new();
    match acceptor {
        Some(a) => {
            let Ok(tls) = a.accept(stream).await else {
                return;
            };
            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
        }
        None => {
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        }
    }
}

/// Dropping the connection without an answer: hyper closes it when the service fails.
#[derive(Debug)]
struct DropConnection;
impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for DropConnection {}

type HttpResponse = Response<Full<Bytes>>;

fn respond(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
    headers: &[(&str, String)],
) -> HttpResponse {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", content_type);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Full::new(body.into()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn json_response(a: &Answer, correlation: &str) -> HttpResponse {
    let mut headers: Vec<(&str, String)> = a.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    headers.push(("klarna-correlation-id", correlation.to_string()));
    respond(a.status, "application/json", a.body.to_string(), &headers)
}

impl Shared {
    /// The first matching fault rule, consuming one of its uses.
    fn take_fault(&self, route: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let i = faults
            .iter()
            .position(|r| r.route.as_deref().is_none_or(|x| x == route))?;
        let fault = faults[i].fault.clone();
        if let Some(n) = faults[i].times.as_mut() {
            *n -= 1;
            if *n == 0 {
                faults.remove(i);
            }
        }
        Some(fault)
    }

    fn throttled(&self) -> Option<f64> {
        let mut rate = lock(&self.rate);
        let r = rate.as_mut()?;
        let now = Instant::now();
        r.tokens = (r.tokens + now.duration_since(r.last).as_secs_f64() * r.per_sec)
            .min(rate_burst(r.per_sec));
        r.last = now;
        if r.tokens >= 1.0 {
            r.tokens -= 1.0;
            None
        } else {
            Some((1.0 - r.tokens) / r.per_sec)
        }
    }

    /// Sends pending state changes to registered webhooks, signed (klarna-api.md §6).
    fn deliver_webhooks(self: Arc<Self>) {
        let (changes, hooks, keys) = {
            let mut m = lock(&self.model);
            if m.webhooks.is_empty() {
                m.outbox.clear();
                return;
            }
            (
                std::mem::take(&mut m.outbox),
                m.webhooks.clone(),
                m.signing_keys.clone(),
            )
        };
        for change in changes {
            for h in &hooks {
                if !h.event_types.is_empty() && !h.event_types.contains(&change.event_type) {
                    continue;
                }
                let Some(secret) = keys.get(&h.signing_key_id).cloned() else {
                    continue;
                };
                let body = json!({
                    "metadata": {"event_type": change.event_type, "event_id": uuid::Uuid::new_v4().to_string(),
                        "event_version": "v2", "occurred_at": chrono::Utc::now().to_rfc3339(),
                        "webhook_id": h.webhook_id, "live": false},
                    "payload": change.payload,
                })
                .to_string();
                let sig = sign(&secret, body.as_bytes());
                let (url, key_id, http) =
                    (h.url.clone(), h.signing_key_id.clone(), self.http.clone());
                tokio::spawn(async move {
                    // Klarna retries for 12 h; the sandbox retries a few times, quickly.
                    for attempt in 0..5u32 {
                        let r = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("Klarna-Signature", &sig)
                            .header("Klarna-Signing-Key-Id", &key_id)
                            .body(body.clone())
                            .send()
                            .await;
                        if r.is_ok_and(|r| r.status().is_success()) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                });
            }
        }
    }
}

/// HMAC-SHA256 of the body with the signing key, as lowercase hex.
pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256>>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<HttpResponse, DropConnection> {
    if shared.down.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(DropConnection);
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(respond(413, "text/plain", "body too large", &[])),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let method = parts.method.as_str().to_string();
    if path.starts_with("/sandbox/") {
        return Ok(control(&shared, &method, &path, &body));
    }
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let session_token = header("klarna-network-session-token");
    let route = Model::route_of(
        &method,
        &path,
        Model::is_final_authorize(session_token.as_deref(), &body),
    );
    lock(&shared.hits).push((route.to_string(), Instant::now()));
    let correlation = header("partner-correlation-id").unwrap_or_default();
    let klarna_corr = uuid::Uuid::new_v4().to_string();
    let mut post_fault = None;
    match shared.take_fault(route) {
        Some(Fault::Latency { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::ServerError { status }) => {
            let a = klarna::error(
                status,
                "TECHNICAL_ERROR",
                "INTERNAL_ERROR",
                "injected server error",
                vec![],
            );
            return Ok(json_response(&a, &klarna_corr));
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut a = klarna::error(
                429,
                "TECHNICAL_ERROR",
                "RATE_LIMITED",
                "too many requests",
                vec![],
            );
            a.headers
                .push(("retry-after", format!("{retry_after_secs}")));
            return Ok(json_response(&a, &klarna_corr));
        }
        Some(Fault::Reset) => return Err(DropConnection),
        Some(Fault::Declined) => {
            let a = klarna::Answer {
                status: 200,
                body: serde_json::json!({"payment_transaction_response":
                    {"result": "DECLINED"}}),
                headers: vec![],
            };
            return Ok(json_response(&a, &klarna_corr));
        }
        Some(f) => post_fault = Some(f),
        None => {}
    }
    if let Some(wait) = shared.throttled() {
        let mut a = klarna::error(
            429,
            "TECHNICAL_ERROR",
            "RATE_LIMITED",
            "rate limit exceeded",
            vec![],
        );
        a.headers.push(("retry-after", format!("{wait:.3}")));
        return Ok(json_response(&a, &klarna_corr));
    }
    lock(&shared.served).push((route.to_string(), Instant::now()));
    let answer = {
        let auth = header("authorization");
        let key = header("klarna-idempotency-key");
        // The customer code of a first authorization; older pages name this header.
        let interop = header("klarna-interoperability-token");
        let call = Call {
            method: &method,
            path: &path,
            query: &query,
            authorization: auth.as_deref(),
            idempotency_key: key.as_deref(),
            session_token: session_token.as_deref(),
            interoperability_token: interop.as_deref(),
            body: &body,
        };
        lock(&shared.model).handle(&call)
    };
    shared.clone().deliver_webhooks();
    let _ = correlation;
    match post_fault {
        Some(Fault::LoseResponse) => Err(DropConnection),
        Some(Fault::Truncated) => {
            let text = answer.body.to_string();
            let half = text.len() / 2;
            Ok(respond(
                200,
                "application/json",
                text[..half].to_string(),
                &[],
            ))
        }
        Some(Fault::Unplaceable) => {
            let mut body = answer.body.clone();
            if let Some(r) = body
                .get_mut("payment_transaction_response")
                .and_then(Value::as_object_mut)
            {
                r.remove("payment_transaction");
            }
            if let Some(o) = body.as_object_mut() {
                o.remove("payment_transaction");
            }
            Ok(respond(200, "application/json", body.to_string(), &[]))
        }
        Some(Fault::Malformed) => Ok(respond(
            200,
            "application/json",
            "{\"payment_transaction_response\": <html>",
            &[],
        )),
        _ => Ok(json_response(&answer, &klarna_corr)),
    }
}

/// The test controls under `/sandbox/` (never part of Klarna's API).
fn control(shared: &Arc<Shared>, method: &str, path: &str, body: &[u8]) -> HttpResponse {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ok_json = |v: Value| respond(200, "application/json", v.to_string(), &[]);
    let bad = |status: u16, m: String| {
        respond(
            status,
            "application/json",
            json!({"error": m}).to_string(),
            &[],
        )
    };
    match (method, segs.as_slice()) {
        ("GET", ["sandbox", "pay", uuid]) => {
            let m = lock(&shared.model);
            match m.request_by_uuid(uuid) {
                Some(r) => respond(200, "text/html; charset=utf-8", customer_page(r), &[]),
                None => bad(404, "no such payment request".into()),
            }
        }
        ("POST", ["sandbox", "pay", uuid, action]) => {
            let action = match *action {
                "open" => CustomerAction::Open,
                "approve" => CustomerAction::Approve,
                "decline" => CustomerAction::Decline,
                "abandon" => CustomerAction::Abandon,
                _ => return bad(404, "unknown action".into()),
            };
            let id = lock(&shared.model)
                .request_by_uuid(uuid)
                .map(|r| r.payment_request_id.clone());
            let Some(id) = id else {
                return bad(404, "no such payment request".into());
            };
            let r = lock(&shared.model).customer(&id, action);
            shared.clone().deliver_webhooks();
            match r {
                Ok(_) => respond(
                    303,
                    "text/plain",
                    "",
                    &[("location", format!("/sandbox/pay/{uuid}"))],
                ),
                Err(e) => bad(409, e),
            }
        }
        ("GET", ["sandbox", "effects"]) => ok_json(json!(lock(&shared.model).effects)),
        ("GET", ["sandbox", "requests"]) => {
            let v: Vec<Value> = lock(&shared.model)
                .requests
                .values()
                .map(|r| json!(r))
                .collect();
            ok_json(json!(v))
        }
        ("POST", ["sandbox", "faults"]) => match serde_json::from_slice::<FaultRule>(body) {
            Ok(rule) => {
                lock(&shared.faults).push(rule);
                ok_json(json!({"ok": true}))
            }
            Err(e) => bad(400, format!("invalid fault rule: {e}")),
        },
        ("DELETE", ["sandbox", "faults"]) => {
            lock(&shared.faults).clear();
            ok_json(json!({"ok": true}))
        }
        ("POST", ["sandbox", "orders"]) => {
            #[derive(Deserialize)]
            struct Order {
                currency: String,
                reference: String,
                line_items: Vec<Value>,
            }
            match serde_json::from_slice::<Order>(body) {
                Ok(o) => {
                    let t = lock(&shared.model).seed_order(&o.currency, &o.reference, o.line_items);
                    respond(201, "application/json", json!(t).to_string(), &[])
                }
                Err(e) => bad(400, format!("invalid order: {e}")),
            }
        }
        _ => bad(404, "unknown sandbox control".into()),
    }
}

/// The page a phone opens from the QR code: the payment and buttons to play the customer.
fn customer_page(r: &PaymentRequest) -> String {
    let uuid = r.payment_request_id.rsplit(':').next().unwrap_or_default();
    let exp = iso_currency::Currency::from_code(&r.currency)
        .and_then(|c| c.exponent())
        .unwrap_or(2) as u32;
    let scale = 10i64.pow(exp);
    let amount = if exp == 0 {
        r.amount.to_string()
    } else {
        format!(
            "{}.{:0w$}",
            r.amount / scale,
            r.amount % scale,
            w = exp as usize
        )
    };
    let buttons = if matches!(r.state.as_str(), "SUBMITTED" | "IN_PROGRESS") {
        ["open", "approve", "decline", "abandon"]
            .iter()
            .map(|a| format!(r#"<form method="post" action="/sandbox/pay/{uuid}/{a}"><button>{a}</button></form>"#))
            .collect::<String>()
    } else {
        String::new()
    };
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Klarna sandbox</title><style>body{{font-family:sans-serif;max-width:30em;margin:2em auto}}button{{font-size:1.3em;margin:.3em;padding:.4em 1em}}</style></head>
<body><h1>Klarna sandbox</h1><p>Pay <strong>{amount} {cur}</strong></p><p>State: <strong>{state}</strong></p>{buttons}</body></html>"#,
        cur = r.currency,
        state = r.state,
    )
}

/// A CA and a certificate for localhost/127.0.0.1 signed by it, made fresh at start.
fn tls_acceptor() -> Result<(tokio_rustls::TlsAcceptor, String), SandboxError> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let err = |e: &dyn std::fmt::Display| SandboxError::Tls(e.to_string());
    let ca_key = KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kassa sandbox test CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| err(&e))?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().map_err(|e| err(&e))?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(|e| err(&e))?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(|e| err(&e))?;
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| err(&e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            key_der,
        )
        .map_err(|e| err(&e))?;
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_cert.pem(),
    ))
}
