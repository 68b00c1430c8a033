//! A payment in doubt, decided by a manager: "paid" only with a transaction Klarna confirms
//! is this attempt's, "not paid" on their word, both journaled with who decided.

use super::attempt::sale_paid;
use super::*;

impl Terminal {
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
    pub(super) async fn check_transaction_pays(
        &self,
        a: &AttemptRow,
        id: &str,
    ) -> Result<(), TerminalError> {
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
}
