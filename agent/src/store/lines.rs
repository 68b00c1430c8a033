//! A sale's lines: added (a product the sale already holds raising its quantity), changed and
//! removed, each with its journal row saying who, what it was and what it became. A removed
//! line keeps its row (marked) so its number is never given to another product.

use rusqlite::params;

use super::sales::validate_operator;
use super::{Db, JournalEntry, JournalKind, PaymentDraft, StoreError, WriteTx};
use crate::money::{Currency, KLARNA_MAX_AMOUNT};
use kassa_core::sale::{
    Edited, LineEdit, LineInput, SaleEvent, SaleLine, SaleView, check_line_count, edit_line,
    merge_target, price_needs_manager, validate_line,
};

/// What the caller checked a price change against (`Db::edit_line` holds it to that).
#[derive(Debug, Clone, Copy)]
pub struct PriceCheck<'a> {
    /// The line as the caller saw it when it decided whether a manager was needed.
    pub seen: &'a SaleLine,
    /// `[sale] price_cut_without_manager_percent`.
    pub free_percent: u32,
    /// The manager whose PIN the caller checked, if one was asked for.
    pub manager: Option<&'a str>,
}

impl WriteTx<'_> {
    pub(super) fn insert_line(
        &mut self,
        sale_id: &str,
        currency: Currency,
        operator: &str,
        l: &LineInput,
    ) -> Result<SaleLine, StoreError> {
        let total = validate_line(l, currency)?;
        let line_no: i64 = self
            .tx
            .prepare_cached(
                "SELECT COALESCE(MAX(line_no), 0) + 1 FROM sale_lines WHERE sale_id = ?1",
            )?
            .query_row([sale_id], |r| r.get(0))?;
        self.check_sale_total(sale_id, total.minor)?;
        self.tx.prepare_cached("INSERT INTO sale_lines (sale_id, line_no, name, reference, quantity, unit_price, total_amount, list_price)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)")?.execute(params![sale_id, line_no, l.name, l.reference, l.quantity, l.unit_price, total.minor],
        )?;
        let mut e = JournalEntry::new(JournalKind::LineAdded, operator);
        e.sale_id = Some(sale_id.into());
        e.amount = Some(total.minor);
        e.currency = Some(currency.code().into());
        e.detail = serde_json::json!({"line_no": line_no, "name": l.name, "reference": l.reference,
            "quantity": l.quantity, "unit_price": l.unit_price});
        self.journal(e)?;
        Ok(SaleLine {
            line_no,
            name: l.name.clone(),
            reference: l.reference.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price,
            total_amount: total.minor,
            list_price: l.unit_price,
        })
    }

    /// A repeated product: `line`'s quantity grows by `l.quantity`, journaled as the line added
    /// (its amount is what was added) with `merged` and the line's new quantity.
    fn merge_line(
        &mut self,
        sale_id: &str,
        currency: Currency,
        operator: &str,
        line: &SaleLine,
        l: &LineInput,
    ) -> Result<SaleLine, StoreError> {
        let added = validate_line(l, currency)?;
        let quantity = line.quantity.saturating_add(l.quantity);
        let Some(after) = edit_line(line, &LineEdit::Quantity(quantity), currency)? else {
            return Err(StoreError::Invalid("a merged line cannot vanish".into()));
        };
        self.check_sale_total(sale_id, added.minor)?;
        self.update_line(sale_id, line.line_no, after)?;
        let mut e = JournalEntry::new(JournalKind::LineAdded, operator);
        e.sale_id = Some(sale_id.into());
        e.amount = Some(added.minor);
        e.currency = Some(currency.code().into());
        e.detail = serde_json::json!({"line_no": line.line_no, "name": l.name,
            "reference": l.reference, "quantity": l.quantity, "unit_price": l.unit_price,
            "merged": true, "line_quantity": quantity});
        self.journal(e)?;
        Ok(SaleLine {
            quantity,
            total_amount: after.total,
            ..line.clone()
        })
    }

    fn check_sale_total(&mut self, sale_id: &str, adding: i64) -> Result<(), StoreError> {
        let sale_total: i64 = self
            .tx
            .prepare_cached(
                "SELECT COALESCE(SUM(total_amount), 0) FROM sale_lines
                 WHERE sale_id = ?1 AND removed = 0",
            )?
            .query_row([sale_id], |r| r.get(0))?;
        if sale_total.saturating_add(adding) > KLARNA_MAX_AMOUNT {
            return Err(StoreError::Invalid(
                "sale total would exceed the largest amount Klarna accepts".into(),
            ));
        }
        Ok(())
    }

    fn update_line(&mut self, sale_id: &str, line_no: i64, to: Edited) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE sale_lines SET quantity = ?3, unit_price = ?4, total_amount = ?5
                 WHERE sale_id = ?1 AND line_no = ?2",
            )?
            .execute(params![
                sale_id,
                line_no,
                to.quantity,
                to.unit_price,
                to.total
            ])?;
        Ok(())
    }

    /// Writes an edit of `line` (`after`: `None` removes it) and its journal row.
    #[allow(clippy::too_many_arguments)]
    fn change_line(
        &mut self,
        sale_id: &str,
        currency: Currency,
        operator: &str,
        line: &SaleLine,
        after: Option<Edited>,
        edit: &LineEdit,
        manager: Option<&str>,
    ) -> Result<(), StoreError> {
        let before = serde_json::json!({"quantity": line.quantity,
            "unit_price": line.unit_price, "total_amount": line.total_amount});
        let (kind, amount, after_json) = match after {
            None => {
                self.tx
                    .prepare_cached(
                        "UPDATE sale_lines SET removed = 1 WHERE sale_id = ?1 AND line_no = ?2",
                    )?
                    .execute(params![sale_id, line.line_no])?;
                (
                    JournalKind::LineRemoved,
                    line.total_amount,
                    serde_json::Value::Null,
                )
            }
            Some(a) => {
                self.update_line(sale_id, line.line_no, a)?;
                (
                    JournalKind::LineChanged,
                    a.total,
                    serde_json::json!({"quantity": a.quantity, "unit_price": a.unit_price,
                        "total_amount": a.total}),
                )
            }
        };
        let mut e = JournalEntry::new(kind, operator);
        e.sale_id = Some(sale_id.into());
        e.amount = Some(amount);
        e.currency = Some(currency.code().into());
        let mut detail = serde_json::json!({"line_no": line.line_no, "name": line.name,
            "reference": line.reference, "before": before, "after": after_json});
        if let LineEdit::Price { reason, .. } = edit {
            detail["reason"] = reason.clone().into();
        }
        if let Some(m) = manager {
            detail["manager"] = m.into();
        }
        e.detail = detail;
        self.journal(e)?;
        Ok(())
    }
}

