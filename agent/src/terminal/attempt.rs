//! Moving one payment attempt: every change goes through `transition` (one transaction, one
//! journal row), and authorize's answers become events there, never a decline by guesswork.

use super::*;

pub(super) fn journal_kind_for(state: AttemptState) -> JournalKind {
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

/// In the commit that pays an attempt: the sale becomes paid and its receipt is issued.
pub(super) fn sale_paid(w: &mut WriteTx<'_>, a: &AttemptRow, op: &str) -> Result<(), StoreError> {
    let receipt_no = w.set_sale_state(&a.sale_id, SaleState::Paid)?;
    let mut e = entry(JournalKind::ReceiptIssued, a, op);
    e.detail = serde_json::json!({"receipt_no": receipt_no});
    w.journal(e)?;
    Ok(())
}

/// Answers kassa cannot place, under one key, before a payment is put in doubt for a manager.
pub(super) const UNPLACEABLE_TRIES: u32 = 3;

impl Terminal {
    pub async fn attempt(&self, id: &str) -> Result<AttemptRow, TerminalError> {
        let id = id.to_string();
        Ok(self.inner.store.call(move |db| db.attempt(&id)).await?)
    }

    /// Moves an attempt by `event` inside one transaction, re-reading it there so concurrent
    /// paths (follower, cashier, webhook) are serialised by the database thread. `edit` adjusts
    /// the row (ids, reason); returns the new row, or None if the event no longer applied.
    pub(super) async fn transition(
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
    pub(super) async fn apply_authorize(
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
    pub(super) async fn declined(
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
    pub(super) async fn unplaceable(
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
    pub(super) fn seen_unplaceable(&self, attempt_id: &str) -> bool {
        self.inner
            .unplaceable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(attempt_id)
    }

    pub(super) fn forget_unplaceable(&self, attempt_id: &str) {
        self.inner
            .unplaceable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(attempt_id);
    }

    pub(super) async fn fail(&self, a: &AttemptRow, reason: &str) -> Result<(), TerminalError> {
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

    pub(super) async fn mark_paid(
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
}
