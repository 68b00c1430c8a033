//! The till itself: sales and their Klarna payments, driven by the local API, the UI and the CLI.
//! It owns the flows around the pure `payment` state machine: authorize, follow the customer,
//! finalize, cancel, time out, and reconcile whatever a crash left unfinished.

mod attempt;
mod cancel;
mod doubt;
mod follow;
mod operations;
mod pay;
mod sale;
mod tender;
mod webhooks;

pub use tender::{CashMovementKind, MAX_REASON_CHARS, Tendered};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use tokio::sync::{Notify, broadcast};

use crate::config::Config;
use crate::health::{Breaker, Health, KlarnaState};
use crate::klarna::wire::{self, AuthorizeRequest};
use crate::klarna::{
    AuthorizeOutcome, CallOptions, KlarnaClient, KlarnaError, RequestRead, RequestState, StepUp,
};
use crate::money::Currency;
use crate::outbox::{NewOperation, OutboxError, OutboxRow, OutboxSummary, OutboxWorker};
use crate::payment::{AttemptState, PaymentEvent};
use crate::store::{
    AttemptRow, JournalEntry, JournalKind, LineInput, PaymentDraft, SaleState, SaleView, Store,
    StoreError, WriteTx,
};
use kassa_core::sale::LineEdit;

/// What the cashier is told, and what refuses a second payment, while a payment is in doubt.
pub const IN_DOUBT_MESSAGE: &str =
    "Payment may have gone through: do not take payment again; ask a manager";

/// What went wrong, in terms the cashier's screen and the API's caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Klarna cannot be reached right now ({0}); take another payment method")]
    KlarnaUnavailable(String),
    #[error("Klarna is not offered for this purchase; take another payment method")]
    NotEligible,
    #[error("Klarna refused the payment ({code}): {message}")]
    KlarnaRefused { code: String, message: String },
    /// Not allowed without a manager's approval (or the approval was refused).
    #[error("{0}")]
    Forbidden(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A signed-in request named another operator.
    #[error("signed in as {0}: a request cannot act as someone else")]
    OtherOperator(String),
    /// The till requires staff to sign in, and nobody is.
    #[error("sign in first (staff id and PIN)")]
    SignIn,
    /// A manager's PIN was refused, is locked out, or none is set.
    #[error(transparent)]
    Manager(#[from] crate::manager::ManagerError),
}

impl From<StoreError> for TerminalError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => TerminalError::NotFound(m),
            StoreError::Conflict(m) => TerminalError::Conflict(m),
            e @ StoreError::OutboxFull(_) => TerminalError::Conflict(e.to_string()),
            StoreError::Invalid(m) => TerminalError::Invalid(m),
            StoreError::ApprovalRequired(m) => TerminalError::Forbidden(m),
            e => TerminalError::Internal(e.to_string()),
        }
    }
}

/// A change the UI and API subscribers hear about; always the whole sale, so a listener never
/// has to merge partial updates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SaleEvent {
    pub sale: SaleView,
}

/// Extra data from the customer's Klarna app, passed through to Klarna.
#[derive(Debug, Clone, Default)]
pub struct PaymentOptions {
    /// A customer code scanned from the customer's Klarna app (a Klarna network session token),
    /// sent as the `Klarna-Network-Session-Token` header of the first authorization.
    pub customer_token: Option<String>,
    /// Klarna's `klarna_network_data`, passed through untouched.
    pub network_data: Option<String>,
}

/// A manager's decision about a payment in doubt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoubtResolution {
    /// Klarna has the payment: this transaction (checked at Klarna before it is recorded).
    Paid { klarna_transaction_id: String },
    /// The customer was not charged (the manager checked with Klarna or the customer's app).
    NotPaid,
}