impl Db {
    /// Adds lines to an open sale with no payment in flight; with `merge`, a product the sale
    /// already holds (same reference, name and price) raises that line's quantity instead.
    pub fn add_lines(
        &mut self,
        sale_id: &str,
        operator: &str,
        lines: &[LineInput],
        merge: bool,
        draft: impl FnOnce(&SaleView) -> Option<PaymentDraft>,
    ) -> Result<SaleView, StoreError> {
        let view = self.changeable_sale(sale_id, operator)?;
        check_line_count(view.lines.len(), lines.len())?;
        let currency = view.sale.currency;
        let mut held = view.lines;
        self.write(|w| {
            for l in lines {
                let target = merge.then(|| merge_target(&held, l)).flatten().cloned();
                match target {
                    Some(t) => {
                        let merged = w.merge_line(sale_id, currency, operator, &t, l)?;
                        if let Some(h) = held.iter_mut().find(|h| h.line_no == t.line_no) {
                            *h = merged;
                        }
                    }
                    None => held.push(w.insert_line(sale_id, currency, operator, l)?),
                }
            }
            let view = w.sale(sale_id)?;
            if w.put_draft(sale_id, draft(&view).as_ref())? {
                // A retired draft is an attempt the sale now shows (and its follower needs).
                return w.sale(sale_id);
            }
            Ok(view)
        })
    }

    /// The sale as it stands, once it is clear that `operator` may change its lines now: an
    /// open sale with nothing paid or being paid.
    fn changeable_sale(&self, sale_id: &str, operator: &str) -> Result<SaleView, StoreError> {
        validate_operator(operator)?;
        let view = self.sale(sale_id)?;
        view.sale.state.next(SaleEvent::Changed)?;
        check_changeable(&view)?;
        Ok(view)
    }

