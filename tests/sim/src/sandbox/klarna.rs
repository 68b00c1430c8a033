//! The sandbox's model of Klarna (klarna-api.md §1–§6): payment requests, transactions, captures,
//! refunds, idempotency and validation, as state behind one lock. Written from the contract, not
//! from kassa's client, so a test that passes here means the client follows the contract.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Idempotency records are honoured this long [doc].
const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);
/// Session tokens from a completed request are valid this long [doc].
const TOKEN_LIFETIME: chrono::Duration = chrono::Duration::minutes(60);
/// Per-transaction operation limits [doc].
const MAX_CAPTURES: usize = 200;
const MAX_REFUNDS: usize = 200;
const MAX_OPERATIONS: usize = 500;
/// Currencies the sandbox offers Klarna in (eligibility).
const ELIGIBLE_CURRENCIES: &[&str] = &["SEK", "NOK", "DKK", "EUR", "GBP", "CHF", "PLN", "USD"];
/// Largest amount the sandbox offers Klarna for (eligibility), in minor units.
pub const MAX_ELIGIBLE_AMOUNT: i64 = 10_000_000;

/// One HTTP answer of the model.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Answer {
            status: 200,
            body,
            headers: vec![],
        }
    }
    fn created(body: Value) -> Self {
        Answer {
            status: 201,
            body,
            headers: vec![],
        }
    }
}

/// Klarna's error body (klarna-api.md §1).
pub fn error(
    status: u16,
    error_type: &str,
    code: &str,
    message: &str,
    errors: Vec<(&str, String)>,
) -> Answer {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|(p, m)| json!({"parameter": p, "error_message": m}))
        .collect();
    Answer {
        status,
        body: json!({
            "error_id": uuid::Uuid::new_v4().to_string(),
            "error_type": error_type,
            "error_code": code,
            "error_message": message,
            "errors": errors,
        }),
        headers: vec![],
    }
}

fn validation(message: &str, errors: Vec<(&str, String)>) -> Answer {
    error(400, "INPUT_ERROR", "VALIDATION_ERROR", message, errors)
}

fn not_found(what: &str) -> Answer {
    error(
        404,
        "RESOURCE_ERROR",
        "NOT_FOUND",
        &format!("{what} not found"),
        vec![],
    )
}

fn not_allowed(message: &str) -> Answer {
    error(
        403,
        "RESOURCE_ERROR",
        "OPERATION_NOT_ALLOWED",
        message,
        vec![],
    )
}

fn conflict(code: &str, message: &str) -> Answer {
    error(409, "RESOURCE_ERROR", code, message, vec![])
}

/// A payment request (the QR code's subject).
#[derive(Debug, Clone, Serialize)]
pub struct PaymentRequest {
    pub payment_request_id: String,
    pub payment_request_reference: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub state: String,
    pub previous_state: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub payment_request_url: String,
    /// The authorize body that created it (for the final authorization's checks).
    #[serde(skip)]
    pub authorize_body: Value,
    pub klarna_network_session_token: Option<String>,
    #[serde(skip)]
    pub token_issued_at: Option<DateTime<Utc>>,
    /// Set once a final authorization used the token: a token pays once.
    pub payment_transaction_id: Option<String>,
    pub interoperability_token: Option<String>,
}

/// A captured, refunded or pending payment transaction.
#[derive(Debug, Clone, Serialize)]
pub struct Transaction {
    pub payment_transaction_id: String,
    pub payment_transaction_reference: Option<String>,
    pub state: String,
    pub currency: String,
    pub amount: i64,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    pub line_items: Vec<Value>,
    pub payment_captures: Vec<Value>,
    pub payment_refunds: Vec<Value>,
    pub operations: usize,
    pub created_at: DateTime<Utc>,
}

impl Transaction {
    /// The transaction as an authorization answer carries it [doc, "Final authorization" and
    /// "Auto-capture" samples]: no state or totals, the captures made with it.
    fn to_authorize_json(&self) -> Value {
        let mut v = json!({
            "payment_transaction_id": self.payment_transaction_id,
            "payment_transaction_reference": self.payment_transaction_reference,
            "amount": self.amount,
            "currency": self.currency,
            "payment_funding": {},
            "payment_pricing": {},
        });
        if !self.payment_captures.is_empty() {
            v["payment_captures"] = json!(self.payment_captures);
        }
        v
    }

