//! Following an attempt until it settles: polling (nudged by webhooks), the in-store timeout,
//! and the final authorization once the customer approved.

use super::attempt::Applied;
use super::*;
use kassa_core::decide::{self, Again, Answer, Call};

pub(super) fn jitter(d: Duration) -> Duration {
    // ±20 % so a fleet of tills never polls in lockstep.
    let f = rand::rng().random_range(0.8..1.2);
    d.mul_f64(f)
}

pub(super) fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Longest pause between two polls or retries while something is wrong.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Pause before asking again after an answer kassa cannot place.
pub(super) const UNPLACEABLE_PAUSE: Duration = Duration::from_secs(1);

/// Why a follower's step did not finish. Either way the follower backs off and looks again;
/// the two are kept apart so a failed write is never reported as something Klarna said.
#[derive(Debug, thiserror::Error)]
pub(super) enum StepError {
    #[error(transparent)]
    Klarna(#[from] KlarnaError),
    #[error("the till could not record it: {0}")]
    Till(#[from] TerminalError),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::Till(e.into())
    }
}

/// What the follower does next.
pub(super) enum Step {
    Done,
    Again,
    Wait(Duration),
}

impl Terminal {
    pub(super) fn spawn_follower(&self, attempt_id: String) {
        self.spawn_follower_after(attempt_id, Duration::ZERO);
    }

    pub(super) fn spawn_follower_after(&self, attempt_id: String, first: Duration) {
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
    pub(super) async fn follow(&self, attempt_id: &str, wake: &Notify, first: Duration) {
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

    pub(super) async fn follow_step(&self, a: AttemptRow) -> Result<Step, StepError> {
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
        if past_deadline && decide::times_out(a.state, self.earlier(&a.id)) {
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
                let err = r.as_ref().err().cloned();
                match self.apply_authorize(&a, Call::Retry, r).await {
                    Ok(Applied::AskAgain(again)) => self.again(again, err),
                    // The attempt moved (or a write failed): look again at the next poll.
                    Ok(Applied::Moved(_)) | Err(_) => Ok(Step::Again),
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
    pub(super) async fn apply_request_state(
        &self,
        a: &AttemptRow,
        req: &RequestRead,
    ) -> Result<Step, StepError> {
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
    pub(super) async fn apply_request_state_only(
        &self,
        a: &AttemptRow,
        req: &RequestRead,
    ) -> Result<Option<Option<AttemptRow>>, StepError> {
        let Some((event, settled_at_klarna)) = decide::request_state(&req.state) else {
            if let RequestState::Other(other) = &req.state {
                tracing::warn!("unknown payment request state {other:?}; polling on");
            }
            return Ok(None);
        };
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
            .await?;
        Ok(Some(moved))
    }

    /// Final authorization with the session token; only ever for an attempt in `completed`,
    /// whose sale is open (cancel abandons sale and attempt together, so that holds).
    pub(super) async fn finalize(
        &self,
        a: &AttemptRow,
        token: Option<&str>,
    ) -> Result<Step, StepError> {
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
                    None => {
                        let d = decide::no_session_token(self.earlier(&a.id));
                        return self.final_step(a, d, None).await;
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
        let r = self.inner.klarna.authorize_raw(&body, opts).await;
        let err = r.as_ref().err().cloned();
        let answer = match r {
            Ok(outcome) => Answer::Read(outcome),
            Err(e) => Answer::Failed(e.failure()),
        };
        let d = decide::authorize(Call::Final, self.earlier(&a.id), answer);
        if let decide::Act::AskAgain(again) = d.act {
            tracing::warn!(attempt = %a.id, ?again, "asking Klarna again for the final authorization");
        }
        self.final_step(a, d, err).await
    }

    /// Records a decision about the final authorization and says what the follower does next:
    /// done once the attempt moved, else ask again as decided.
    async fn final_step(
        &self,
        a: &AttemptRow,
        d: decide::Decision,
        err: Option<KlarnaError>,
    ) -> Result<Step, StepError> {
        match self.apply(a, d).await? {
            Applied::Moved(_) => Ok(Step::Done),
            Applied::AskAgain(again) => self.again(again, err),
        }
    }

    /// The follower's next step when the same key is to be asked again.
    fn again(&self, again: Again, err: Option<KlarnaError>) -> Result<Step, StepError> {
        match again {
            Again::NextPoll => Ok(Step::Again),
            Again::Pause => Ok(Step::Wait(UNPLACEABLE_PAUSE)),
            Again::After(d) => Ok(Step::Wait(d)),
            Again::BackOff => Err(err
                .unwrap_or_else(|| {
                    KlarnaError::UnknownOutcome("Klarna's answer must be asked for again".into())
                })
                .into()),
        }
    }
}
