//! Stopping a payment: the cashier's cancel or abandon, Klarna's confirmation of it, and the
//! refund of a charge Klarna made after the till had given up.

use super::follow::{Step, StepError};
use super::*;

impl Terminal {
    /// For an attempt the till gave up on: make sure Klarna's request is canceled too, and if the
    /// customer completed it anyway, record that it was never finalized (nobody is charged).
    pub(super) async fn confirm_cancel(&self, a: &AttemptRow) -> Result<Step, StepError> {
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
                Err(e) if e.is_retryable() => return Err(e.into()),
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
                        .await?;
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
                AuthorizeOutcome::Unplaceable { why, .. } => {
                    Err(KlarnaError::UnknownOutcome(why).into())
                }
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
            Err(e) => Err(e.into()),
        }
    }

    /// Klarna approved (charged) a payment the till had given up on before it learnt the answer:
    /// the charge is refunded through the outbox (exactly once, whatever happens next), in the
    /// same commit as the journal row that says so.
    pub(super) async fn refund_charge_after_abandon(
        &self,
        a: &AttemptRow,
        transaction_id: String,
    ) -> Result<Step, StepError> {
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
            ?;
        tracing::warn!(attempt = %a.id, "Klarna approved a payment the till had given up on; refund queued");
        self.inner.outbox_wake.notify_one();
        Ok(Step::Done)
    }

    pub(super) async fn settle_cancel(
        &self,
        a: &AttemptRow,
        why: &str,
        klarna_state: Option<&str>,
    ) -> Result<Step, StepError> {
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
            .await?;
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

    pub(super) async fn cancel(
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
                        super::tender::void_tenders(w, &view, &operator)?;
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
}