    fn to_json(&self) -> Value {
        json!({
            "payment_transaction_id": self.payment_transaction_id,
            "payment_transaction_reference": self.payment_transaction_reference,
            "state": self.state,
            "currency": self.currency,
            "amount": self.amount,
            "captured_amount": self.captured_amount,
            "refunded_amount": self.refunded_amount,
            "supplementary_purchase_data": {"line_items": self.line_items},
            "payment_captures": self.payment_captures,
            "payment_refunds": self.payment_refunds,
        })
    }
}

/// Something that changed money or a request at "Klarna": what tests count to prove nothing was
/// lost or applied twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effect {
    pub kind: String,
    pub id: String,
    pub amount: i64,
    pub idempotency_key: Option<String>,
}

struct IdempotencyRecord {
    body_hash: [u8; 32],
    route: String,
    answer: Answer,
    at: DateTime<Utc>,
}

/// A state change a webhook subscriber hears about.
#[derive(Debug, Clone)]
pub struct StateChange {
    pub event_type: String,
    pub payload: Value,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub webhook_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub signing_key_id: String,
}

/// All of the sandbox's Klarna state.
pub struct Model {
    pub account_id: String,
    pub api_key: String,
    pub request_lifetime: Duration,
    /// Where payment request URLs point (the sandbox's own customer page).
    pub public_base: String,
    pub requests: HashMap<String, PaymentRequest>,
    pub transactions: HashMap<String, Transaction>,
    pub effects: Vec<Effect>,
    idempotency: HashMap<String, IdempotencyRecord>,
    pub signing_keys: HashMap<String, String>,
    pub webhooks: Vec<Webhook>,
    /// Changes waiting to be delivered as webhooks.
    pub outbox: Vec<StateChange>,
    /// Requests that may still expire, by expiry: each call looks only at the due ones, as
    /// Klarna's latency does not grow with the number of requests ever made.
    expiries: std::collections::BTreeSet<(DateTime<Utc>, String)>,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn hash_body(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn request_id() -> String {
    format!("krn:payment:eu1:request:{}", uuid::Uuid::new_v4())
}

fn transaction_id() -> String {
    format!("krn:payment:eu1:transaction:{}", uuid::Uuid::new_v4())
}

/// The parts of a request the model needs.
pub struct Call<'a> {
    pub method: &'a str,
    /// Path segments after `/v2/accounts/{account}` (or the whole path for notification routes).
    pub path: &'a str,
    pub query: &'a str,
    pub authorization: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub session_token: Option<&'a str>,
    pub interoperability_token: Option<&'a str>,
    pub body: &'a [u8],
}

impl Model {
    pub fn new(
        account_id: String,
        api_key: String,
        request_lifetime: Duration,
        public_base: String,
    ) -> Self {
        Model {
            account_id,
            api_key,
            request_lifetime,
            public_base,
            requests: HashMap::new(),
            transactions: HashMap::new(),
            effects: Vec::new(),
            idempotency: HashMap::new(),
            signing_keys: HashMap::new(),
            webhooks: Vec::new(),
            outbox: Vec::new(),
            expiries: std::collections::BTreeSet::new(),
        }
    }

    /// Whether an authorize call is the final authorization: a session token in the
    /// `Klarna-Network-Session-Token` header and no `step_up_config` [doc]. A first authorization
    /// may carry a customer's token in the same header, with `step_up_config`.
    pub fn is_final_authorize(session_token: Option<&str>, body: &[u8]) -> bool {
        session_token.is_some()
            && serde_json::from_slice::<Value>(body)
                .map(|b| b.get("step_up_config").is_none_or(Value::is_null))
                .unwrap_or(true)
    }

