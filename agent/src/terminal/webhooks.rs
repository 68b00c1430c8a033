//! Klarna's verified webhooks: they move an attempt at once and hand the session token to its
//! follower; polling remains the fallback when they stop arriving.

use super::*;

/// Verified webhooks count as arriving for this long after the last one.
pub(super) const WEBHOOKS_LIVE_FOR: Duration = Duration::from_secs(600);

impl Terminal {
    /// Whether verified webhooks are arriving (one came in the last ten minutes).
    pub(super) fn webhooks_live(&self) -> bool {
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

    pub(super) async fn attempt_for_request(
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
}
