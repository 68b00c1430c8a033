//! The till's side of refunds, captures and voids: checked against the purchase, queued in
//! the outbox (durable before the caller hears back), and a manager's word on a stuck one.

use super::*;

impl Terminal {
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
    pub(super) async fn refundable(
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
}