    /// Which Klarna route a path is, for faults and idempotency scoping.
    pub fn route_of(method: &str, path: &str, final_authorize: bool) -> &'static str {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segs.as_slice()) {
            ("POST", ["v2", "accounts", _, "payment", "authorize"]) if final_authorize => {
                "final_authorize"
            }
            ("POST", ["v2", "accounts", _, "payment", "authorize"]) => "authorize",
            ("GET", ["v2", "accounts", _, "payment", "requests", _]) => "read_request",
            ("DELETE", ["v2", "accounts", _, "payment", "requests", _]) => "cancel_request",
            ("GET", ["v2", "accounts", _, "payment", "transactions", _]) => "read_transaction",
            (
                "POST",
                [
                    "v2",
                    "accounts",
                    _,
                    "payment",
                    "transactions",
                    _,
                    "captures",
                ],
            ) => "capture",
            ("POST", ["v2", "accounts", _, "payment", "transactions", _, "refunds"]) => "refund",
            ("POST", ["v2", "accounts", _, "payment", "transactions", _, "void"]) => "void",
            ("GET", ["v2", "accounts", _, "payment", "presentation"]) => "presentation",
            (_, ["v2", "notification", ..]) => "notification",
            _ => "unknown",
        }
    }

    /// Handles one Klarna API call.
    pub fn handle(&mut self, c: &Call<'_>) -> Answer {
        self.expire_requests();
        if c.authorization != Some(format!("Basic {}", self.api_key).as_str()) {
            return error(
                401,
                "ACCESS_ERROR",
                "UNAUTHORIZED",
                "missing or wrong credentials",
                vec![],
            );
        }
        let segs: Vec<&str> = c.path.trim_matches('/').split('/').collect();
        if let ["v2", "notification", rest @ ..] = segs.as_slice() {
            return self.notification(c, rest);
        }
        let rest = match segs.as_slice() {
            ["v2", "accounts", account, rest @ ..] => {
                if *account != self.account_id {
                    return error(
                        403,
                        "ACCESS_ERROR",
                        "ACCESS_DENIED",
                        "not allowed to act for this account",
                        vec![],
                    );
                }
                rest.to_vec()
            }
            _ => return not_found("route"),
        };
        let route = Self::route_of(
            c.method,
            c.path,
            Self::is_final_authorize(c.session_token, c.body),
        );
        let needs_key = matches!(c.method, "POST" | "PATCH");
        if needs_key {
            let Some(key) = c
                .idempotency_key
                .filter(|k| !k.trim().is_empty() && k.len() <= 255)
            else {
                return validation(
                    "Klarna-Idempotency-Key is required on every POST and PATCH",
                    vec![("Klarna-Idempotency-Key", "missing".into())],
                );
            };
            let h = hash_body(c.body);
            if let Some(rec) = self.idempotency.get(key)
                && now() - rec.at < IDEMPOTENCY_WINDOW
            {
                if rec.body_hash == h && rec.route == route {
                    return rec.answer.clone();
                }
                return conflict(
                    "IDEMPOTENCY_KEY_REUSED",
                    "this idempotency key was used with a different request in the last 24 hours",
                );
            }
            let answer = self.dispatch(c, &rest, Some(key));
            // Server errors are never remembered: a retry must be able to succeed.
            if answer.status < 500 {
                self.idempotency.insert(
                    key.to_string(),
                    IdempotencyRecord {
                        body_hash: h,
                        route: route.to_string(),
                        answer: answer.clone(),
                        at: now(),
                    },
                );
            }
            return answer;
        }
        self.dispatch(c, &rest, None)
    }

    fn dispatch(&mut self, c: &Call<'_>, rest: &[&str], key: Option<&str>) -> Answer {
        let body = || -> Result<Value, Answer> {
            serde_json::from_slice::<Value>(c.body)
                .map_err(|e| validation(&format!("request body is not valid JSON: {e}"), vec![]))
        };
        let res = match (c.method, rest) {
            ("POST", ["payment", "authorize"]) => body().map(|b| self.authorize(c, &b, key)),
            ("GET", ["payment", "requests", id]) => Ok(self.read_request(id)),
            ("DELETE", ["payment", "requests", id]) => Ok(self.cancel_request(id)),
            ("GET", ["payment", "transactions", id]) => Ok(self.transactions.get(*id).map_or_else(
                || not_found("payment transaction"),
                |t| Answer::ok(t.to_json()),
            )),
            ("POST", ["payment", "transactions", id, "captures"]) => {
                body().map(|b| self.capture(id, &b, key))
            }
            ("POST", ["payment", "transactions", id, "refunds"]) => {
                body().map(|b| self.refund(id, &b, key))
            }
            ("POST", ["payment", "transactions", id, "void"]) => Ok(self.void(id, key)),
            ("GET", ["payment", "presentation"]) => Ok(self.presentation(c.query)),
            _ => Err(not_found("route")),
        };
        res.unwrap_or_else(|e| e)
    }

    fn expire_requests(&mut self) {
        let t = now();
        let mut changes = vec![];
        while let Some((at, id)) = self.expiries.first().cloned() {
            if at > t {
                break;
            }
            self.expiries.pop_first();
            if let Some(r) = self.requests.get_mut(&id)
                && matches!(r.state.as_str(), "SUBMITTED" | "IN_PROGRESS")
            {
                r.previous_state = Some(std::mem::replace(&mut r.state, "EXPIRED".into()));
                changes.push(r.clone());
            }
        }
        for r in changes {
            self.notify_request(&r);
        }
    }

    fn request_json(&self, r: &PaymentRequest) -> Value {
        let mut v = json!({
            "payment_request_id": r.payment_request_id,
            "payment_request_reference": r.payment_request_reference,
            "amount": r.amount,
            "currency": r.currency,
            "state": r.state,
            "expires_at": r.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "created_at": r.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        // The customer interaction while the customer can still act [doc]; the documented
        // answers in final states carry none.
        if matches!(r.state.as_str(), "SUBMITTED" | "IN_PROGRESS") {
            v["state_context"] = json!({"customer_interaction": {
                "method": "HANDOVER",
                "payment_request_id": r.payment_request_id,
                "payment_request_url": r.payment_request_url,
            }});
        }
        if let Some(p) = &r.previous_state {
            v["previous_state"] = json!(p);
        }
        if let Some(c) = r.canceled_at {
            v["canceled_at"] = json!(c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        // The session token sits inside `state_context` [doc].
        if r.state == "COMPLETED"
            && let Some(t) = &r.klarna_network_session_token
        {
            v["state_context"]["klarna_network_session_token"] = json!(t);
        }
        v
    }

    /// Validates where the purchase happens [draft in-store pages]: `point_of_checkout` names the
    /// store by exactly one of `store_id` or `store_reference` (onboarded stores) or a `store`
    /// object (stores not onboarded); `point_of_transaction` of type `TERMINAL` names its terminal.
    fn validate_point_of_sale(b: &Value) -> Result<(), Answer> {
        let mut errors = vec![];
        if let Some(pc) = b.get("point_of_checkout").filter(|v| !v.is_null()) {
            let named = ["store_id", "store_reference", "store"]
                .iter()
                .filter(|k| pc.get(**k).is_some_and(|v| !v.is_null()))
                .count();
            if named != 1 {
                errors.push((
                    "point_of_checkout",
                    "give exactly one of store_id, store_reference or store".to_string(),
                ));
            }
            if pc
                .get("store")
                .is_some_and(|s| !s.is_null() && !s.is_object())
            {
                errors.push(("point_of_checkout.store", "must be an object".to_string()));
            }
            for k in ["store_id", "store_reference"] {
                if pc
                    .get(k)
                    .is_some_and(|v| v.as_str().is_none_or(|s| s.trim().is_empty()))
                {
                    errors.push((
                        "point_of_checkout",
                        format!("{k} must be a non-empty string"),
                    ));
                }
            }
        }
        if let Some(pt) = b.get("point_of_transaction").filter(|v| !v.is_null())
            && pt["type"].as_str() == Some("TERMINAL")
            && pt["terminal_reference"]
                .as_str()
                .is_none_or(|s| s.trim().is_empty())
        {
            errors.push((
                "point_of_transaction.terminal_reference",
                "required for type TERMINAL".to_string(),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(validation("the point of sale is not valid", errors))
        }
    }

    /// Validates currency, amount and line items as Klarna does; returns (currency, amount, lines).
    fn validate_purchase(b: &Value) -> Result<(String, i64, Vec<Value>), Answer> {
        let mut errors = vec![];
        let currency = b["currency"].as_str().unwrap_or_default().to_string();
        if iso_currency::Currency::from_code(&currency).is_none() {
            errors.push(("currency", "must be an ISO 4217 currency code".to_string()));
        }
        let amount = b["request_payment_transaction"]["amount"].as_i64();
        let amount = match amount {
            Some(a) if (1..=2_147_483_647).contains(&a) => a,
            _ => {
                errors.push((
                    "request_payment_transaction.amount",
                    "must be between 1 and 2147483647".into(),
                ));
                0
            }
        };
        let lines = b["supplementary_purchase_data"]["line_items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut sum: i64 = 0;
        for (i, l) in lines.iter().enumerate() {
            let q = l["quantity"].as_i64().unwrap_or(0);
            let up = l["unit_price"].as_i64();
            let ta = l["total_amount"].as_i64().unwrap_or(i64::MIN);
            if q < 1 {
                errors.push(("line_items[].quantity", format!("line {i}: must be >= 1")));
            }
            if l["name"].as_str().is_none_or(str::is_empty) {
                errors.push(("line_items[].name", format!("line {i}: is required")));
            }
            if up.is_some_and(|u| u.checked_mul(q) != Some(ta)) {
                errors.push((
                    "line_items[].total_amount",
                    format!("line {i}: must equal unit_price × quantity"),
                ));
            }
            sum = sum.saturating_add(ta);
        }
        if !lines.is_empty() && sum != amount {
            errors.push((
                "request_payment_transaction.amount",
                format!("must equal the sum of line_items[].total_amount ({sum})"),
            ));
        }
        if errors.is_empty() {
            Ok((currency, amount, lines))
        } else {
            Err(validation("the request is not valid", errors))
        }
    }

    fn authorize(&mut self, c: &Call<'_>, b: &Value, key: Option<&str>) -> Answer {
        let (currency, amount, lines) = match Self::validate_purchase(b) {
            Ok(v) => v,
            Err(a) => return a,
        };
        if let Err(a) = Self::validate_point_of_sale(b) {
            return a;
        }
        if let Some(token) = c.session_token
            && Self::is_final_authorize(Some(token), c.body)
        {
            return self.final_authorize(token, b, &currency, amount, lines, key);
        }
        if b.get("step_up_config").is_none_or(Value::is_null) {
            return validation(
                "an in-store payment needs step_up_config (or a session token)",
                vec![("step_up_config", "required".into())],
            );
        }
        let id = request_id();
        let uuid = id.rsplit(':').next().unwrap_or_default().to_string();
        let t = now();
        let r = PaymentRequest {
            payment_request_id: id.clone(),
            payment_request_reference: b["step_up_config"]["payment_request_reference"]
                .as_str()
                .map(String::from),
            amount,
            currency,
            state: "SUBMITTED".into(),
            previous_state: None,
            expires_at: t + chrono::Duration::from_std(self.request_lifetime).unwrap_or_default(),
            created_at: t,
            canceled_at: None,
            payment_request_url: format!("{}/sandbox/pay/{uuid}", self.public_base),
            authorize_body: b.clone(),
            klarna_network_session_token: None,
            token_issued_at: None,
            payment_transaction_id: None,
            // A first authorization's customer code, in either header generation.
            interoperability_token: c
                .session_token
                .or(c.interoperability_token)
                .map(String::from),
        };
        let body = json!({
            "payment_transaction_response": {"result": "STEP_UP_REQUIRED"},
            "payment_request": self.request_json(&r),
        });
        self.effects.push(Effect {
            kind: "request_created".into(),
            id: id.clone(),
            amount,
            idempotency_key: key.map(String::from),
        });
        self.notify_request(&r);
        self.expiries.insert((r.expires_at, id.clone()));
        self.requests.insert(id, r);
        Answer::ok(body)
    }

    fn final_authorize(
        &mut self,
        token: &str,
        b: &Value,
        currency: &str,
        amount: i64,
        lines: Vec<Value>,
        key: Option<&str>,
    ) -> Answer {
        let Some(r) = self
            .requests
            .values_mut()
            .find(|r| r.klarna_network_session_token.as_deref() == Some(token))
        else {
            return error(
                403,
                "ACCESS_ERROR",
                "INVALID_SESSION_TOKEN",
                "unknown klarna_network_session_token",
                vec![],
            );
        };
        if r.token_issued_at
            .is_some_and(|t| now() - t > TOKEN_LIFETIME)
        {
            return error(
                403,
                "ACCESS_ERROR",
                "SESSION_TOKEN_EXPIRED",
                "the session token has expired",
                vec![],
            );
        }
        if r.payment_transaction_id.is_some() {
            return conflict(
                "SESSION_TOKEN_USED",
                "this session token has already been used for a payment",
            );
        }
        if r.amount != amount || r.currency != currency {
            return validation(
                "amount and currency must match the payment request",
                vec![(
                    "request_payment_transaction.amount",
                    format!("expected {} {}", r.amount, r.currency),
                )],
            );
        }
        let tx_id = transaction_id();
        r.payment_transaction_id = Some(tx_id.clone());
        let capture_now = b["request_payment_transaction"]["capture"].as_str() == Some("NOW");
        let mut tx = Transaction {
            payment_transaction_id: tx_id.clone(),
            payment_transaction_reference:
                b["request_payment_transaction"]["payment_transaction_reference"]
                    .as_str()
                    .map(String::from),
            state: "AUTHORIZED".into(),
            currency: currency.into(),
            amount,
            captured_amount: 0,
            refunded_amount: 0,
            line_items: lines,
            payment_captures: vec![],
            payment_refunds: vec![],
            operations: 1,
            created_at: now(),
        };
        self.effects.push(Effect {
            kind: "transaction_created".into(),
            id: tx_id.clone(),
            amount,
            idempotency_key: key.map(String::from),
        });
        if capture_now {
            let cap_id = format!("krn:payment:eu1:capture:{}", uuid::Uuid::new_v4());
            tx.captured_amount = amount;
            tx.state = "COMPLETED".into();
            tx.payment_captures
                .push(json!({"payment_capture_id": cap_id, "amount": amount}));
            self.effects.push(Effect {
                kind: "capture".into(),
                id: tx_id.clone(),
                amount,
                idempotency_key: key.map(String::from),
            });
        }
        // The transaction sits inside `payment_transaction_response` [doc, "Auto-capture"].
        let body = json!({
            "payment_transaction_response": {"result": "APPROVED", "payment_transaction": tx.to_authorize_json()},
        });
        self.outbox.push(StateChange {
            event_type: "payment.transaction.state-change.authorized".into(),
            payload: json!({"payment_transaction_id": tx_id, "state": tx.state}),
        });
        self.transactions.insert(tx_id, tx);
        Answer::ok(body)
    }

    fn read_request(&mut self, id: &str) -> Answer {
        match self.requests.get(id) {
            Some(r) => Answer::ok(self.request_json(r)),
            None => not_found("payment request"),
        }
    }

    fn cancel_request(&mut self, id: &str) -> Answer {
        let Some(r) = self.requests.get_mut(id) else {
            return not_found("payment request");
        };
        if !matches!(r.state.as_str(), "SUBMITTED" | "IN_PROGRESS") {
            return conflict(
                "INVALID_STATE",
                &format!("a payment request in state {} cannot be canceled", r.state),
            );
        }
        r.previous_state = Some(std::mem::replace(&mut r.state, "CANCELED".into()));
        r.canceled_at = Some(now());
        let r = r.clone();
        self.effects.push(Effect {
            kind: "request_canceled".into(),
            id: id.into(),
            amount: r.amount,
            idempotency_key: None,
        });
        self.notify_request(&r);
        Answer::ok(self.request_json(&r))
    }

    fn line_sum(b: &Value) -> Result<(i64, Vec<Value>), Answer> {
        let amount = b["amount"]
            .as_i64()
            .filter(|a| (1..=2_147_483_647).contains(a));
        let Some(amount) = amount else {
            return Err(validation(
                "amount must be between 1 and 2147483647",
                vec![("amount", "invalid".into())],
            ));
        };
        let Some(lines) = b["line_items"].as_array().cloned() else {
            return Err(validation(
                "line_items is required",
                vec![("line_items", "required".into())],
            ));
        };
        let sum: i64 = lines
            .iter()
            .map(|l| l["total_amount"].as_i64().unwrap_or(0))
            .sum();
        if !lines.is_empty() && sum != amount {
            return Err(validation(
                "amount must equal the sum of line_items[].total_amount",
                vec![("amount", format!("expected {sum}"))],
            ));
        }
        Ok((amount, lines))
    }

    fn capture(&mut self, id: &str, b: &Value, key: Option<&str>) -> Answer {
        let (amount, _lines) = match Self::line_sum(b) {
            Ok(v) => v,
            Err(a) => return a,
        };
        let Some(t) = self.transactions.get_mut(id) else {
            return not_found("payment transaction");
        };
        if t.state != "AUTHORIZED" {
            return not_allowed(&format!(
                "cannot capture a transaction in state {}",
                t.state
            ));
        }
        if t.payment_captures.len() >= MAX_CAPTURES || t.operations >= MAX_OPERATIONS {
            return not_allowed("operation limit reached for this transaction");
        }
        if t.captured_amount + amount > t.amount {
            return not_allowed("capture exceeds the authorized amount");
        }
        let cap_id = format!("krn:payment:eu1:capture:{}", uuid::Uuid::new_v4());
        t.captured_amount += amount;
        t.operations += 1;
        t.payment_captures
            .push(json!({"payment_capture_id": cap_id, "amount": amount,
            "payment_capture_reference": b["payment_capture_reference"]}));
        if t.captured_amount == t.amount {
            t.state = "COMPLETED".into();
        }
        self.effects.push(Effect {
            kind: "capture".into(),
            id: id.into(),
            amount,
            idempotency_key: key.map(String::from),
        });
        Answer::created(json!({"payment_capture_id": cap_id, "amount": amount}))
    }

    fn refund(&mut self, id: &str, b: &Value, key: Option<&str>) -> Answer {
        if b.get("line_items").is_none_or(Value::is_null) {
            return validation(
                "line_items is required on a refund",
                vec![("line_items", "required".into())],
            );
        }
        let (amount, _lines) = match Self::line_sum(b) {
            Ok(v) => v,
            Err(a) => return a,
        };
        let Some(t) = self.transactions.get_mut(id) else {
            return not_found("payment transaction");
        };
        let refundable_state =
            t.state == "COMPLETED" || (t.state == "AUTHORIZED" && t.captured_amount > 0);
        if !refundable_state {
            return not_allowed(&format!("cannot refund a transaction in state {}", t.state));
        }
        if t.payment_refunds.len() >= MAX_REFUNDS || t.operations >= MAX_OPERATIONS {
            return not_allowed("operation limit reached for this transaction");
        }
        if t.refunded_amount + amount > t.captured_amount {
            return not_allowed(&format!(
                "refund of {amount} exceeds what remains refundable ({})",
                t.captured_amount - t.refunded_amount
            ));
        }
        let refund_id = format!("krn:payment:eu1:refund:{}", uuid::Uuid::new_v4());
        t.refunded_amount += amount;
        t.operations += 1;
        t.payment_refunds.push(json!({"payment_refund_id": refund_id, "amount": amount,
            "payment_refund_reference": b["payment_refund_reference"], "line_items": b["line_items"]}));
        self.effects.push(Effect {
            kind: "refund".into(),
            id: id.into(),
            amount,
            idempotency_key: key.map(String::from),
        });
        Answer::created(json!({"payment_refund_id": refund_id, "amount": amount}))
    }

    fn void(&mut self, id: &str, key: Option<&str>) -> Answer {
        let Some(t) = self.transactions.get_mut(id) else {
            return not_found("payment transaction");
        };
        if t.state != "AUTHORIZED" {
            return not_allowed(&format!("cannot void a transaction in state {}", t.state));
        }
        let released = t.amount - t.captured_amount;
        t.state = if t.captured_amount > 0 {
            "COMPLETED".into()
        } else {
            "CLOSED".into()
        };
        t.operations += 1;
        self.effects.push(Effect {
            kind: "void".into(),
            id: id.into(),
            amount: released,
            idempotency_key: key.map(String::from),
        });
        Answer::ok(json!({"released_amount": released, "state": t.state}))
    }

    fn presentation(&self, query: &str) -> Answer {
        let mut currency = "";
        let mut amount = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("currency", v)) => currency = v,
                Some(("amount", v)) => amount = v.parse::<i64>().ok(),
                _ => {}
            }
        }
        let Some(amount) = amount else {
            return validation("amount is required", vec![("amount", "required".into())]);
        };
        let show =
            ELIGIBLE_CURRENCIES.contains(&currency) && (1..=MAX_ELIGIBLE_AMOUNT).contains(&amount);
        Answer::ok(if show {
            json!({"instruction": "SHOW_KLARNA", "payment_options": [{"payment_option_id": "PAY", "name": "Pay with Klarna"}]})
        } else {
            json!({"instruction": "HIDE_KLARNA", "payment_options": []})
        })
    }

    fn notification(&mut self, c: &Call<'_>, rest: &[&str]) -> Answer {
        match (c.method, rest) {
            ("POST", ["signing-keys"]) => {
                let id = format!("key-{}", uuid::Uuid::new_v4().simple());
                let secret = uuid::Uuid::new_v4().simple().to_string();
                self.signing_keys.insert(id.clone(), secret.clone());
                Answer::created(json!({"signing_key_id": id, "signing_key": secret}))
            }
            ("GET", ["signing-keys"]) => {
                let keys: Vec<Value> = self
                    .signing_keys
                    .keys()
                    .map(|k| json!({"signing_key_id": k}))
                    .collect();
                Answer::ok(json!({"signing_keys": keys}))
            }
            ("POST", ["webhooks"]) => {
                let Ok(b) = serde_json::from_slice::<Value>(c.body) else {
                    return validation("request body is not valid JSON", vec![]);
                };
                let url = b["url"].as_str().unwrap_or_default().to_string();
                let key = b["signing_key_id"].as_str().unwrap_or_default().to_string();
                if url.is_empty() || !self.signing_keys.contains_key(&key) {
                    return validation(
                        "url and a known signing_key_id are required",
                        vec![("signing_key_id", "unknown".into())],
                    );
                }
                let event_types = b["event_types"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let id = format!("webhook-{}", uuid::Uuid::new_v4().simple());
                self.webhooks.push(Webhook {
                    webhook_id: id.clone(),
                    url,
                    event_types,
                    signing_key_id: key,
                });
                Answer::created(json!({"webhook_id": id, "status": "ENABLED"}))
            }
            _ => not_found("route"),
        }
    }

    fn notify_request(&mut self, r: &PaymentRequest) {
        let suffix = match r.state.as_str() {
            "SUBMITTED" => "submitted",
            "IN_PROGRESS" => "in-progress",
            "COMPLETED" => "completed",
            "CANCELED" => "canceled",
            "EXPIRED" => "expired",
            "DECLINED" => "declined",
            _ => return,
        };
        let mut payload = json!({
            "payment_request_id": r.payment_request_id,
            "payment_request_reference": r.payment_request_reference,
            "state": r.state,
            "previous_state": r.previous_state,
        });
        if r.state == "COMPLETED" {
            payload["klarna_network_session_token"] = json!(r.klarna_network_session_token);
        }
        self.outbox.push(StateChange {
            event_type: format!("payment.request.state-change.{suffix}"),
            payload,
        });
    }

    /// The customer acts on a payment request (sandbox control, klarna-api.md §7).
    pub fn customer(&mut self, id: &str, action: CustomerAction) -> Result<PaymentRequest, String> {
        self.expire_requests();
        let r = self
            .requests
            .get_mut(id)
            .ok_or_else(|| format!("payment request {id} not found"))?;
        let next = match (action, r.state.as_str()) {
            (CustomerAction::Open, "SUBMITTED") => "IN_PROGRESS",
            (CustomerAction::Approve, "SUBMITTED" | "IN_PROGRESS") => "COMPLETED",
            (CustomerAction::Decline, "SUBMITTED" | "IN_PROGRESS") => "DECLINED",
            (CustomerAction::Abandon, "SUBMITTED" | "IN_PROGRESS") => "EXPIRED",
            (a, s) => return Err(format!("the customer cannot {a:?} a request that is {s}")),
        };
        r.previous_state = Some(std::mem::replace(&mut r.state, next.into()));
        if next == "COMPLETED" {
            r.klarna_network_session_token = Some(format!(
                "krn:network:session-token:{}",
                uuid::Uuid::new_v4()
            ));
            r.token_issued_at = Some(now());
        }
        let r = r.clone();
        self.notify_request(&r);
        Ok(r)
    }

    /// Seeds a completed (captured) online order, for in-store return tests and the demo.
    pub fn seed_order(
        &mut self,
        currency: &str,
        reference: &str,
        lines: Vec<Value>,
    ) -> Transaction {
        let amount = lines
            .iter()
            .map(|l| l["total_amount"].as_i64().unwrap_or(0))
            .sum();
        let id = transaction_id();
        let t = Transaction {
            payment_transaction_id: id.clone(),
            payment_transaction_reference: Some(reference.into()),
            state: "COMPLETED".into(),
            currency: currency.into(),
            amount,
            captured_amount: amount,
            refunded_amount: 0,
            line_items: lines,
            payment_captures: vec![
                json!({"payment_capture_id": format!("krn:payment:eu1:capture:{}", uuid::Uuid::new_v4()), "amount": amount}),
            ],
            payment_refunds: vec![],
            operations: 1,
            created_at: now(),
        };
        self.transactions.insert(id, t.clone());
        t
    }

    /// Finds a request by the uuid at the end of its id (the customer page's URL).
    pub fn request_by_uuid(&self, uuid: &str) -> Option<&PaymentRequest> {
        self.requests
            .values()
            .find(|r| r.payment_request_id.ends_with(&format!(":{uuid}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerAction {
    Open,
    Approve,
    Decline,
    Abandon,
}
