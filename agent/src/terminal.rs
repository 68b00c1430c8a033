//! The till itself: sales and their Klarna payments, driven by the local API, the UI and the CLI.
//! It owns the flows around the pure `payment` state machine: authorize, follow the customer,
//! finalize, cancel, time out, and reconcile whatever a crash left unfinished.

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

/// Namespace for kassa's UUIDv5 idempotency keys (Klarna recommends v5).
const KEY_NAMESPACE: uuid::Uuid = uuid::uuid!("5f0e6c1e-7d1b-4c55-9a7e-2f6f3b1a9c01");
/// Longest pause between two polls or retries while something is wrong.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a positive eligibility answer is reused for the same currency and amount.
const ELIGIBILITY_TTL: Duration = Duration::from_secs(60);
/// Answers kassa cannot place, under one key, before a payment is put in doubt for a manager.
const UNPLACEABLE_TRIES: u32 = 3;
/// Pause before asking again after an answer kassa cannot place.
const UNPLACEABLE_PAUSE: Duration = Duration::from_secs(1);
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
    unplaceable: Mutex<HashMap<String, u32>>,
    /// Session tokens a verified webhook delivered, by attempt, for its follower's final
    /// authorization (so it need not read the request again). Memory only, never logged.
    webhook_tokens: Mutex<HashMap<String, String>>,
    /// When the last verified webhook arrived: while they do, polling is only the fallback.
    last_webhook: Mutex<Option<Instant>>,
}

/// Verified webhooks count as arriving for this long after the last one.
const WEBHOOKS_LIVE_FOR: Duration = Duration::from_secs(600);

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

fn journal_kind_for(state: AttemptState) -> JournalKind {
    match state {
        AttemptState::Requested => JournalKind::PaymentRequested,
        AttemptState::AwaitingCustomer => JournalKind::QrShown,
        AttemptState::CustomerOpened => JournalKind::CustomerOpened,
        AttemptState::Completed => JournalKind::PaymentCompleted,
        AttemptState::Paid => JournalKind::Finalized,
        AttemptState::Declined => JournalKind::PaymentDeclined,
        AttemptState::Expired => JournalKind::PaymentExpired,
        AttemptState::Canceled => JournalKind::PaymentCanceled,
        AttemptState::Failed => JournalKind::PaymentFailed,
        AttemptState::InDoubt => JournalKind::PaymentInDoubt,
    }
}

