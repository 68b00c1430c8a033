//! The sale as the cashier builds it: open, add lines, read, and the one ordered stream of
//! whole-sale events the UI and the API listen to.

use super::*;

impl Terminal {
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

    /// The sale at the counter: the open sale opened or changed last, which the next scan or
    /// tap adds to (`None`: the next one opens a sale). Known as soon as the write that changed
    /// it returns, since the publisher runs inside that write's job.
    pub fn counter_sale(&self) -> Option<String> {
        self.inner
            .counter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current()
            .map(str::to_owned)
    }

    pub async fn sale(&self, sale_id: &str) -> Result<SaleView, TerminalError> {
        let id = sale_id.to_string();
        Ok(self.inner.store.call(move |db| db.sale(&id)).await?)
    }

    /// What sends a sale's event. It runs on the database thread, inside the job that read the
    /// view, so events leave in the order of the writes they show (two tasks publishing from
    /// their own threads could send an older view last). A view equal to the last one sent for
    /// that sale is not sent again: a follower's poll that changed nothing stays quiet.
    pub(super) fn publisher(&self) -> impl FnOnce(SaleView) + Send + 'static {
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
            t.inner
                .counter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(&sale.sale.id, sale.sale.state == SaleState::Open);
            // No subscriber is fine: the state is in the database either way.
            let _ = t.inner.events.send(SaleEvent { sale });
            rt.spawn(async move { t.inner.busy.update(&t.inner.store).await });
        }
    }

    /// Queues the sale's event behind the writes already queued; the caller does not wait.
    pub(super) fn publish_sale(&self, sale_id: &str) {
        let id = sale_id.to_string();
        let publish = self.publisher();
        // Dropping the result's future leaves the job queued; only its answer is discarded.
        let _queued = self.inner.store.submit(move |db| {
            publish(db.sale(&id)?);
            Ok(())
        });
    }
}
