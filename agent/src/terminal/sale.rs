//! The sale as the cashier builds it: open, add lines, read, and the one ordered stream of
//! whole-sale events the UI and the API listen to.

use super::*;
use crate::store::{PriceCheck, SaleLine};

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
        self.change_sale(move |db, t| {
            db.open_sale(&id, currency, &operator, &lines, |v| t.draft_for(v))
        })
        .await
    }

    /// Runs a change of a sale on the database thread (given the till, for the payment draft
    /// the change prepares) and publishes the view it leaves from the same job, so events leave
    /// in the order of the writes.
    async fn change_sale(
        &self,
        change: impl FnOnce(&mut crate::store::Db, &Terminal) -> Result<SaleView, StoreError>
        + Send
        + 'static,
    ) -> Result<SaleView, TerminalError> {
        let publish = self.publisher();
        let t = self.clone();
        Ok(self
            .inner
            .store
            .call(move |db| {
                let v = change(db, &t)?;
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
        let merge = self.inner.cfg.sale.merge_repeated;
        self.change_sale(move |db, t| {
            db.add_lines(&id, &operator, &lines, merge, |v| t.draft_for(v))
        })
        .await
    }

    /// Changes one line of an open sale (remove it, or set its quantity or unit price), with the
    /// operator journaled. A price cut beyond `[sale] price_cut_without_manager_percent` needs a
    /// manager's PIN (checked, and a refusal journaled, before anything changes); the approving
    /// manager is journaled with the change.
    pub async fn edit_line(
        &self,
        sale_id: &str,
        line_no: i64,
        edit: LineEdit,
        operator: Option<String>,
        manager: Option<crate::manager::ManagerApproval>,
    ) -> Result<SaleView, TerminalError> {
        let operator = self.operator(operator)?;
        let free = self.inner.cfg.sale.price_cut_without_manager_percent;
        // For a price change: the line as checked here, and the manager who approved it.
        let mut checked: Option<(SaleLine, Option<String>)> = None;
        if let LineEdit::Price { unit_price, .. } = &edit {
            let view = self.sale(sale_id).await?;
            let line = view
                .lines
                .iter()
                .find(|l| l.line_no == line_no)
                .ok_or_else(|| {
                    TerminalError::NotFound(format!("line {line_no} of sale {sale_id}"))
                })?;
            // A price the till would refuse anyway is refused as such, before a manager is
            // asked for.
            kassa_core::sale::edit_line(line, &edit, view.sale.currency)
                .map_err(|e| TerminalError::Invalid(e.to_string()))?;
            let mut approved_by = None;
            if kassa_core::sale::price_needs_manager(line.list_price, *unit_price, free) {
                let Some(m) = manager else {
                    return Err(TerminalError::Forbidden(format!(
                        "a price cut of more than {free} % needs a manager's approval"
                    )));
                };
                crate::store::validate_operator(&m.name)?;
                crate::manager::authorize(self.store(), Some(m.pin), "price_override", &m.name)
                    .await?;
                approved_by = Some(m.name);
            }
            checked = Some((line.clone(), approved_by));
        }
        let id = sale_id.to_string();
        self.change_sale(move |db, t| {
            let check = checked.as_ref().map(|(seen, manager)| PriceCheck {
                seen,
                free_percent: free,
                manager: manager.as_deref(),
            });
            db.edit_line(&id, line_no, &operator, &edit, check, |v| t.draft_for(v))
        })
        .await
    }

    /// A discount of `percent` (1 to 100) on the whole open sale, with its reason: each line's
    /// price is lowered by it and journaled as a price change; beyond the store's free limit a
    /// manager approves (their PIN checked before anything is written).
    ///
    /// `expected_total`, when given, is the total the caller saw: a discount is relative, so a
    /// repeated request (a retry after a lost answer, a double press) must not take it again.
    pub async fn discount_sale(
        &self,
        sale_id: &str,
        percent: u32,
        reason: String,
        operator: Option<String>,
        manager: Option<crate::manager::ManagerApproval>,
        expected_total: Option<i64>,
    ) -> Result<SaleView, TerminalError> {
        let operator = self.operator(operator)?;
        // 100 % would leave a sale nothing can pay and nothing can close as paid.
        if !(1..=99).contains(&percent) {
            return Err(TerminalError::Invalid(
                "a discount is 1 to 99 percent".into(),
            ));
        }
        let reason = reason.trim().to_string();
        // The journaled reason is "NN % off the sale: …", which must fit a line's 255 characters.
        if reason.is_empty() || reason.chars().count() > 230 || reason.chars().any(char::is_control)
        {
            return Err(TerminalError::Invalid(
                "give the discount's reason (1 to 230 characters on one line)".into(),
            ));
        }
        let free = self.inner.cfg.sale.price_cut_without_manager_percent;
        let view = self.sale(sale_id).await?;
        if expected_total.is_some_and(|t| t != view.total) {
            return Err(TerminalError::Conflict(format!(
                "the sale's total is {} now, not what the discount was asked on: look again",
                view.total
            )));
        }
        // The same rule the store applies: lines the discount changes, measured from their
        // list price.
        let needs = view.lines.iter().any(|l| {
            let after = kassa_core::sale::discounted(l.unit_price, percent);
            after != l.unit_price
                && kassa_core::sale::price_needs_manager(l.list_price, after, free)
        });
        let approved_by = match (needs, manager) {
            (false, _) => None,
            (true, None) => {
                return Err(TerminalError::Forbidden(format!(
                    "a price cut of more than {free} % needs a manager's approval"
                )));
            }
            (true, Some(m)) => {
                crate::store::validate_operator(&m.name)?;
                crate::manager::authorize(self.store(), Some(m.pin), "sale_discount", &m.name)
                    .await?;
                Some(m.name)
            }
        };
        let (id, seen) = (sale_id.to_string(), view.lines);
        let reason = format!("{percent} % off the sale: {reason}");
        self.change_sale(move |db, t| {
            db.discount_sale(
                &id,
                &operator,
                percent,
                &reason,
                &seen,
                free,
                approved_by.as_deref(),
                |v| t.draft_for(v),
            )
        })
        .await
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
