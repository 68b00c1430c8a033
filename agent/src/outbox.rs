//! The durable outbox for post-purchase operations (refund, capture, void): each is written with
//! its idempotency key in the same transaction as the journal row that caused it, before any
//! network call, and one worker sends them, in order per Klarna transaction, exactly once.

pub use crate::config::OutboxLimits;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::health::Health;
use crate::klarna::{CallOptions, KlarnaClient, KlarnaError};
use crate::store::Store;

/// Klarna honours an idempotency key for 24 h; past that a resend could apply twice, so an
/// operation whose answer was lost is checked by reading the transaction first.
const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(23);
/// Operations sent at once (each for a different transaction).
const PARALLEL: usize = 32;
/// Operations fetched at once (heads of distinct transactions), sent in rounds of `PARALLEL`.
const FETCH: usize = 256;

use crate::store::outbox::Outcome;
pub use crate::store::outbox::{
    NewOperation, Operation, OutboxError, OutboxRow, OutboxState, OutboxSummary, Totals, backoff,
};

/// The one worker that drains the outbox; nothing else sends these operations.
pub struct OutboxWorker {
    pub store: Store,
    pub klarna: KlarnaClient,
    pub health: Arc<Health>,
    pub limits: OutboxLimits,
    pub wake: Arc<Notify>,
}