fn jitter(d: Duration) -> Duration {
    // ±20 % so a fleet of tills never polls in lockstep.
    let f = rand::rng().random_range(0.8..1.2);
    d.mul_f64(f)
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The store as `point_of_checkout` names it (the configuration was checked at start).
fn point_of_checkout(cfg: &Config) -> wire::PointOfCheckout {
    use crate::config::StoreAtKlarna;
    let mut p = wire::PointOfCheckout::default();
    match cfg.klarna.point_of_checkout.resolve(&cfg.store_id) {
        Ok(StoreAtKlarna::Id(id)) => p.store_id = Some(id),
        Ok(StoreAtKlarna::Store(s)) => p.store = Some(s),
        Ok(StoreAtKlarna::Reference(r)) => p.store_reference = Some(r),
        Err(_) => p.store_reference = Some(cfg.store_id.clone()),
    }
    p
}

/// In the commit that pays an attempt: the sale becomes paid and its receipt is issued.
fn sale_paid(w: &mut WriteTx<'_>, a: &AttemptRow, op: &str) -> Result<(), StoreError> {
    w.set_sale_state(&a.sale_id, SaleState::Paid)?;
    let receipt_no: Option<i64> =
        w.tx.prepare_cached("SELECT receipt_no FROM sales WHERE id = ?1")?
            .query_row([&a.sale_id], |r| r.get(0))?;
    let mut e = entry(JournalKind::ReceiptIssued, a, op);
    e.detail = serde_json::json!({"receipt_no": receipt_no});
    w.journal(e)?;
    Ok(())
}

/// What the database thread made of a request to pay a sale.
enum Prepared {
    /// The attempt is stored; authorize may be sent.
    Stored(AttemptRow),
    /// The amount's eligibility must be asked of Klarna first (not cached, or too old).
    AskEligibility(SaleView, PaymentOptions),
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

    /// Queues a refund, capture or void in the outbox (durably, with its journal row) and wakes
    /// the worker; works whether Klarna is reachable or not. A refund is first checked against
    /// the purchase, as a return is: against what Klarna says was captured and refunded when it
    /// answers (a transaction Klarna does not know is refused), else against this till's own
    /// payment of it; and, in the same database job as the enqueue (so parallel requests see each
    /// other), against every refund of it still waiting. A transaction neither Klarna (down) nor
    /// this till knows is queued, and Klarna's answer decides (a refusal waits for a manager).
    pub async fn queue_operation(
        &self,
        op: NewOperation,
        extra_journal: Option<JournalEntry>,
    ) -> Result<OutboxRow, TerminalError> {
        let limit = if op.operation == crate::outbox::Operation::Refund {
            self.refundable(&op).await?
        } else {
            None
        };
        let limits = self.inner.cfg.outbox.clone();
        let row = self
            .inner
            .store
            .call(move |db| {
                if let Some((limit, applied)) = &limit {
                    let limit = *limit;
                    let waiting = db.waiting_refunds(&op.transaction_id, applied)?.amount;
                    if waiting.saturating_add(op.amount) > limit {
                        return Err(StoreError::Conflict(format!(
                            "the refund of {} exceeds what remains refundable on {} ({} {}, of which {} already waits)",
                            op.amount,
                            op.transaction_id,
                            limit.saturating_sub(waiting).max(0),
                            op.currency,
                            waiting
                        )));
                    }
                }
                db.enqueue(&op, &limits, extra_journal)
                    .map_err(|e| match e {
                        OutboxError::LimitReached(m) => StoreError::OutboxFull(m),
                        OutboxError::Store(e) => e,
                    })
            })
            .await?;
        self.inner.outbox_wake.notify_one();
        Ok(row)
    }

    /// What may still be refunded on `op`'s transaction before what waits in the outbox: from
    /// Klarna (captured minus refunded, with the references of the refunds it lists) when it
    /// answers, else this till's own payment of it; `None` when neither can say.
    async fn refundable(
        &self,
        op: &NewOperation,
    ) -> Result<Option<(i64, std::collections::HashSet<String>)>, TerminalError> {
        // While Klarna is known to be down (breaker open), a refund is not made to wait for a
        // connect timeout first: it is checked against what the till knows, as in any outage.
        let read = if self.inner.health.breaker(chrono::Utc::now()) == Breaker::Open {
            Err(TerminalError::KlarnaUnavailable("Klarna is offline".into()))
        } else {
            self.read_transaction_for_staff(
                &op.transaction_id,
                "checked against this till's payment",
            )
            .await
        };
        match read {
            Ok(tx) => {
                if !tx.currency.eq_ignore_ascii_case(&op.currency) {
                    return Err(TerminalError::Invalid(format!(
                        "the transaction is in {}, not {}",
                        tx.currency, op.currency
                    )));
                }
                let captured = tx.captured_amount.unwrap_or(0);
                Ok(Some((
                    captured.saturating_sub(tx.refunded_amount.unwrap_or(0)),
                    tx.refund_references(),
                )))
            }
            Err(TerminalError::KlarnaUnavailable(_)) => {
                let id = op.transaction_id.clone();
                let paid: Option<i64> = self
                    .inner
                    .store
                    .call(move |db| db.attempt_by_transaction(&id))
                    .await?
                    .filter(|a| a.state == AttemptState::Paid)
                    .map(|a| a.amount);
                Ok(paid.map(|p| (p, Default::default())))
            }
            Err(e) => Err(e),
        }
    }

    /// Tells the outbox worker something was queued.
    pub fn wake_outbox(&self) {
        self.inner.outbox_wake.notify_one();
    }

    /// A manager puts an operation that needed attention back in the queue (or dismisses it).
    pub async fn resolve_operation(
        &self,
        id: i64,
        retry: bool,
        operator: String,
        note: String,
    ) -> Result<OutboxRow, TerminalError> {
        let row = self
            .inner
            .store
            .call(move |db| db.outbox_resolve(id, retry, &operator, &note))
            .await?;
        self.inner.outbox_wake.notify_one();
        Ok(row)
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// The operator a caller named (checked: 1 to 64 characters, no control characters), or the
    /// configured default.
    pub fn operator(&self, given: Option<String>) -> Result<String, TerminalError> {
        let op = given.unwrap_or_else(|| self.inner.cfg.default_operator.clone());
        crate::store::validate_operator(&op)?;
        Ok(op)
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

    pub async fn open_sale(
        &self,
        currency: Option<Currency>,
        operator: Option<String>,
        lines: Vec<LineInput>,
    ) -> Result<SaleView, TerminalError> {
        let currency = currency.unwrap_or(self.inner.cfg.currency);
        let operator = self.operator(operator)?;
        let id = uuid::Uuid::new_v4().to_string();
        let publish = self.publisher();
        let t = self.clone();
        Ok(self
            .inner
            .store
            .call(move |db| {
                let v = db.open_sale(&id, currency, &operator, &lines, |v| t.draft_for(v))?;
                publish(v.clone());
                Ok(v)
            })
            .await?)
    }

    pub async fn add_lines(
        &self,
        sale_id: &str,
        operator: Option<String>,
        lines: Vec<LineInput>,
    ) -> Result<SaleView, TerminalError> {
        let operator = self.operator(operator)?;
        let id = sale_id.to_string();
        let publish = self.publisher();
        let t = self.clone();
        Ok(self
            .inner
            .store
            .call(move |db| {
                let v = db.add_lines(&id, &operator, &lines, |v| t.draft_for(v))?;
                publish(v.clone());
                Ok(v)
            })
            .await?)
    }

    pub async fn sale(&self, sale_id: &str) -> Result<SaleView, TerminalError> {
        let id = sale_id.to_string();
        Ok(self.inner.store.call(move |db| db.sale(&id)).await?)
    }

    /// What sends a sale's event. It runs on the database thread, inside the job that read the
    /// view, so events leave in the order of the writes they show (two tasks publishing from
    /// their own threads could send an older view last). A view equal to the last one sent for
    /// that sale is not sent again: a follower's poll that changed nothing stays quiet.
    fn publisher(&self) -> impl FnOnce(SaleView) + Send + 'static {
        let t = self.clone();
        let rt = tokio::runtime::Handle::current();
        move |sale: SaleView| {
            // An attempt still owed a cancel needs a follower: a retired draft (see
            // `WriteTx::retire_draft`) gets its first here. Followed ones are left alone.
            for a in &sale.payments {
                let owed = matches!(
                    a.state,
                    AttemptState::Canceled | AttemptState::Expired | AttemptState::Failed
                );
                if owed && !a.cancel_confirmed {
                    let _entered = rt.enter();
                    t.spawn_follower(a.id.clone());
                }
            }
            {
                let mut last = t.inner.published.lock().unwrap_or_else(|e| e.into_inner());
                if last.get(&sale.sale.id) == Some(&sale) {
                    return;
                }
                if last.len() >= 1024 {
                    last.clear();
                }
                last.insert(sale.sale.id.clone(), sale.clone());
            }
            // No subscriber is fine: the state is in the database either way.
            let _ = t.inner.events.send(SaleEvent { sale });
            rt.spawn(async move { t.inner.busy.update(&t.inner.store).await });
        }
    }

    /// Queues the sale's event behind the writes already queued; the caller does not wait.
    fn publish_sale(&self, sale_id: &str) {
        let id = sale_id.to_string();
        let publish = self.publisher();
        // Dropping the result's future leaves the job queued; only its answer is discarded.
        let _queued = self.inner.store.submit(move |db| {
            publish(db.sale(&id)?);
            Ok(())
        });
    }

    fn options<'a>(a: &'a AttemptRow, key: Option<&'a str>) -> CallOptions<'a> {
        CallOptions {
            correlation_id: &a.correlation_id,
            idempotency_key: key,
            ..Default::default()
        }
    }

    /// Whether Klarna said recently that this sale's currency and amount are eligible.
    fn eligibility_known(&self, view: &SaleView) -> bool {
        let key = (view.sale.currency.code().to_string(), view.total);
        self.inner
            .eligibility
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .is_some_and(|at| at.elapsed() < ELIGIBILITY_TTL)
    }

    async fn check_eligibility(&self, view: &SaleView, corr: &str) -> Result<(), TerminalError> {
        let key = (view.sale.currency.code().to_string(), view.total);
        if self.eligibility_known(view) {
            return Ok(());
        }
        let opts = CallOptions {
            correlation_id: corr,
            ..Default::default()
        };
        match self
            .inner
            .klarna
            .eligible(&key.0, &self.inner.cfg.klarna.locale, view.total, opts)
            .await
        {
            Ok(true) => {
                let mut cache = self
                    .inner
                    .eligibility
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                cache.retain(|_, at| at.elapsed() < ELIGIBILITY_TTL);
                cache.insert(key, Instant::now());
                Ok(())
            }
            Ok(false) => Err(TerminalError::NotEligible),
            Err(e @ KlarnaError::Final { .. }) => Err(TerminalError::KlarnaRefused {
                code: e.code().into(),
                message: e.to_string(),
            }),
            Err(e) => Err(TerminalError::KlarnaUnavailable(e.to_string())),
        }
    }

    /// Starts a Klarna payment for the sale's total: the answer carries the QR code's URL, or a
    /// clear reason why not. Never waits on Klarna longer than the client's timeouts.
    pub async fn start_payment(
        &self,
        sale_id: &str,
        operator: Option<String>,
        opts: PaymentOptions,
    ) -> Result<AttemptRow, TerminalError> {
        let operator = self.operator(operator)?;
        // A QR payment cannot complete without Klarna: when it is known to be down, say so at once.
        let now = chrono::Utc::now();
        if let Some(m) = self.inner.health.in_maintenance(now) {
            return Err(TerminalError::KlarnaUnavailable(format!(
                "Klarna maintenance until {} {}",
                m.end.format("%H:%M UTC"),
                m.note
            )));
        }
        if self.inner.health.breaker(now) == Breaker::Open {
            return Err(TerminalError::KlarnaUnavailable("Klarna is offline".into()));
        }
        let corr = uuid::Uuid::new_v4().simple().to_string();
        // One trip to the database thread reads the sale, checks it and stores the attempt with
        // its idempotency key (durable before the request leaves the till). A second trip is
        // needed only when Klarna must first be asked whether the amount is eligible.
        let mut opts = Some(opts);
        let mut asked: Option<(String, i64)> = None;
        let attempt = loop {
            let (t, id, op, c, checked) = (
                self.clone(),
                sale_id.to_string(),
                operator.clone(),
                corr.clone(),
                asked.clone(),
            );
            let o = opts.take().unwrap_or_default();
            let prepared = self
                .inner
                .store
                .call_early(move |db, early| {
                    Ok(t.prepare_attempt(db, early, &id, &op, &c, o, checked))
                })
                .await??;
            match prepared {
                Prepared::Stored(a) => break a,
                Prepared::AskEligibility(view, o) => {
                    self.check_eligibility(&view, &corr).await?;
                    asked = Some((view.sale.currency.code().to_string(), view.total));
                    opts = Some(o);
                }
            }
        };
        let attempt_id = attempt.id.clone();

        let result = self
            .inner
            .klarna
            .authorize_raw(
                &attempt.authorize_body,
                CallOptions {
                    correlation_id: &attempt.correlation_id,
                    idempotency_key: Some(&attempt.authorize_key),
                    customer_token: attempt.interop_token.as_deref(),
                    session_token: None,
                },
            )
            .await;
        let outcome = self.apply_authorize(&attempt, result, true).await;
        // The row the transition wrote is the attempt as it now stands; read it again only when
        // authorize's answer changed nothing (lost answer) or ended it some other way.
        let latest = match &outcome {
            Ok(Some(row)) => row.clone(),
            _ => self.attempt(&attempt_id).await?,
        };
        if !latest.state.is_final() {
            // Klarna's state was just read: the first look can wait one poll interval, except
            // when authorize's answer was lost and must be asked for again at once.
            let first = if latest.state == AttemptState::Requested {
                Duration::ZERO
            } else {
                self.inner.cfg.payment.poll_interval()
            };
            self.spawn_follower_after(attempt_id, first);
        }
        self.publish_sale(sale_id);
        outcome.map(|_| latest)
    }

    /// On the database thread: checks that the sale can be paid and, when its amount is known
    /// to be eligible (or Klarna was just `asked` about this currency and amount), writes the
    /// attempt (with its keys and exact request body) and its journal row in one transaction:
    /// durable before the answer, unless the sale's draft already holds exactly this request.
    #[allow(clippy::too_many_arguments)]
    fn prepare_attempt(
        &self,
        db: &mut crate::store::Db,
        early: &mut crate::store::Early<Result<Prepared, TerminalError>>,
        sale_id: &str,
        operator: &str,
        corr: &str,
        opts: PaymentOptions,
        asked: Option<(String, i64)>,
    ) -> Result<Prepared, TerminalError> {
        let view = db.sale(sale_id)?;
        if view.sale.state != SaleState::Open {
            return Err(TerminalError::Conflict(format!(
                "sale {sale_id} is not open"
            )));
        }
        if view.total <= 0 {
            return Err(TerminalError::Invalid("the sale has nothing to pay".into()));
        }
        match view.live_attempt() {
            Some(a) if a.state == AttemptState::InDoubt => {
                return Err(TerminalError::Conflict(IN_DOUBT_MESSAGE.into()));
            }
            Some(_) => {
                return Err(TerminalError::Conflict(
                    "a payment is already in progress".into(),
                ));
            }
            None => {}
        }
        let key = (view.sale.currency.code().to_string(), view.total);
        if asked.as_ref() != Some(&key) && !self.eligibility_known(&view) {
            return Ok(Prepared::AskEligibility(view, opts));
        }
        let token = self
            .inner
            .customer_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let scanned = token.is_some() && opts.customer_token.is_none();
        let opts = PaymentOptions {
            customer_token: opts.customer_token.or(token),
            ..opts
        };
        // The sale's draft was committed durably with its lines: when it is exactly the attempt
        // this press would make, its key is already on disk and the attempt's own commit need
        // not wait for it (a power cut that loses the commit leaves the draft, and the next
        // press replays the same request). Anything else gets fresh ids and a durable commit.
        let draft = db.payment_draft(sale_id)?;
        let mut attempt =
            self.new_attempt(&view, corr, &opts, draft.as_ref().map(|d| &*d.attempt_id))?;
        // A customer's scanned token travels as a header the draft does not hold: such a press
        // is not replayed from the draft, so a key is only ever sent one way.
        let prepared =
            opts.customer_token.is_none() && draft.as_ref().is_some_and(|d| d.matches(&attempt));
        if draft.is_some() && !prepared {
            attempt = self.new_attempt(&view, corr, &opts, None)?;
        }
        let a = attempt.clone();
        let answered = std::cell::Cell::new(false);
        let write = |w: &mut WriteTx<'_>| {
            if w.sale_state(&a.sale_id)? != SaleState::Open {
                return Err(StoreError::Conflict("the sale is no longer open".into()));
            }
            let mut a = a.clone();
            if prepared {
                // The draft is this attempt: inserted first, nothing is retired.
                w.insert_attempt(&a)?;
                w.put_draft(&a.sale_id, None)?;
            } else if w.put_draft(&a.sale_id, None)? {
                // A draft this press does not use, and that may have been sent, became an
                // attempt owed a cancel (`WriteTx::retire_draft`): this one is newer.
                a.created_at = crate::now_rfc3339();
                a.updated_at = a.created_at.clone();
                w.insert_attempt(&a)?;
            } else {
                w.insert_attempt(&a)?;
            }
            let mut e = entry(JournalKind::PaymentRequested, &a, operator);
            e.detail = serde_json::json!({"idempotency_key": a.authorize_key});
            w.journal(e)?;
            if prepared {
                // Nor need the request wait for this commit: if it is lost (a crash before the
                // WAL write, a power cut after it), the draft is still there and the next press
                // replays the same request.
                early.answer(Ok(Prepared::Stored(a.clone())));
                answered.set(true);
            }
            Ok(a)
        };
        let stored = if prepared {
            db.write_relaxed(write)
        } else {
            db.write(write)
        };
        let attempt = match stored {
            Ok(a) => a,
            Err(e) => {
                if answered.get() {
                    // The request may already be on its way under the draft's key.
                    if let Err(e) = db.mark_draft_maybe_sent(sale_id) {
                        tracing::error!(error = %e, sale = sale_id, "cannot mark the sale's payment draft as maybe sent");
                    }
                }
                if scanned {
                    // The scanned customer code is kept for the next try.
                    *self
                        .inner
                        .customer_token
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = opts.customer_token;
                }
                return Err(e.into());
            }
        };
        Ok(Prepared::Stored(attempt))
    }

    /// The payment to prepare for `view` (an open sale with something to pay and no payment in
    /// flight): the attempt a "Pay" press without options would start. Written in the commit
    /// that changed the sale; see `PaymentDraft`.
    fn draft_for(&self, view: &SaleView) -> Option<PaymentDraft> {
        if view.sale.state != SaleState::Open || view.total <= 0 || view.live_attempt().is_some() {
            return None;
        }
        let a = self
            .new_attempt(view, "", &PaymentOptions::default(), None)
            .ok()?;
        Some(PaymentDraft {
            attempt_id: a.id,
            authorize_key: a.authorize_key,
            finalize_key: a.finalize_key,
            authorize_body: a.authorize_body,
        })
    }

    /// Prepares the sale's next payment in this transaction (or drops the draft when there is
    /// nothing to prepare), after a write that left it open without a payment in flight.
    fn redraft(&self, w: &mut WriteTx<'_>, sale_id: &str) -> Result<(), StoreError> {
        let view = w.sale(sale_id)?;
        w.put_draft(sale_id, self.draft_for(&view).as_ref())?;
        Ok(())
    }

    /// The attempt for `view`: ids (fresh, or the draft's `id`), idempotency keys derived from
    /// them, and the exact authorize body every retry will send.
    fn new_attempt(
        &self,
        view: &SaleView,
        corr: &str,
        opts: &PaymentOptions,
        id: Option<&str>,
    ) -> Result<AttemptRow, TerminalError> {
        let attempt_id = id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        let cfg = &self.inner.cfg;
        let key = |op: &str| {
            uuid::Uuid::new_v5(
                &KEY_NAMESPACE,
                format!("{}/{attempt_id}/{op}", cfg.terminal_id).as_bytes(),
            )
            .to_string()
        };
        let body = AuthorizeRequest {
            currency: view.sale.currency.code().into(),
            request_payment_transaction: wire::RequestPaymentTransaction {
                amount: view.total,
                payment_transaction_reference: view.sale.id.clone(),
                capture: cfg.payment.capture.clone(),
            },
            supplementary_purchase_data: wire::SupplementaryPurchaseData {
                purchase_reference: view.sale.id.clone(),
                line_items: view
                    .lines
                    .iter()
                    .map(|l| wire::LineItem {
                        name: l.name.clone(),
                        quantity: l.quantity,
                        unit_price: l.unit_price,
                        total_amount: l.total_amount,
                        reference: l.reference.clone(),
                    })
                    .collect(),
            },
            step_up_config: Some(wire::StepUpConfig {
                payment_request_reference: attempt_id.clone(),
                customer_interaction_config: wire::CustomerInteractionConfig {
                    method: "HANDOVER".into(),
                    return_url: cfg.klarna.return_url.clone(),
                },
            }),
            point_of_checkout: point_of_checkout(cfg),
            point_of_transaction: wire::PointOfTransaction {
                kind: "TERMINAL".into(),
                terminal_reference: cfg.terminal_id.clone(),
            },
            klarna_network_data: opts.network_data.clone(),
        };
        let now = chrono::Utc::now();
        let deadline =
            now + chrono::Duration::from_std(cfg.payment.in_store_timeout()).unwrap_or_default();
        let attempt = AttemptRow {
            id: attempt_id.clone(),
            sale_id: view.sale.id.clone(),
            state: AttemptState::Requested,
            amount: view.total,
            currency: view.sale.currency.code().into(),
            correlation_id: corr.to_string(),
            authorize_key: key("authorize"),
            finalize_key: key("finalize"),
            authorize_body: serde_json::to_string(&body)
                .map_err(|e| TerminalError::Internal(e.to_string()))?,
            interop_token: opts.customer_token.clone(),
            klarna_request_id: None,
            payment_request_url: None,
            expires_at: None,
            deadline_at: deadline.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            klarna_transaction_id: None,
            cancel_confirmed: false,
            reason: None,
            created_at: crate::now_rfc3339(),
            updated_at: crate::now_rfc3339(),
        };
        Ok(attempt)
    }

    pub async fn attempt(&self, id: &str) -> Result<AttemptRow, TerminalError> {
        let id = id.to_string();
        Ok(self.inner.store.call(move |db| db.attempt(&id)).await?)
    }

    /// Moves an attempt by `event` inside one transaction, re-reading it there so concurrent
    /// paths (follower, cashier, webhook) are serialised by the database thread. `edit` adjusts
    /// the row (ids, reason); returns the new row, or None if the event no longer applied.
    async fn transition(
        &self,
        attempt_id: &str,
        event: PaymentEvent,
        operator: Option<String>,
        edit: impl FnOnce(&mut AttemptRow) + Send + 'static,
        extra: impl FnOnce(&mut WriteTx<'_>, &AttemptRow, &str) -> Result<(), StoreError>
        + Send
        + 'static,
    ) -> Result<Option<AttemptRow>, TerminalError> {
        let id = attempt_id.to_string();
        let op = operator.unwrap_or_else(|| "kassa".to_string());
        // What these two events record is learnt again from Klarna after a power cut (the
        // request by replaying the stored authorize key, the state by the next poll), so the QR
        // code need not wait for the disk; every other transition is durable before it returns.
        let relaxed = matches!(
            event,
            PaymentEvent::StepUpRequired | PaymentEvent::CustomerOpened
        );
        let t = self.clone();
        let row = self
            .inner
            .store
            .call_early(move |db, early| {
                let write = |w: &mut WriteTx<'_>| {
                    let mut a = w.attempt(&id)?;
                    let Ok(next) = a.state.next(event) else {
                        return Ok(None);
                    };
                    let changed = next != a.state;
                    a.state = next;
                    edit(&mut a);
                    if next.is_final() && a.cancel_confirmed {
                        // Settled: the customer's scanned code is never needed again.
                        a.interop_token = None;
                    }
                    w.update_attempt(&a)?;
                    if changed {
                        let mut e = entry(journal_kind_for(next), &a, &op);
                        if let Some(r) = &a.reason {
                            e.detail = serde_json::json!({"reason": r});
                        }
                        w.journal(e)?;
                        extra(w, &a, &op)?;
                        if next.is_final() {
                            // The sale may be paid again at once: prepare that payment too.
                            t.redraft(w, &a.sale_id)?;
                        }
                    }
                    if relaxed {
                        // Nor need it wait for the commit: the row is final once written here.
                        early.answer(Some(a.clone()));
                    }
                    Ok(Some(a))
                };
                if relaxed {
                    db.write_relaxed(write)
                } else {
                    db.write(write)
                }
            })
            .await?;
        Ok(row)
    }

    /// Applies authorize's answer (`first_send`, or a retry of it) to the attempt; returns the
    /// attempt as written when the answer moved it to a step-up, a decline or a doubt.
    async fn apply_authorize(
        &self,
        a: &AttemptRow,
        result: Result<AuthorizeOutcome, KlarnaError>,
        first_send: bool,
    ) -> Result<Option<AttemptRow>, TerminalError> {
        // After an answer that may have charged the customer, an error on a retry says nothing
        // about that first answer: never fail the attempt on it (the sale would be payable again).
        let suspect = self.seen_unplaceable(&a.id);
        let result = match result {
            Err(KlarnaError::Unreachable(m)) if !first_send || suspect => {
                tracing::warn!(attempt = %a.id, "Klarna unreachable on a retry; asking again: {m}");
                return Ok(None);
            }
            Err(e @ (KlarnaError::Final { .. } | KlarnaError::Auth { .. })) if suspect => {
                return self
                    .unplaceable(a, format!("a retry was refused ({}: {e})", e.code()), true)
                    .await;
            }
            r => r,
        };
        match result {
            Ok(AuthorizeOutcome::StepUp(up)) => {
                self.forget_unplaceable(&a.id);
                let Some(rid) = up.request_id else {
                    return self
                        .fail(a, "STEP_UP_REQUIRED without a payment_request_id")
                        .await
                        .map(|()| None);
                };
                let Some(url) = up.url else {
                    // Klarna made a request kassa cannot show: it must still be cancelled there.
                    let reason = "payment request without a payment_request_url \
                                  (state_context.customer_interaction.payment_request_url)";
                    self.transition(
                        &a.id,
                        PaymentEvent::Failed,
                        None,
                        move |a| {
                            a.klarna_request_id = Some(rid);
                            a.reason = Some(reason.into());
                        },
                        |_, _, _| Ok(()),
                    )
                    .await?;
                    self.spawn_follower(a.id.clone());
                    return Ok(None);
                };
                let exp = up.expires_at;
                self.transition(
                    &a.id,
                    PaymentEvent::StepUpRequired,
                    None,
                    move |a| {
                        a.klarna_request_id = Some(rid);
                        a.payment_request_url = Some(url);
                        a.expires_at = exp;
                    },
                    |_, _, _| Ok(()),
                )
                .await
            }
            Ok(AuthorizeOutcome::Approved { transaction_id }) => {
                self.forget_unplaceable(&a.id);
                self.mark_paid(&a.id, PaymentEvent::ApprovedAtOnce, transaction_id)
                    .await
                    .map(|()| None)
            }
            Ok(AuthorizeOutcome::Declined { reason }) => {
                self.declined(a, PaymentEvent::AuthorizeDeclined, reason)
                    .await
            }
            Ok(AuthorizeOutcome::Unplaceable {
                why,
                money_may_have_moved,
            }) => self.unplaceable(a, why, money_may_have_moved).await,
            // Nothing reached Klarna: nothing to clean up, and the cashier learns it at once.
            Err(e @ KlarnaError::Unreachable(_)) => {
                self.fail(a, &e.to_string()).await?;
                Err(TerminalError::KlarnaUnavailable(e.to_string()))
            }
            Err(e @ (KlarnaError::Final { .. } | KlarnaError::Auth { .. })) => {
                self.fail(a, &format!("{}: {e}", e.code())).await?;
                Err(TerminalError::KlarnaRefused {
                    code: e.code().into(),
                    message: e.to_string(),
                })
            }
            // Unknown outcome or throttled: the attempt stays `requested`; its follower retries
            // with the same key, which Klarna answers with the first result.
            Err(e) => {
                tracing::warn!(attempt = %a.id, "authorize outcome unknown, will retry: {e}");
                Ok(None)
            }
        }
    }

    /// Klarna said `DECLINED` (the only answer that is a decline), with its reason if it gave one.
    async fn declined(
        &self,
        a: &AttemptRow,
        event: PaymentEvent,
        reason: Option<String>,
    ) -> Result<Option<AttemptRow>, TerminalError> {
        self.forget_unplaceable(&a.id);
        let reason = reason.unwrap_or_else(|| "DECLINED".into());
        self.transition(
            &a.id,
            event,
            None,
            move |a| {
                a.reason = Some(reason);
            },
            |_, _, _| Ok(()),
        )
        .await
    }

    /// A 2xx answer kassa cannot place, for an authorization (first or final). The same key is
    /// asked again (the follower retries); after `UNPLACEABLE_TRIES` answers like it, an answer
    /// that may have charged the customer puts the attempt in doubt for a manager, and one that
    /// cannot have (a step-up without its request) fails it. Never a decline.
    async fn unplaceable(
        &self,
        a: &AttemptRow,
        why: String,
        money_may_have_moved: bool,
    ) -> Result<Option<AttemptRow>, TerminalError> {
        let tries = {
            let mut m = self
                .inner
                .unplaceable
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let n = m.entry(a.id.clone()).or_default();
            *n += 1;
            *n
        };
        tracing::warn!(attempt = %a.id, tries, "Klarna's answer cannot be placed: {why}");
        if tries < UNPLACEABLE_TRIES {
            return Ok(None);
        }
        self.forget_unplaceable(&a.id);
        if !money_may_have_moved {
            self.fail(a, &why).await?;
            return Ok(None);
        }
        let reason = format!(
            "Klarna's answer could not be read {tries} times ({why}); the customer may have been charged"
        );
        self.transition(
            &a.id,
            PaymentEvent::Unplaceable,
            None,
            move |a| {
                a.reason = Some(reason);
            },
            |_, _, _| Ok(()),
        )
        .await
    }

    /// Whether an answer that may have charged the customer was seen for this attempt.
    fn seen_unplaceable(&self, attempt_id: &str) -> bool {
        self.inner
            .unplaceable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(attempt_id)
    }

    fn forget_unplaceable(&self, attempt_id: &str) {
        self.inner
            .unplaceable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(attempt_id);
    }

    async fn fail(&self, a: &AttemptRow, reason: &str) -> Result<(), TerminalError> {
        let reason = reason.to_string();
        self.transition(
            &a.id,
            PaymentEvent::Failed,
            None,
            move |a| {
                a.reason = Some(reason);
                // A failed authorize created nothing at Klarna that needs canceling.
                a.cancel_confirmed = true;
            },
            |_, _, _| Ok(()),
        )
        .await?;
        Ok(())
    }

    async fn mark_paid(
        &self,
        attempt_id: &str,
        event: PaymentEvent,
        transaction_id: String,
    ) -> Result<(), TerminalError> {
        let tx_id = transaction_id.clone();
        self.transition(
            attempt_id,
            event,
            None,
            move |a| {
                a.klarna_transaction_id = Some(tx_id);
                a.cancel_confirmed = true;
            },
            sale_paid,
        )
        .await?;
        Ok(())
    }

    /// A manager decides a payment in doubt (their PIN checked first, a refusal journaled).
    /// "Paid" is checked at Klarna before it is recorded: the transaction must exist, in the
    /// attempt's currency and amount, for this sale. The decision and who made it are journaled
    /// with the attempt's move, in one commit.
    pub async fn resolve_doubt(
        &self,
        attempt_id: &str,
        resolution: DoubtResolution,
        manager: &str,
        pin: Option<String>,
        note: Option<String>,
    ) -> Result<AttemptRow, TerminalError> {
        crate::store::validate_operator(manager)?;
        crate::manager::authorize(self.store(), pin, "resolve_payment_in_doubt", manager).await?;
        let a = self.attempt(attempt_id).await?;
        if a.state != AttemptState::InDoubt {
            return Err(TerminalError::Conflict(format!(
                "payment {attempt_id} is not in doubt (it is {})",
                a.state.as_str()
            )));
        }
        let (event, tx_id) = match &resolution {
            DoubtResolution::Paid {
                klarna_transaction_id,
            } => {
                use crate::klarna::answer::{NOT_A_TRANSACTION_ID, transaction_id};
                let id = transaction_id(klarna_transaction_id)
                    .ok_or_else(|| TerminalError::Invalid(NOT_A_TRANSACTION_ID.into()))?;
                self.check_transaction_pays(&a, &id).await?;
                (PaymentEvent::ResolvedPaid, Some(id))
            }
            DoubtResolution::NotPaid => (PaymentEvent::ResolvedNotPaid, None),
        };
        let paid = tx_id.is_some();
        let detail = serde_json::json!({
            "outcome": if paid { "paid" } else { "not_paid" },
            "manager": manager,
            "klarna_transaction_id": tx_id,
            "note": note,
        });
        let tx_for_row = tx_id.clone();
        let moved = self
            .transition(
                attempt_id,
                event,
                Some(manager.to_string()),
                move |a| {
                    // Not paid: a request that may still be open at Klarna is cancelled there
                    // by the follower (and a charge it finds after all is refunded).
                    if paid {
                        a.cancel_confirmed = true;
                    }
                    a.klarna_transaction_id = tx_for_row;
                    a.reason = Some(if paid {
                        "a manager found the payment at Klarna".into()
                    } else {
                        "a manager confirmed the customer was not charged".into()
                    });
                },
                move |w, a, op| {
                    if paid {
                        sale_paid(w, a, op)?;
                    }
                    let mut e = entry(JournalKind::DoubtResolved, a, op);
                    e.detail = detail;
                    w.journal(e)?;
                    Ok(())
                },
            )
            .await?;
        self.publish_sale(&a.sale_id);
        let moved = moved.ok_or_else(|| {
            TerminalError::Conflict(format!("payment {attempt_id} was decided meanwhile"))
        })?;
        if !moved.cancel_confirmed {
            self.spawn_follower(moved.id.clone());
        }
        Ok(moved)
    }

    /// Reads a Klarna transaction for staff (a return, a manager's decision): not found, refused,
    /// or Klarna unreachable (`later` says what waits for it), each in words they can act on.
    pub(crate) async fn read_transaction_for_staff(
        &self,
        id: &str,
        later: &str,
    ) -> Result<wire::PaymentTransaction, TerminalError> {
        let corr = uuid::Uuid::new_v4().simple().to_string();
        let opts = CallOptions {
            correlation_id: &corr,
            ..Default::default()
        };
        self.inner
            .klarna
            .read_transaction(id, opts)
            .await
            .map_err(|e| match e {
                KlarnaError::Final { status: 404, .. } => TerminalError::NotFound(format!(
                    "no Klarna purchase {id}; check the code and scan again"
                )),
                e @ (KlarnaError::Final { .. } | KlarnaError::Auth { .. }) => {
                    TerminalError::KlarnaRefused {
                        code: e.code().into(),
                        message: e.to_string(),
                    }
                }
                e => TerminalError::KlarnaUnavailable(format!("{e}; {later}")),
            })
    }

    /// Whether Klarna's transaction `id` is this attempt's payment (same currency, amount and,
    /// where Klarna names it, the sale as its reference).
    async fn check_transaction_pays(&self, a: &AttemptRow, id: &str) -> Result<(), TerminalError> {
        let tx = self
            .read_transaction_for_staff(
                id,
                "the payment can be marked paid once Klarna confirms the transaction",
            )
            .await?;
        if tx.currency != a.currency || tx.amount != a.amount {
            return Err(TerminalError::Conflict(format!(
                "Klarna's transaction {id} is for {} {}, this payment for {} {}",
                tx.amount, tx.currency, a.amount, a.currency
            )));
        }
        if tx.refunded_amount.unwrap_or(0) > 0 {
            return Err(TerminalError::Conflict(format!(
                "Klarna's transaction {id} has refunds: it cannot pay this sale"
            )));
        }
        // A transaction already on an attempt (paid, or charged after the till gave up and
        // being refunded) pays nothing more.
        let tid = id.to_string();
        let used: Option<String> = self
            .inner
            .store
            .call(move |db| db.attempt_by_transaction(&tid))
            .await?
            .map(|a| a.id);
        if let Some(other) = used {
            return Err(TerminalError::Conflict(format!(
                "Klarna's transaction {id} is already recorded for payment {other}"
            )));
        }
        if let Some(r) = tx.payment_transaction_reference.as_deref()
            && r != a.sale_id
        {
            return Err(TerminalError::Conflict(format!(
                "Klarna's transaction {id} belongs to {r}, not to this sale"
            )));
        }
        Ok(())
    }

    fn spawn_follower(&self, attempt_id: String) {
        self.spawn_follower_after(attempt_id, Duration::ZERO);
    }

    fn spawn_follower_after(&self, attempt_id: String, first: Duration) {
        let wake = Arc::new(Notify::new());
        {
            let mut f = self
                .inner
                .followers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if f.contains_key(&attempt_id) {
                return;
            }
            f.insert(attempt_id.clone(), wake.clone());
        }
        let t = self.clone();
        tokio::spawn(async move {
            t.follow(&attempt_id, &wake, first).await;
            t.inner
                .followers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&attempt_id);
        });
    }

    /// Wakes the follower of an attempt so it reads Klarna now (webhook, cancel).
    pub fn wake(&self, attempt_id: &str) {
        if let Some(n) = self
            .inner
            .followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(attempt_id)
        {
            n.notify_one();
        }
    }

    /// Follows one attempt until it is settled: polls Klarna, finalizes, times out, confirms
    /// cancels. Survives any error by backing off; stops only when nothing is left to do.
    async fn follow(&self, attempt_id: &str, wake: &Notify, first: Duration) {
        let poll = self.inner.cfg.payment.poll_interval();
        let started = Instant::now();
        let mut delay = first;
        let mut poll_delay = poll;
        loop {
            if !delay.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(jitter(delay)) => {}
                    _ = wake.notified() => {}
                }
            }
            let a = match self.attempt(attempt_id).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(attempt = attempt_id, "cannot read attempt: {e}");
                    return;
                }
            };
            let sale_id = a.sale_id.clone();
            let step = self.follow_step(a).await;
            self.publish_sale(&sale_id);
            delay = match step {
                Ok(Step::Done) => {
                    self.forget_unplaceable(attempt_id);
                    self.inner
                        .webhook_tokens
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(attempt_id);
                    return;
                }
                Ok(Step::Again) => {
                    poll_delay = self.inner.cfg.payment.next_poll(
                        started.elapsed(),
                        poll_delay,
                        self.webhooks_live(),
                    );
                    poll_delay
                }
                Ok(Step::Wait(d)) => d,
                Err(e) => {
                    tracing::warn!(
                        attempt = attempt_id,
                        "payment follow-up failed, backing off: {e}"
                    );
                    (delay * 2).clamp(poll, MAX_BACKOFF)
                }
            };
        }
    }

    async fn follow_step(&self, a: AttemptRow) -> Result<Step, KlarnaError> {
        if a.state.is_final() {
            if a.cancel_confirmed {
                return Ok(Step::Done);
            }
            return self.confirm_cancel(&a).await;
        }
        if a.state == AttemptState::InDoubt {
            // Only a manager's decision moves it (see `resolve_doubt`).
            return Ok(Step::Done);
        }
        let past_deadline = parse_time(&a.deadline_at).is_some_and(|d| chrono::Utc::now() > d);
        // A request whose answer may have charged the customer is not timed out: it is asked
        // until it is placed or in doubt, never let go so the sale can be paid again.
        if past_deadline && a.state != AttemptState::Completed && !self.seen_unplaceable(&a.id) {
            let r = self
                .transition(
                    &a.id,
                    PaymentEvent::InStoreTimeout,
                    None,
                    |a| {
                        a.reason =
                            Some("in-store timeout: the customer did not pay in time".into());
                    },
                    |_, _, _| Ok(()),
                )
                .await;
            if let Err(e) = r {
                tracing::error!("cannot record in-store timeout: {e}");
            }
            return Ok(Step::Again);
        }
        match a.state {
            AttemptState::Requested => {
                let opts = CallOptions {
                    correlation_id: &a.correlation_id,
                    idempotency_key: Some(&a.authorize_key),
                    customer_token: a.interop_token.as_deref(),
                    session_token: None,
                };
                let r = self
                    .inner
                    .klarna
                    .authorize_raw(&a.authorize_body, opts)
                    .await;
                let retry = r.as_ref().err().filter(|e| e.is_retryable()).cloned();
                let unplaceable = matches!(r, Ok(AuthorizeOutcome::Unplaceable { .. }));
                let _ = self.apply_authorize(&a, r, false).await;
                match retry {
                    Some(KlarnaError::Throttled { retry_after }) => Ok(Step::Wait(retry_after)),
                    Some(e) => Err(e),
                    // Asked again after a pause, so a passing fault at Klarna can clear.
                    None if unplaceable => Ok(Step::Wait(UNPLACEABLE_PAUSE)),
                    None => Ok(Step::Again),
                }
            }
            AttemptState::AwaitingCustomer | AttemptState::CustomerOpened => {
                let Some(rid) = a.klarna_request_id.clone() else {
                    return Ok(Step::Again);
                };
                let req = self
                    .inner
                    .klarna
                    .read_payment_request(&rid, Self::options(&a, None))
                    .await?;
                self.apply_request_state(&a, &req).await
            }
            AttemptState::Completed => {
                let token = self
                    .inner
                    .webhook_tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&a.id);
                self.finalize(&a, token.as_deref()).await
            }
            // In doubt: only a manager's decision moves it (see `resolve_doubt`).
            _ => Ok(Step::Done),
        }
    }

    /// Applies what Klarna says about the payment request (read, or told by a webhook) to the
    /// attempt, and finalizes a completed one.
    async fn apply_request_state(
        &self,
        a: &AttemptRow,
        req: &RequestRead,
    ) -> Result<Step, KlarnaError> {
        match self.apply_request_state_only(a, req).await? {
            None => Ok(Step::Again),
            Some(Some(m)) if m.state == AttemptState::Completed => {
                self.finalize(&m, req.session_token.as_deref()).await
            }
            Some(Some(m)) if m.state.is_final() => Ok(Step::Done),
            Some(Some(_)) => Ok(Step::Again),
            // The attempt moved meanwhile (cashier canceled): look again at once.
            Some(None) => Ok(Step::Wait(Duration::from_millis(1))),
        }
    }

    /// The state change alone: None when Klarna's state changes nothing to follow (submitted,
    /// or a state kassa does not know), else the attempt as the transition wrote it (None inside
    /// when it no longer applied).
    async fn apply_request_state_only(
        &self,
        a: &AttemptRow,
        req: &RequestRead,
    ) -> Result<Option<Option<AttemptRow>>, KlarnaError> {
        let event = match &req.state {
            RequestState::Submitted => return Ok(None),
            RequestState::InProgress => PaymentEvent::CustomerOpened,
            RequestState::Completed => PaymentEvent::CustomerCompleted,
            RequestState::Declined => PaymentEvent::CustomerDeclined,
            RequestState::Expired => PaymentEvent::KlarnaExpired,
            RequestState::Canceled => PaymentEvent::KlarnaCanceled,
            RequestState::Other(other) => {
                tracing::warn!("unknown payment request state {other:?}; polling on");
                return Ok(None);
            }
        };
        let settled_at_klarna = event != PaymentEvent::CustomerOpened;
        let moved = self
            .transition(
                &a.id,
                event,
                None,
                move |a| {
                    if settled_at_klarna {
                        a.cancel_confirmed = true;
                    }
                },
                |_, _, _| Ok(()),
            )
            .await
            .map_err(|e| KlarnaError::UnknownOutcome(e.to_string()))?;
        Ok(Some(moved))
    }

    /// Final authorization with the session token; only ever for an attempt in `completed`,
    /// whose sale is open (cancel abandons sale and attempt together, so that holds).
    async fn finalize(&self, a: &AttemptRow, token: Option<&str>) -> Result<Step, KlarnaError> {
        let read;
        let token = match token {
            Some(t) => t,
            None => {
                let rid = a.klarna_request_id.as_deref().unwrap_or_default();
                read = self
                    .inner
                    .klarna
                    .read_payment_request(rid, Self::options(a, None))
                    .await?;
                match read.session_token.as_deref() {
                    Some(t) => t,
                    None if self.seen_unplaceable(&a.id) => {
                        // A final authorization was answered in a way kassa cannot place: it
                        // may have charged, so this is a doubt, not a failure.
                        return self
                            .placeless_final(
                                a,
                                "no session token to retry the final authorization with".into(),
                            )
                            .await;
                    }
                    None => {
                        // Nothing was charged yet (no final authorization was made without a
                        // token), so failing cannot hide a payment.
                        let _ = self
                            .fail(
                                a,
                                "completed payment request without a session token \
                                 (state_context.klarna_network_session_token)",
                            )
                            .await;
                        return Ok(Step::Done);
                    }
                }
            }
        };
        // Derived the same way on every retry, so the bytes under the finalize key never change.
        let mut body: serde_json::Value =
            serde_json::from_str(&a.authorize_body).unwrap_or(serde_json::Value::Null);
        if let Some(o) = body.as_object_mut() {
            o.remove("step_up_config");
        }
        let body = body.to_string();
        let opts = CallOptions {
            correlation_id: &a.correlation_id,
            idempotency_key: Some(&a.finalize_key),
            session_token: Some(token),
            customer_token: None,
        };
        match self.inner.klarna.authorize_raw(&body, opts).await {
            Ok(AuthorizeOutcome::Approved { transaction_id }) => {
                self.forget_unplaceable(&a.id);
                self.mark_paid(&a.id, PaymentEvent::FinalApproved, transaction_id)
                    .await
                    .map_err(|e| KlarnaError::UnknownOutcome(e.to_string()))?;
                Ok(Step::Done)
            }
            Ok(AuthorizeOutcome::Declined { reason }) => {
                self.declined(a, PaymentEvent::FinalDeclined, reason)
                    .await
                    .map_err(|e| KlarnaError::UnknownOutcome(e.to_string()))?;
                Ok(Step::Done)
            }
            // A final authorization never steps up; an answer that does is one kassa cannot
            // place, like any other: the customer may have been charged.
            Ok(AuthorizeOutcome::StepUp(_)) => {
                self.placeless_final(a, "a final authorization answered STEP_UP_REQUIRED".into())
                    .await
            }
            Ok(AuthorizeOutcome::Unplaceable { why, .. }) => self.placeless_final(a, why).await,
            Err(KlarnaError::Throttled { retry_after }) => Ok(Step::Wait(retry_after)),
            Err(e) if e.is_retryable() => Err(e),
            // Refused on a retry after an answer that may have charged: still a doubt.
            Err(e) if self.seen_unplaceable(&a.id) => {
                self.placeless_final(a, format!("a retry was refused ({}: {e})", e.code()))
                    .await
            }
            Err(e) => {
                let _ = self
                    .fail(
                        a,
                        &format!("final authorization refused: {}: {e}", e.code()),
                    )
                    .await;
                Ok(Step::Done)
            }
        }
    }

    async fn placeless_final(&self, a: &AttemptRow, why: String) -> Result<Step, KlarnaError> {
        let moved = self
            .unplaceable(a, why, true)
            .await
            .map_err(|e| KlarnaError::UnknownOutcome(e.to_string()))?;
        Ok(match moved {
            Some(_) => Step::Done,
            None => Step::Wait(UNPLACEABLE_PAUSE),
        })
    }

    /// For an attempt the till gave up on: make sure Klarna's request is canceled too, and if the
    /// customer completed it anyway, record that it was never finalized (nobody is charged).
    async fn confirm_cancel(&self, a: &AttemptRow) -> Result<Step, KlarnaError> {
        let Some(rid) = a.klarna_request_id.clone() else {
            // Authorize's outcome was never learnt: ask again with the same key to find the request.
            let opts = CallOptions {
                correlation_id: &a.correlation_id,
                idempotency_key: Some(&a.authorize_key),
                customer_token: a.interop_token.as_deref(),
                session_token: None,
            };
            let outcome = match self
                .inner
                .klarna
                .authorize_raw(&a.authorize_body, opts)
                .await
            {
                Ok(r) => r,
                Err(e) if e.is_retryable() => return Err(e),
                Err(_) => {
                    return self
                        .settle_cancel(a, "authorize was refused; nothing to cancel", None)
                        .await;
                }
            };
            return match outcome {
                AuthorizeOutcome::StepUp(StepUp {
                    request_id: Some(rid),
                    ..
                }) => {
                    let id = a.id.clone();
                    self.inner
                        .store
                        .call(move |db| {
                            db.write(|w| {
                                let mut row = w.attempt(&id)?;
                                row.klarna_request_id = Some(rid);
                                w.update_attempt(&row)
                            })
                        })
                        .await
                        .map_err(|e| KlarnaError::UnknownOutcome(e.to_string()))?;
                    Ok(Step::Wait(Duration::from_millis(1)))
                }
                AuthorizeOutcome::Approved { transaction_id } => {
                    self.refund_charge_after_abandon(a, transaction_id).await
                }
                AuthorizeOutcome::Declined { .. } | AuthorizeOutcome::StepUp(_) => {
                    self.settle_cancel(a, "no payment request was created", None)
                        .await
                }
                // Still unreadable: keep asking (the follower backs off); never assume nothing
                // was charged.
                AuthorizeOutcome::Unplaceable { why, .. } => Err(KlarnaError::UnknownOutcome(why)),
            };
        };
        match self
            .inner
            .klarna
            .cancel_payment_request(&rid, Self::options(a, None))
            .await
        {
            Ok(req) => {
                self.settle_cancel(a, "Klarna confirmed the cancel", Some(req.state.as_str()))
                    .await
            }
            Err(KlarnaError::Final { .. }) => {
                // Already final at Klarna: find out which final state.
                let req = self
                    .inner
                    .klarna
                    .read_payment_request(&rid, Self::options(a, None))
                    .await?;
                self.settle_cancel(
                    a,
                    "the request was already final at Klarna",
                    Some(req.state.as_str()),
                )
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// Klarna approved (charged) a payment the till had given up on before it learnt the answer:
    /// the charge is refunded through the outbox (exactly once, whatever happens next), in the
    /// same commit as the journal row that says so.
    async fn refund_charge_after_abandon(
        &self,
        a: &AttemptRow,
        transaction_id: String,
    ) -> Result<Step, KlarnaError> {
        let id = a.id.clone();
        let limits = self.inner.cfg.outbox.clone();
        let lines: Vec<wire::LineItem> =
            serde_json::from_str::<AuthorizeRequest>(&a.authorize_body)
                .map(|b| b.supplementary_purchase_data.line_items)
                .unwrap_or_default();
        // Captured at once: refunded. Only authorized (capture LATER): the authorization is
        // released (void), since there is nothing captured to refund.
        let captured = serde_json::from_str::<AuthorizeRequest>(&a.authorize_body)
            .map(|b| b.request_payment_transaction.capture != "LATER")
            .unwrap_or(true);
        let op = NewOperation {
            operation: if captured {
                crate::outbox::Operation::Refund
            } else {
                crate::outbox::Operation::Void
            },
            transaction_id: transaction_id.clone(),
            currency: a.currency.clone(),
            amount: a.amount,
            line_items: if captured { lines } else { vec![] },
            reference: format!("abandoned-{}", a.id),
            operator: "kassa".into(),
            sale_id: Some(a.sale_id.clone()),
        };
        self.inner
            .store
            .call(move |db| {
                if db.attempt(&id)?.cancel_confirmed {
                    return Ok(());
                }
                db.enqueue_with(&op, &limits, |w, o| {
                    let mut row = w.attempt(&id)?;
                    row.cancel_confirmed = true;
                    row.interop_token = None;
                    row.klarna_transaction_id = Some(transaction_id.clone());
                    row.reason = Some(
                        "Klarna approved after the till gave up; the charge is refunded".into(),
                    );
                    w.update_attempt(&row)?;
                    let mut e = entry(JournalKind::ChargedAfterAbandon, &row, "kassa");
                    e.detail = serde_json::json!({"outbox_id": o.id,
                        "note": "Klarna approved a payment the till had given up on; refunded in full"});
                    w.journal(e)?;
                    Ok(())
                })
                .map(|_| ())
                .map_err(|e| match e {
                    OutboxError::LimitReached(m) => StoreError::OutboxFull(m),
                    OutboxError::Store(e) => e,
                })
            })
            .await
            .map_err(|e| KlarnaError::UnknownOutcome(e.to_string()))?;
        tracing::warn!(attempt = %a.id, "Klarna approved a payment the till had given up on; refund queued");
        self.inner.outbox_wake.notify_one();
        Ok(Step::Done)
    }

    async fn settle_cancel(
        &self,
        a: &AttemptRow,
        why: &str,
        klarna_state: Option<&str>,
    ) -> Result<Step, KlarnaError> {
        let completed = klarna_state == Some("COMPLETED");
        let kind = if completed {
            JournalKind::CompletedAfterAbandon
        } else {
            JournalKind::CancelConfirmed
        };
        let detail = if completed {
            serde_json::json!({"klarna_state": "COMPLETED",
                "note": "the customer approved after the till gave up; never finalized, so the customer is not charged"})
        } else {
            serde_json::json!({"klarna_state": klarna_state, "note": why})
        };
        let id = a.id.clone();
        self.inner
            .store
            .call(move |db| {
                db.write(|w| {
                    let mut row = w.attempt(&id)?;
                    if row.cancel_confirmed {
                        return Ok(());
                    }
                    row.cancel_confirmed = true;
                    row.interop_token = None;
                    if completed {
                        row.reason = Some(
                            "customer approved after the sale was abandoned; not charged".into(),
                        );
                    }
                    w.update_attempt(&row)?;
                    let mut e = entry(kind, &row, "kassa");
                    e.detail = detail;
                    w.journal(e)?;
                    Ok(())
                })
            })
            .await
            .map_err(|e| KlarnaError::UnknownOutcome(e.to_string()))?;
        if completed {
            tracing::warn!(attempt = %a.id, "customer approved a payment the till had abandoned; not finalized");
        }
        Ok(Step::Done)
    }

    /// The cashier stops the payment in progress; the sale stays open for another method.
    pub async fn cancel_payment(
        &self,
        sale_id: &str,
        operator: Option<String>,
    ) -> Result<SaleView, TerminalError> {
        self.cancel(sale_id, operator, false).await
    }

    /// The cashier abandons the sale (and any payment in progress).
    pub async fn abandon_sale(
        &self,
        sale_id: &str,
        operator: Option<String>,
    ) -> Result<SaleView, TerminalError> {
        self.cancel(sale_id, operator, true).await
    }

    async fn cancel(
        &self,
        sale_id: &str,
        operator: Option<String>,
        abandon: bool,
    ) -> Result<SaleView, TerminalError> {
        let operator = self.operator(operator)?;
        let sid = sale_id.to_string();
        let t = self.clone();
        let canceled: Option<String> = self
            .inner
            .store
            .call(move |db| {
                let view = db.sale(&sid)?;
                db.write(|w| {
                    if w.sale_state(&sid)? != SaleState::Open {
                        return Err(StoreError::Conflict(format!("sale {sid} is not open")));
                    }
                    let mut canceled = None;
                    if let Some(live) = view.live_attempt() {
                        let mut a = w.attempt(&live.id)?;
                        a.state = a.state.next(PaymentEvent::CashierCanceled).map_err(|_| {
                            StoreError::Conflict(if a.state == AttemptState::InDoubt {
                                IN_DOUBT_MESSAGE.into()
                            } else {
                                "the customer has already approved; the payment is being completed"
                                    .into()
                            })
                        })?;
                        a.reason = Some("canceled by the cashier".into());
                        w.update_attempt(&a)?;
                        w.journal(entry(JournalKind::PaymentCanceled, &a, &operator))?;
                        canceled = Some(a.id);
                    } else if !abandon {
                        return Err(StoreError::Conflict("no payment is in progress".into()));
                    }
                    if abandon {
                        w.set_sale_state(&sid, SaleState::Abandoned)?;
                        let mut e = JournalEntry::new(JournalKind::SaleAbandoned, &operator);
                        e.sale_id = Some(sid.clone());
                        e.amount = Some(view.total);
                        e.currency = Some(view.sale.currency.code().into());
                        w.journal(e)?;
                    } else {
                        // The sale stays open: prepare the cashier's next press.
                        t.redraft(w, &sid)?;
                    }
                    Ok(canceled)
                })
            })
            .await?;
        if let Some(attempt_id) = canceled {
            // The follower (if any) sees the canceled state and confirms the cancel at Klarna.
            self.wake(&attempt_id);
            self.spawn_follower(attempt_id);
        }
        let (id, publish) = (sale_id.to_string(), self.publisher());
        Ok(self
            .inner
            .store
            .call(move |db| {
                let v = db.sale(&id)?;
                publish(v.clone());
                Ok(v)
            })
            .await?)
    }

    /// Whether verified webhooks are arriving (one came in the last ten minutes).
    fn webhooks_live(&self) -> bool {
        self.inner
            .last_webhook
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < WEBHOOKS_LIVE_FOR)
    }

    /// A verified webhook about a payment request (`payload` as Klarna sent it): its state moves
    /// the attempt at once, without a read, and a completed request's session token goes to the
    /// follower, which finalizes without polling. Returns whether the request is one of this
    /// till's. An event kassa cannot read only wakes the follower, which reads Klarna.
    pub async fn webhook_request_event(
        &self,
        payload: &serde_json::Value,
    ) -> Result<bool, TerminalError> {
        *self
            .inner
            .last_webhook
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let Some(rid) = payload.get("payment_request_id").and_then(|v| v.as_str()) else {
            return Ok(false);
        };
        let Some(attempt_id) = self.attempt_for_request(rid).await? else {
            return Ok(false);
        };
        let wake = match crate::klarna::answer::request_from(
            payload,
            crate::klarna::answer::paths::WEBHOOK_SESSION_TOKEN,
        ) {
            Ok(req) => {
                let a = self.attempt(&attempt_id).await?;
                let token = req.session_token.clone();
                let now = if matches!(
                    a.state,
                    AttemptState::AwaitingCustomer | AttemptState::CustomerOpened
                ) {
                    // The state change only: the final authorization is the follower's.
                    let req = RequestRead {
                        session_token: None,
                        ..req
                    };
                    let moved = match self.apply_request_state_only(&a, &req).await {
                        Ok(Some(Some(m))) => m.state,
                        Ok(_) => a.state,
                        Err(e) => {
                            tracing::warn!(attempt = %attempt_id, "webhook state not applied: {e}");
                            a.state
                        }
                    };
                    self.publish_sale(&a.sale_id);
                    moved
                } else {
                    a.state
                };
                // The token is kept (in memory) only for an attempt its follower will finalize.
                if let Some(t) = token.filter(|_| now == AttemptState::Completed) {
                    self.inner
                        .webhook_tokens
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(attempt_id.clone(), t);
                }
                // The follower has work only once the customer is done (finalize, or stop);
                // a submitted or in-progress event needs nothing from Klarna.
                now == AttemptState::Completed || now.is_final()
            }
            Err(e) => {
                tracing::warn!("webhook payload cannot be read ({e}); reading Klarna");
                true
            }
        };
        if wake {
            self.wake(&attempt_id);
        }
        Ok(true)
    }

    async fn attempt_for_request(
        &self,
        klarna_request_id: &str,
    ) -> Result<Option<String>, TerminalError> {
        let rid = klarna_request_id.to_string();
        Ok(self
            .inner
            .store
            .call(move |db| db.attempt_id_by_request(&rid))
            .await?)
    }

    /// A webhook said a payment request changed: look at Klarna now instead of at the next poll.
    pub async fn nudge_request(&self, klarna_request_id: &str) -> Result<bool, TerminalError> {
        match self.attempt_for_request(klarna_request_id).await? {
            Some(id) => {
                self.wake(&id);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether a webhook event is new (and remembers it).
    pub async fn remember_webhook_event(&self, event_id: &str) -> Result<bool, TerminalError> {
        let id = event_id.to_string();
        Ok(self
            .inner
            .store
            .call(move |db| db.remember_webhook_event(&id))
            .await?)
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

/// What the follower does next.
enum Step {
    Done,
    Again,
    Wait(Duration),
}
