//! Starting a Klarna payment for a sale: eligibility, the attempt with its keys and exact
//! request body (durable before anything is sent), and the draft prepared for the next press.

use super::*;

/// The store as `point_of_checkout` names it (the configuration was checked at start).
pub(super) fn point_of_checkout(cfg: &Config) -> wire::PointOfCheckout {
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

/// What the database thread made of a request to pay a sale.
pub(super) enum Prepared {
    /// The attempt is stored; authorize may be sent.
    Stored(AttemptRow),
    /// The amount's eligibility must be asked of Klarna first (not cached, or too old).
    AskEligibility(SaleView, PaymentOptions),
}

/// Namespace for kassa's UUIDv5 idempotency keys (Klarna recommends v5).
pub(super) const KEY_NAMESPACE: uuid::Uuid = uuid::uuid!("5f0e6c1e-7d1b-4c55-9a7e-2f6f3b1a9c01");

/// How long a positive eligibility answer is reused for the same currency and amount.
pub(super) const ELIGIBILITY_TTL: Duration = Duration::from_secs(60);

impl Terminal {
    pub(super) fn options<'a>(a: &'a AttemptRow, key: Option<&'a str>) -> CallOptions<'a> {
        CallOptions {
            correlation_id: &a.correlation_id,
            idempotency_key: key,
            ..Default::default()
        }
    }

    /// Whether Klarna said recently that this sale's currency and amount are eligible.
    pub(super) fn eligibility_known(&self, view: &SaleView) -> bool {
        let key = (view.sale.currency.code().to_string(), view.due);
        self.inner
            .eligibility
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .is_some_and(|at| at.elapsed() < ELIGIBILITY_TTL)
    }

    pub(super) async fn check_eligibility(
        &self,
        view: &SaleView,
        corr: &str,
    ) -> Result<(), TerminalError> {
        let key = (view.sale.currency.code().to_string(), view.due);
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
            .eligible(&key.0, &self.inner.cfg.klarna.locale, view.due, opts)
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
                    asked = Some((view.sale.currency.code().to_string(), view.due));
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
        let outcome = self
            .apply_authorize(&attempt, kassa_core::decide::Call::First, result)
            .await;
        // The row the transition wrote is the attempt as it now stands; read it again only when
        // authorize's answer changed nothing (lost answer) or ended it some other way.
        let latest = match &outcome {
            Ok(super::attempt::Applied::Moved(Some(row))) => (**row).clone(),
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
    pub(super) fn prepare_attempt(
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
        if view.due <= 0 {
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
        let key = (view.sale.currency.code().to_string(), view.due);
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
    pub(super) fn draft_for(&self, view: &SaleView) -> Option<PaymentDraft> {
        if view.sale.state != SaleState::Open || view.due <= 0 || view.live_attempt().is_some() {
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
    pub(super) fn redraft(&self, w: &mut WriteTx<'_>, sale_id: &str) -> Result<(), StoreError> {
        let view = w.sale(sale_id)?;
        w.put_draft(sale_id, self.draft_for(&view).as_ref())?;
        Ok(())
    }

    /// The attempt for `view`: ids (fresh, or the draft's `id`), idempotency keys derived from
    /// them, and the exact authorize body every retry will send.
    pub(super) fn new_attempt(
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
                amount: view.due,
                payment_transaction_reference: view.sale.id.clone(),
                capture: cfg.payment.capture.clone(),
            },
            supplementary_purchase_data: wire::SupplementaryPurchaseData {
                purchase_reference: view.sale.id.clone(),
                line_items: klarna_lines(view),
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
            amount: view.due,
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
}

/// The line items of a Klarna request for what `view` leaves due. Every line of the sale goes
/// as it is, and each other tender that paid a part goes as one line with a negative amount
/// ("Paid in cash"): Klarna documents a negative `total_amount` as the way to credit the
/// customer for vouchers and gift cards, and the lines must sum to the request's amount. So
/// the customer's app shows the whole basket and what was already paid, and a return's
/// refund names the real items.
pub(super) fn klarna_lines(view: &SaleView) -> Vec<wire::LineItem> {
    use kassa_core::tender::{TenderKind, TenderState};
    let mut lines: Vec<wire::LineItem> = view
        .lines
        .iter()
        .map(|l| wire::LineItem {
            name: l.name.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price,
            total_amount: l.total_amount,
            reference: l.reference.clone(),
        })
        .collect();
    for (kind, name) in [
        (TenderKind::Cash, "Paid in cash"),
        (TenderKind::CardTerminal, "Paid by card"),
    ] {
        let paid: i64 = view
            .tenders
            .iter()
            .filter(|t| t.kind == kind && t.state != TenderState::Voided)
            .map(|t| t.amount)
            .sum();
        if paid > 0 {
            lines.push(wire::LineItem {
                name: name.into(),
                quantity: 1,
                unit_price: -paid,
                total_amount: -paid,
                reference: Some(format!("tender:{}", kind.as_str())),
            });
        }
    }
    lines
}