impl OutboxWorker {
    pub async fn run(self) {
        let mut alerted = false;
        // How many operations go out at once, and how far apart: a 429 halves the width and
        // raises the spacing to at least the delay Klarna named; clean rounds widen and tighten.
        let mut width = PARALLEL;
        let mut spacing = Duration::ZERO;
        let mut next_slot = tokio::time::Instant::now();
        loop {
            let limits = self.limits.clone();
            // One fetch feeds several rounds: it returns at most one operation per transaction,
            // so its rounds never hold two operations of one transaction, and the next fetch
            // (queued behind every round's record on the database thread) sees all outcomes.
            let due = self
                .store
                .call(move |db| db.outbox_due(Utc::now(), FETCH))
                .await;
            let due = match due {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("outbox: cannot read the queue: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if due.is_empty() {
                alerted = self.idle(limits, alerted).await;
                continue;
            }
            let mut due = due.into_iter();
            let mut records = vec![];
            loop {
                let chunk: Vec<OutboxRow> = due.by_ref().take(width).collect();
                if chunk.is_empty() {
                    break;
                }
                let me = &self;
                // Paced sends keep their spacing across rounds too, not just within one.
                let round = next_slot.max(tokio::time::Instant::now());
                next_slot = round + spacing * chunk.len() as u32;
                let sends = chunk.into_iter().enumerate().map(|(i, o)| async move {
                    tokio::time::sleep_until(round + spacing * i as u32).await;
                    let outcome = me.send(&o).await;
                    (o, outcome)
                });
                let results = futures_util::future::join_all(sends).await;
                let pause = results
                    .iter()
                    .filter_map(|(_, r)| match r {
                        Outcome::Retry { after: Some(d), .. } => Some(*d),
                        _ => None,
                    })
                    .max();
                let all_sent = results.iter().all(|(_, r)| matches!(r, Outcome::Sent(_)));
                tracing::debug!(width, ?spacing, ?pause, "outbox round");
                // One transaction (one fsync) records the round, while the next round is sent.
                let limits = self.limits.clone();
                records.push(
                    self.store
                        .submit(move |db| db.outbox_record(&results, &limits)),
                );
                // Klarna named a delay: nothing at all is sent before it passes.
                if let Some(p) = pause {
                    width = (width / 2).max(1);
                    // Pace at least at the delay Klarna named, a quarter more with each 429 and
                    // 1 % less with each clean round: the gap settles just above Klarna's limit.
                    spacing = spacing
                        .mul_f64(1.25)
                        .max(p)
                        .clamp(Duration::from_micros(500), Duration::from_secs(1));
                    tokio::time::sleep(p).await;
                } else if all_sent {
                    width = (width + 1).min(PARALLEL);
                    spacing = spacing.mul_f64(0.99);
                    if spacing < Duration::from_micros(500) {
                        spacing = Duration::ZERO;
                    }
                }
            }
            for r in records {
                if let Err(e) = r.await {
                    tracing::error!("outbox: cannot record outcomes: {e}");
                }
            }
        }
    }

    /// Nothing is due: sleeps until the next operation is, or one is queued; warns managers once
    /// when the outbox crosses its alert level. Returns whether it is over that level.
    async fn idle(&self, limits: OutboxLimits, alerted: bool) -> bool {
        let next = self
            .store
            .call(|db| db.outbox_next_due_at())
            .await
            .ok()
            .flatten();
        let wait = next
            .and_then(|n| DateTime::parse_from_rfc3339(&n).ok())
            .map(|n| {
                (n.with_timezone(&Utc) - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            })
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.wake.notified() => {}
        }
        match self.store.call(move |db| db.outbox_summary(&limits)).await {
            Ok(s) => {
                if s.alert && !alerted {
                    tracing::warn!(
                        pending = s.pending,
                        needs_attention = s.needs_attention,
                        fullest_limit_percent = s.fullest_limit_percent,
                        "outbox needs attention"
                    );
                }
                s.alert
            }
            Err(_) => alerted,
        }
    }

    async fn send(&self, o: &OutboxRow) -> Outcome {
        let opts = CallOptions {
            correlation_id: &o.correlation_id,
            idempotency_key: Some(&o.idempotency_key),
            ..Default::default()
        };
        // Past Klarna's idempotency window a resend could apply twice: look first.
        let created = DateTime::parse_from_rfc3339(&o.created_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        if o.maybe_applied && Utc::now() - created > IDEMPOTENCY_WINDOW {
            match self
                .klarna
                .read_transaction(
                    &o.transaction_id,
                    CallOptions {
                        idempotency_key: None,
                        ..opts.clone()
                    },
                )
                .await
            {
                Ok(tx) => {
                    let v = serde_json::to_value(&tx).unwrap_or_default();
                    let field = if o.operation == Operation::Refund {
                        "payment_refund_reference"
                    } else {
                        "payment_capture_reference"
                    };
                    let list = if o.operation == Operation::Refund {
                        "payment_refunds"
                    } else {
                        "payment_captures"
                    };
                    if v[list]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x[field] == o.reference.as_str()))
                    {
                        return Outcome::Sent(serde_json::json!({"found_on_read": true}));
                    }
                }
                Err(e) => return classify(e),
            }
        }
        let r = match o.operation {
            Operation::Refund => {
                self.klarna
                    .refund_raw(&o.transaction_id, &o.body, opts)
                    .await
            }
            Operation::Capture => {
                self.klarna
                    .capture_raw(&o.transaction_id, &o.body, opts)
                    .await
            }
            Operation::Void => self.klarna.void(&o.transaction_id, opts).await,
        };
        match r {
            Ok(v) => Outcome::Sent(v),
            Err(e) => classify(e),
        }
    }
}

fn classify(e: KlarnaError) -> Outcome {
    match e {
        KlarnaError::Throttled { retry_after } => Outcome::Retry {
            after: Some(retry_after),
            maybe_applied: false,
            error: e.to_string(),
        },
        KlarnaError::Unreachable(_) => Outcome::Retry {
            after: None,
            maybe_applied: false,
            error: e.to_string(),
        },
        KlarnaError::UnknownOutcome(_) => Outcome::Retry {
            after: None,
            maybe_applied: true,
            error: e.to_string(),
        },
        KlarnaError::Final { .. } | KlarnaError::Auth { .. } => Outcome::Final {
            code: e.code().to_string(),
            message: e.to_string(),
        },
    }
}
