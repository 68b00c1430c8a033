//! Moving one payment attempt: every change goes through `transition` (one transaction, one
//! journal row), and authorize's answers become events there, never a decline by guesswork.

use super::*;
use kassa_core::decide::{self, Act, Again, Answer, Call, Count, Tell};

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
    // The receipt is for the whole sale, of which Klarna may have paid the rest only.
    e.amount = Some(w.sale(&a.sale_id)?.total);
    e.detail = serde_json::json!({"receipt_no": receipt_no});
    w.journal(e)?;
    Ok(())
}

/// What an answer did to the attempt.
pub(super) enum Applied {
    /// The attempt moved: the row as written (None if the move no longer applied).
    Moved(Option<Box<AttemptRow>>),
    /// Nothing was recorded; the same key is to be asked again.
    AskAgain(Again),
}

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

    /// What is known about earlier answers under this attempt's keys.
    pub(super) fn earlier(&self, attempt_id: &str) -> decide::Earlier {
        let m = self
            .inner
            .unplaceable
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.get(attempt_id).copied().unwrap_or_default()
    }

    fn count(&self, attempt_id: &str, count: Count) {
        let mut m = self
            .inner
            .unplaceable
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match count {
            Count::Keep => {}
            Count::Add { maybe_charged } => {
                let e = m.entry(attempt_id.to_string()).or_default();
                e.unplaceable += 1;
                e.maybe_charged |= maybe_charged;
            }
            Count::Forget => {
                m.remove(attempt_id);
            }
        }
    }

    pub(super) fn forget_unplaceable(&self, attempt_id: &str) {
        self.count(attempt_id, Count::Forget);
    }

    /// Applies an authorization's answer (`call`: first send, retry or final) to the attempt as
    /// the core decides (`kassa_core::decide::authorize`). The cashier waiting on the first send
    /// hears an error when Klarna could not be reached or refused.
    pub(super) async fn apply_authorize(
        &self,
        a: &AttemptRow,
        call: Call,
        result: Result<AuthorizeOutcome, KlarnaError>,
    ) -> Result<Applied, TerminalError> {
        let answer = match result {
            Ok(outcome) => Answer::Read(outcome),
            Err(e) => Answer::Failed(e.failure()),
        };
        let d = decide::authorize(call, self.earlier(&a.id), answer.clone());
        if let Act::AskAgain(again) = d.act {
            let tries = self.earlier(&a.id).unplaceable + u32::from(d.count != Count::Keep);
            tracing::warn!(
                attempt = %a.id, ?call, ?again, tries,
                "asking Klarna again under the same key after {answer:?}"
            );
        }
        self.apply(a, d).await
    }

    /// Records a decision about an answer: the attempt's move with its edits, in one commit
    /// (a payment's with the sale's), or nothing when the same key is to be asked again. The
    /// count of unplaceable answers ends only once the move is written: were the write to fail,
    /// the next look must still know the customer may have been charged.
    pub(super) async fn apply(
        &self,
        a: &AttemptRow,
        d: decide::Decision,
    ) -> Result<Applied, TerminalError> {
        if d.count != Count::Forget {
            self.count(&a.id, d.count);
        }
        let (event, edit, tell, follow) = match d.act {
            Act::Move {
                event,
                edit,
                tell,
                follow,
            } => (event, edit, tell, follow),
            Act::AskAgain(again) => return Ok(Applied::AskAgain(again)),
        };
        let pays = matches!(
            event,
            PaymentEvent::ApprovedAtOnce | PaymentEvent::FinalApproved
        );
        let row = self
            .transition(
                &a.id,
                event,
                None,
                move |a| {
                    if let Some(id) = edit.request_id {
                        a.klarna_request_id = Some(id);
                    }
                    if let Some(url) = edit.request_url {
                        a.payment_request_url = Some(url);
                        a.expires_at = edit.expires_at;
                    }
                    if let Some(id) = edit.transaction_id {
                        a.klarna_transaction_id = Some(id);
                    }
                    if let Some(r) = edit.reason {
                        a.reason = Some(r);
                    }
                    if edit.settled_at_klarna {
                        a.cancel_confirmed = true;
                    }
                },
                move |w, a, op| if pays { sale_paid(w, a, op) } else { Ok(()) },
            )
            .await?;
        if d.count == Count::Forget {
            self.count(&a.id, Count::Forget);
        }
        if follow {
            self.spawn_follower(a.id.clone());
        }
        match tell {
            None => Ok(Applied::Moved(row.map(Box::new))),
            Some(Tell::Unavailable(m)) => Err(TerminalError::KlarnaUnavailable(m)),
            Some(Tell::Refused { code, message }) => {
                Err(TerminalError::KlarnaRefused { code, message })
            }
        }
    }
}