#[derive(Clone)]
pub struct Terminal {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Config,
    store: Store,
    klarna: KlarnaClient,
    events: broadcast::Sender<SaleEvent>,
    /// Wakes the task following an attempt (webhook arrived, cashier canceled), by attempt id.
    followers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Positive eligibility answers by (currency, amount), with when they were given.
    eligibility: Mutex<HashMap<(String, i64), Instant>>,
    /// Klarna's health, fed by every call of `klarna`.
    health: Arc<Health>,
    /// Wakes the outbox worker when an operation is queued.
    outbox_wake: Arc<Notify>,
    /// The file that tells the updater a sale is open.
    busy: crate::service::BusyMarker,
    /// A Klarna customer code scanned at the counter, for the next payment that brings none.
    customer_token: Mutex<Option<String>>,
    /// The last view sent for each recent sale, so an unchanged sale is not sent again.
    published: Arc<Mutex<HashMap<String, SaleView>>>,
    /// Answers kassa could not place so far, per attempt (see `Terminal::unplaceable`).
    unplaceable: Mutex<HashMap<String, kassa_core::decide::Earlier>>,
    /// Session tokens a verified webhook delivered, by attempt, for its follower's final
    /// authorization (so it need not read the request again). Memory only, never logged.
    webhook_tokens: Mutex<HashMap<String, String>>,
    /// When the last verified webhook arrived: while they do, polling is only the fallback.
    last_webhook: Mutex<Option<Instant>>,
    /// The sale at the counter, fed by the publisher in write order (see `Terminal::counter_sale`).
    counter: Mutex<kassa_core::counter::Counter>,
    /// Staff signed in at this till (the API's and the screen's sessions alike).
    sessions: crate::staff::Sessions,
}

/// Klarna as the cashier's status bar and `/health` show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KlarnaStatus {
    pub klarna: KlarnaState,
    #[schema(value_type = String)]
    pub breaker: Breaker,
    pub maintenance: Option<crate::health::Maintenance>,
    pub outbox: OutboxSummary,
}

fn entry(kind: JournalKind, a: &AttemptRow, operator: &str) -> JournalEntry {
    let mut e = JournalEntry::new(kind, operator);
    e.sale_id = Some(a.sale_id.clone());
    e.attempt_id = Some(a.id.clone());
    e.amount = Some(a.amount);
    e.currency = Some(a.currency.clone());
    e.klarna_request_id = a.klarna_request_id.clone();
    e.klarna_transaction_id = a.klarna_transaction_id.clone();
    e.correlation_id = Some(a.correlation_id.clone());
    e
}