    /// Changes one line of an open sale with no payment in flight (remove it, or set its
    /// quantity or unit price) and journals who did it, what it was and what it became; the
    /// payment draft follows, as after adding lines. A price change comes with the `PriceCheck`
    /// its caller made (the manager's PIN is checked off this thread), and is held to it here,
    /// in the transaction: the same line, and a manager named if its cut needs one.
    pub fn edit_line(
        &mut self,
        sale_id: &str,
        line_no: i64,
        operator: &str,
        edit: &LineEdit,
        check: Option<PriceCheck<'_>>,
        draft: impl FnOnce(&SaleView) -> Option<PaymentDraft>,
    ) -> Result<SaleView, StoreError> {
        let view = self.changeable_sale(sale_id, operator)?;
        let line = view
            .lines
            .iter()
            .find(|l| l.line_no == line_no)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("line {line_no} of sale {sale_id}")))?;
        let mut manager = None;
        if let LineEdit::Price { unit_price, .. } = edit {
            let c = check.ok_or_else(|| {
                StoreError::Invalid("a price change needs its approval check".into())
            })?;
            let seen = c.seen;
            if (&seen.name, &seen.reference, seen.list_price)
                != (&line.name, &line.reference, line.list_price)
            {
                return Err(StoreError::Conflict(format!(
                    "line {line_no} changed while the price was being approved; try again"
                )));
            }
            if price_needs_manager(line.list_price, *unit_price, c.free_percent)
                && c.manager.is_none()
            {
                return Err(StoreError::ApprovalRequired(format!(
                    "a price cut of more than {} % needs a manager's approval",
                    c.free_percent
                )));
            }
            manager = c.manager;
        }
        let currency = view.sale.currency;
        let after = edit_line(&line, edit, currency)?;
        let others: i64 = view
            .lines
            .iter()
            .filter(|l| l.line_no != line_no)
            .map(|l| l.total_amount)
            .sum();
        if others.saturating_add(after.map_or(0, |a| a.total)) > KLARNA_MAX_AMOUNT {
            return Err(StoreError::Invalid(
                "sale total would exceed the largest amount Klarna accepts".into(),
            ));
        }
        self.write(|w| {
            w.change_line(sale_id, currency, operator, &line, after, edit, manager)?;
            let view = w.sale(sale_id)?;
            if w.put_draft(sale_id, draft(&view).as_ref())? {
                return w.sale(sale_id);
            }
            Ok(view)
        })
    }
}

impl Db {
    /// A discount of `percent` on the whole sale: every line's unit price lowered by it (see
    /// `kassa_core::sale::discounted`), each journaled as a price change with the reason, in one
    /// transaction. `seen` are the lines its caller approved the discount for: if the sale
    /// changed since, nothing is done. A cut beyond `free_percent` of a line's list price needs
    /// `manager` (whose PIN the caller checked).
    #[allow(clippy::too_many_arguments)]
    pub fn discount_sale(
        &mut self,
        sale_id: &str,
        operator: &str,
        percent: u32,
        reason: &str,
        seen: &[SaleLine],
        free_percent: u32,
        manager: Option<&str>,
        draft: impl FnOnce(&SaleView) -> Option<PaymentDraft>,
    ) -> Result<SaleView, StoreError> {
        let view = self.changeable_sale(sale_id, operator)?;
        if view.lines.is_empty() {
            return Err(StoreError::Invalid(
                "the sale has no lines to discount".into(),
            ));
        }
        if view.lines != seen {
            return Err(StoreError::Conflict(
                "the sale changed while the discount was being approved; try again".into(),
            ));
        }
        let currency = view.sale.currency;
        let mut changes = vec![];
        let total_after: i64 = view
            .lines
            .iter()
            .map(|l| kassa_core::sale::discounted(l.unit_price, percent) * l.quantity)
            .sum();
        if total_after <= 0 {
            return Err(StoreError::Invalid(
                "that discount leaves nothing to pay: a sale needs something to pay".into(),
            ));
        }
        for line in &view.lines {
            let unit_price = kassa_core::sale::discounted(line.unit_price, percent);
            if unit_price == line.unit_price {
                continue;
            }
            if price_needs_manager(line.list_price, unit_price, free_percent) && manager.is_none() {
                return Err(StoreError::ApprovalRequired(format!(
                    "a price cut of more than {free_percent} % needs a manager's approval"
                )));
            }
            let edit = LineEdit::Price {
                unit_price,
                reason: reason.to_string(),
            };
            let after = edit_line(line, &edit, currency)?;
            changes.push((line.clone(), after, edit));
        }
        self.write(|w| {
            for (line, after, edit) in &changes {
                w.change_line(sale_id, currency, operator, line, *after, edit, manager)?;
            }
            let view = w.sale(sale_id)?;
            if w.put_draft(sale_id, draft(&view).as_ref())? {
                return w.sale(sale_id);
            }
            Ok(view)
        })
    }
}

/// A sale's lines change only while nothing is being paid or has been paid: with a payment in
/// flight the customer may be approving this very amount, and a part paid by another tender was
/// paid for these lines.
fn check_changeable(view: &SaleView) -> Result<(), StoreError> {
    if view.live_attempt().is_some() {
        return Err(StoreError::Conflict(
            "a payment is in progress: cancel it before changing the sale".into(),
        ));
    }
    if view.due != view.total {
        return Err(StoreError::Conflict(
            "part of the sale is paid: finish the payment, or cancel the sale (the tenders are handed back) to change it".into(),
        ));
    }
    Ok(())
}