impl Terminal {
    /// Opens the store, builds the Klarna client and resumes every payment a restart interrupted.
    pub async fn start(
        cfg: Config,
        klarna: KlarnaClient,
        health: Arc<Health>,
    ) -> Result<Terminal, TerminalError> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            TerminalError::Internal(format!("cannot create {}: {e}", cfg.data_dir.display()))
        })?;
        let store = Store::open(&cfg.database_path(), &cfg.terminal_id)?;
        let (events, _) = broadcast::channel(256);
        let cfg_busy = cfg.busy_file.clone();
        let t = Terminal {
            inner: Arc::new(Inner {
                sessions: crate::staff::Sessions::new(Duration::from_secs(
                    cfg.staff.idle_lock_secs,
                )),
                cfg,
                store,
                klarna,
                events,
                followers: Mutex::new(HashMap::new()),
                eligibility: Mutex::new(HashMap::new()),
                health,
                outbox_wake: Arc::new(Notify::new()),
                busy: crate::service::BusyMarker::new(cfg_busy),
                customer_token: Mutex::new(None),
                published: Arc::new(Mutex::new(HashMap::new())),
                unplaceable: Mutex::new(HashMap::new()),
                webhook_tokens: Mutex::new(HashMap::new()),
                last_webhook: Mutex::new(None),
                counter: Mutex::default(),
            }),
        };
        t.recover().await?;
        let worker = OutboxWorker {
            store: t.inner.store.clone(),
            klarna: t.inner.klarna.clone(),
            health: t.inner.health.clone(),
            limits: t.inner.cfg.outbox.clone(),
            wake: t.inner.outbox_wake.clone(),
        };
        tokio::spawn(worker.run());
        tokio::spawn(t.clone().probe_when_half_open());
        Ok(t)
    }

    /// While the breaker is open, probes Klarna with a cheap read once the cool-down passes;
    /// the probe's outcome (recorded by the client's observer) closes or re-opens the breaker.
    async fn probe_when_half_open(self) {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if self.inner.health.breaker(chrono::Utc::now()) == Breaker::HalfOpen {
                let corr = uuid::Uuid::new_v4().simple().to_string();
                let opts = CallOptions {
                    correlation_id: &corr,
                    ..Default::default()
                };
                let cfg = &self.inner.cfg;
                let _ = self
                    .inner
                    .klarna
                    .eligible(cfg.currency.code(), &cfg.klarna.locale, 100, opts)
                    .await;
            }
        }
    }

    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    /// Klarna's state, the breaker, an upcoming maintenance window and the outbox's fill.
    pub async fn klarna_status(&self) -> Result<KlarnaStatus, TerminalError> {
        let now = chrono::Utc::now();
        let limits = self.inner.cfg.outbox.clone();
        let outbox = self
            .inner
            .store
            .call(move |db| db.outbox_summary(&limits))
            .await?;
        let (klarna, breaker) = self.inner.health.reading(now);
        Ok(KlarnaStatus {
            klarna,
            breaker,
            maintenance: self.inner.health.upcoming_maintenance(now).cloned(),
            outbox,
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// The operator a caller named (checked: 1 to 64 characters, no control characters), or the
    /// configured default.
    /// Who does what the running request asks: the signed-in staff member (a request may not
    /// name anyone else), else the name it gives, else the configured default. A till that
    /// requires sign-in refuses a change by nobody.
    pub fn operator(&self, given: Option<String>) -> Result<String, TerminalError> {
        let default = self.inner.cfg.default_operator.clone();
        self.operator_or(given, &default)
    }

    /// As `operator`, with `default` for a request that names nobody (a manager's door says
    /// "manager" rather than the till's default cashier).
    pub fn operator_or(
        &self,
        given: Option<String>,
        default: &str,
    ) -> Result<String, TerminalError> {
        if let Some(who) = crate::staff::current() {
            if given.as_ref().is_some_and(|g| *g != who.id) {
                return Err(TerminalError::OtherOperator(who.id));
            }
            return Ok(who.id);
        }
        if self.inner.cfg.staff.require_sign_in {
            return Err(TerminalError::SignIn);
        }
        let op = given.unwrap_or_else(|| default.to_string());
        crate::store::validate_operator(&op)?;
        Ok(op)
    }

    /// The staff sessions open at this till.
    pub fn sessions(&self) -> &crate::staff::Sessions {
        &self.inner.sessions
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn klarna(&self) -> &KlarnaClient {
        &self.inner.klarna
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SaleEvent> {
        self.inner.events.subscribe()
    }

    /// Resumes every attempt that was in flight, or canceled without Klarna's confirmation.
    async fn recover(&self) -> Result<(), TerminalError> {
        // If the last run did not end in order, a draft it left may have been sent just before
        // a crash or power cut lost the commit that recorded it: it is retired (cancelled at
        // Klarna) if the sale moves on.
        let marked = self.inner.store.call(|db| db.begin_run()).await?;
        if marked > 0 {
            tracing::info!(
                drafts = marked,
                "payment drafts from the last run may have been sent"
            );
        }
        let unsettled = self.inner.store.call(|db| db.unsettled_attempts()).await?;
        for a in unsettled {
            tracing::info!(attempt = %a.id, state = a.state.as_str(), "resuming payment after restart");
            self.spawn_follower(a.id);
        }
        Ok(())
    }

    /// Keeps a Klarna customer code (scanned from the customer's app) for the next payment
    /// started without one; `None` forgets it (the sale it was for was abandoned).
    pub fn keep_customer_token(&self, token: Option<String>) {
        *self
            .inner
            .customer_token
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = token;
    }

    /// Number of payment attempts still being followed (for readiness and tests).
    pub fn payments_in_flight(&self) -> usize {
        self.inner
            .followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}
