//! In-store returns of purchases made online or at any till: find the Klarna transaction, show
//! what can still come back, and refund chosen lines through the outbox (so a return works the
//! same whether Klarna is reachable or not), with manager approval where the store requires it.

pub use crate::config::ReturnsConfig;
pub use crate::manager::ManagerApproval;
pub use crate::store::returns::{ReturnRecord, Waiting};
pub use crate::store::sale_returns::SaleReturnRecord;
pub use sale::{
    SaleReturnLine, SaleReturnRequest, TillPurchase, sale_return_slip, sale_return_slip_in,
};

mod sale;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::klarna::wire::LineItem;

use crate::outbox::{NewOperation, Operation, OutboxError};
use crate::store::returns::{NewReturn, line_key};
use crate::store::{JournalEntry, JournalKind, StoreError};
use crate::terminal::{Terminal, TerminalError};

/// One line of the original purchase and how much of it can still come back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PurchaseLine {
    pub index: usize,
    pub name: String,
    pub reference: Option<String>,
    pub quantity: i64,
    pub unit_price: i64,
    pub total_amount: i64,
    /// Already refunded at Klarna.
    pub refunded_quantity: i64,
    /// Returned here but the refund is still waiting in the outbox.
    pub pending_quantity: i64,
    pub returnable_quantity: i64,
}

/// A purchase as a return screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Purchase {
    pub transaction_id: String,
    pub reference: Option<String>,
    pub state: Option<String>,
    pub currency: String,
    pub amount: i64,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    /// Refunds queued here and not yet at Klarna.
    pub pending_amount: i64,
    /// What may still be refunded, in minor units.
    pub refundable_amount: i64,
    pub lines: Vec<PurchaseLine>,
    /// The outbox rows counted as waiting, so a return can check in its own transaction that no
    /// other refund was queued since the purchase was read.
    #[serde(skip)]
    pub(crate) waiting: Waiting,
}

/// What the cashier asks for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    pub transaction_id: String,
    pub lines: Vec<ReturnLine>,
    pub reason: String,
    #[serde(default)]
    pub restock: bool,
    /// Receipt or order confirmation shown (scanned or typed from it).
    #[serde(default = "yes")]
    pub proof_of_purchase: bool,
    pub operator: Option<String>,
    /// Manager approving, when required.
    pub manager: Option<ManagerApproval>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnLine {
    /// Index of the line in the purchase (`lines[].index`).
    pub index: usize,
    pub quantity: i64,
}

/// `quantity` at `unit_price`, added to a return's running `amount`; returns the line's value.
/// Overflow is refused, never wrapped.
pub(crate) fn add_line_value(
    amount: &mut i64,
    unit_price: i64,
    quantity: i64,
) -> Result<i64, TerminalError> {
    let too_large = || TerminalError::Invalid("amount too large".into());
    let total = unit_price.checked_mul(quantity).ok_or_else(too_large)?;
    *amount = amount.checked_add(total).ok_or_else(too_large)?;
    Ok(total)
}

/// Klarna transaction ids look like `krn:payment:eu1:transaction:<uuid>`.
pub fn parse_transaction_id(s: &str) -> Result<String, TerminalError> {
    use crate::klarna::answer::{NOT_A_TRANSACTION_ID, transaction_id};
    transaction_id(s).ok_or_else(|| TerminalError::Invalid(NOT_A_TRANSACTION_ID.into()))
}

fn purchase_from(tx: &crate::klarna::wire::PaymentTransaction, waiting: Waiting) -> Purchase {
    let pending = &waiting.quantities;
    let pending_amount = waiting.amount;
    // Quantities Klarna already refunded, per line.
    let mut refunded: HashMap<String, i64> = HashMap::new();
    for r in &tx.payment_refunds {
        for l in r["line_items"].as_array().into_iter().flatten() {
            let key = line_key(l["name"].as_str().unwrap_or(""), l["reference"].as_str());
            *refunded.entry(key).or_default() += l["quantity"].as_i64().unwrap_or(0);
        }
    }
    let lines = tx
        .lines()
        .iter()
        .enumerate()
        .map(|(index, l)| {
            let key = line_key(&l.name, l.reference.as_deref());
            let refunded_quantity = refunded.get(&key).copied().unwrap_or(0);
            let pending_quantity = pending.get(&key).copied().unwrap_or(0);
            PurchaseLine {
                index,
                name: l.name.clone(),
                reference: l.reference.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
                total_amount: l.total_amount,
                refunded_quantity,
                pending_quantity,
                // A line of no or negative value (a discount, a part paid another way at the
                // till) is no goods: nothing of it comes back.
                returnable_quantity: if l.unit_price > 0 {
                    (l.quantity - refunded_quantity - pending_quantity).max(0)
                } else {
                    0
                },
            }
        })
        .collect();
    let captured = tx.captured_amount.unwrap_or(0);
    let refunded_amount = tx.refunded_amount.unwrap_or(0);
    Purchase {
        transaction_id: tx.payment_transaction_id.clone(),
        reference: tx.payment_transaction_reference.clone(),
        state: tx.state.clone(),
        currency: tx.currency.clone(),
        amount: tx.amount,
        captured_amount: captured,
        refunded_amount,
        pending_amount,
        refundable_amount: (captured - refunded_amount - pending_amount).max(0),
        lines,
        waiting,
    }
}

impl Terminal {
    /// Reads the purchase from Klarna and shows what can still be returned.
    pub async fn find_purchase(&self, transaction_id: &str) -> Result<Purchase, TerminalError> {
        let id = parse_transaction_id(transaction_id)?;
        let tx = self
            .read_transaction_for_staff(
                &id,
                "the purchase cannot be looked up until Klarna is reachable",
            )
            .await?;
        let tid = id.clone();
        let applied = tx.refund_references();
        let waiting = self
            .store()
            .call(move |db| db.waiting_refunds(&tid, &applied))
            .await?;
        Ok(purchase_from(&tx, waiting))
    }

    /// Records a return and queues its refund (one transaction), after checking it against what
    /// remains refundable and the store's approval rules.
    pub async fn create_return(&self, req: ReturnRequest) -> Result<ReturnRecord, TerminalError> {
        let purchase = self.find_purchase(&req.transaction_id).await?;
        // A sale of this till paid partly in cash or by card comes back by its receipt, so the
        // money goes back the way it came and no line comes back twice by two roads.
        let tid = purchase.transaction_id.clone();
        let split = self
            .store()
            .call(move |db| {
                let Some(a) = db.attempt_by_transaction(&tid)? else {
                    return Ok(None);
                };
                let sale = db.sale(&a.sale_id)?;
                // A purchase this road already took part of goes on this road (returns made
                // before receipts carried a sale code).
                if db.returns_by_transaction(&tid)? > 0 {
                    return Ok(None);
                }
                Ok(sale
                    .tenders
                    .iter()
                    .any(|t| t.state != kassa_core::tender::TenderState::Voided)
                    .then_some(sale.sale.id))
            })
            .await?;
        if let Some(sale) = split {
            return Err(TerminalError::Conflict(format!(
                "this purchase was paid partly in cash or by card at this till: return it by its receipt (sale {sale}) so the money goes back the way it came"
            )));
        }
        let operator = self.operator(req.operator.clone())?;
        if req.reason.trim().is_empty() || req.reason.len() > 500 {
            return Err(TerminalError::Invalid(
                "give a reason for the return (at most 500 characters)".into(),
            ));
        }
        if req.lines.is_empty() {
            return Err(TerminalError::Invalid(
                "choose at least one line to return".into(),
            ));
        }
        let mut wanted: HashMap<usize, i64> = HashMap::new();
        for l in &req.lines {
            if l.quantity < 1 {
                return Err(TerminalError::Invalid(format!(
                    "line {}: quantity must be at least 1",
                    l.index
                )));
            }
            *wanted.entry(l.index).or_default() += l.quantity;
        }
        let mut items = vec![];
        let mut lines_json = vec![];
        let mut amount: i64 = 0;
        let mut indexes: Vec<_> = wanted.into_iter().collect();
        indexes.sort();
        for (index, quantity) in indexes {
            let Some(p) = purchase.lines.get(index) else {
                return Err(TerminalError::Invalid(format!(
                    "the purchase has no line {index}"
                )));
            };
            if quantity > p.returnable_quantity {
                return Err(TerminalError::Conflict(format!(
                    "only {} of \"{}\" can still be returned ({} bought, {} refunded, {} pending)",
                    p.returnable_quantity,
                    p.name,
                    p.quantity,
                    p.refunded_quantity,
                    p.pending_quantity
                )));
            }
            let total = add_line_value(&mut amount, p.unit_price, quantity)?;
            items.push(LineItem {
                name: p.name.clone(),
                quantity,
                unit_price: p.unit_price,
                total_amount: total,
                reference: p.reference.clone(),
            });
            lines_json.push(
                serde_json::json!({"index": index, "name": p.name, "reference": p.reference,
                "quantity": quantity, "unit_price": p.unit_price}),
            );
        }
        if amount <= 0 {
            return Err(TerminalError::Invalid(
                "the lines chosen are worth nothing to refund".into(),
            ));
        }
        if amount > purchase.refundable_amount {
            return Err(TerminalError::Conflict(format!(
                "the refund of {amount} exceeds what remains refundable on this purchase ({})",
                purchase.refundable_amount
            )));
        }
        // Approval: a manager's PIN, checked (slowly, off the database thread) before anything is written.
        let rules = &self.config().returns;
        let needs_approval = amount > rules.approval_above
            || (!req.proof_of_purchase && rules.approval_without_proof);
        let approved_by = self
            .return_approval(needs_approval, req.manager.clone())
            .await?;

        let return_id = uuid::Uuid::new_v4().to_string();
        let op = NewOperation {
            operation: Operation::Refund,
            transaction_id: purchase.transaction_id.clone(),
            currency: purchase.currency.clone(),
            amount,
            line_items: items,
            reference: format!("return-{return_id}"),
            operator: operator.clone(),
            sale_id: None,
        };
        let limits = self.config().outbox.clone();
        let (rid, tid, cur) = (
            return_id.clone(),
            purchase.transaction_id.clone(),
            purchase.currency.clone(),
        );
        let lines_text = serde_json::Value::Array(lines_json).to_string();
        let (reason, restock, proof) = (req.reason.clone(), req.restock, req.proof_of_purchase);
        let approver = approved_by.clone();
        let (seen, applied) = (
            purchase.waiting.ids.clone(),
            purchase.waiting.applied.clone(),
        );
        self.store()
            .call(move |db| {
                // Re-check inside the transaction: a return at this till a moment ago may have
                // queued a refund for the same lines.
                // Compared as sets of outbox rows: one refund leaving while another arrives
                // leaves the sum alike, not the set.
                let now = db.waiting_refunds(&tid, &applied)?;
                if !now.ids.is_subset(&seen) {
                    return Err(StoreError::Conflict(
                        "another return of this purchase was just recorded; look the purchase up again".into(),
                    ));
                }
                db.enqueue_with(&op, &limits, |w, o| {
                    w.insert_return(&NewReturn {
                        id: &rid,
                        transaction_id: &tid,
                        currency: &cur,
                        amount,
                        lines: &lines_text,
                        reason: &reason,
                        restock,
                        proof_of_purchase: proof,
                        operator: &op.operator,
                        approved_by: approver.as_deref(),
                        outbox_id: o.id,
                    })?;
                    if let Some(m) = &approver {
                        let mut e = JournalEntry::new(JournalKind::ManagerAction, m);
                        e.amount = Some(amount);
                        e.currency = Some(cur.clone());
                        e.klarna_transaction_id = Some(tid.clone());
                        e.detail = serde_json::json!({"action": "approve_return", "outcome": "approved", "return_id": rid});
                        w.journal(e)?;
                    }
                    let mut e = JournalEntry::new(JournalKind::ReturnRecorded, &op.operator);
                    e.amount = Some(amount);
                    e.currency = Some(cur.clone());
                    e.klarna_transaction_id = Some(tid.clone());
                    e.detail = serde_json::json!({"return_id": rid, "lines": serde_json::from_str::<serde_json::Value>(&lines_text).unwrap_or_default(),
                        "reason": reason, "restock": restock, "proof_of_purchase": proof, "approved_by": approver,
                        "outbox_id": o.id});
                    w.journal(e)?;
                    Ok(())
                })
                .map_err(|e| match e {
                    OutboxError::LimitReached(m) => StoreError::OutboxFull(m),
                    OutboxError::Store(e) => e,
                })?;
                Ok(())
            })
            .await?;
        self.wake_outbox();
        let id = return_id.clone();
        Ok(self.store().call(move |db| db.return_record(&id)).await?)
    }

    /// The manager approving a return when the store's rules say one must (`needed`), their PIN
    /// checked (slowly, off the database thread) before anything is written; `None` when not.
    pub(crate) async fn return_approval(
        &self,
        needed: bool,
        manager: Option<ManagerApproval>,
    ) -> Result<Option<String>, TerminalError> {
        if !needed {
            return Ok(None);
        }
        let Some(m) = manager else {
            return Err(TerminalError::Forbidden(
                "this return needs a manager's approval (name and PIN)".into(),
            ));
        };
        crate::store::validate_operator(&m.name)?;
        crate::manager::authorize(self.store(), Some(m.pin), "approve_return", &m.name).await?;
        Ok(Some(m.name))
    }

    pub async fn return_record(&self, id: &str) -> Result<ReturnRecord, TerminalError> {
        let id = id.to_string();
        Ok(self.store().call(move |db| db.return_record(&id)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_are_checked_before_anything_is_asked() {
        let good = "krn:payment:eu1:transaction:6bbf0d3c-3f2a-4c1e-9d0e-2a7b8c9d0e1f";
        assert_eq!(parse_transaction_id(&format!(" {good}\n")).unwrap(), good);
        for bad in [
            "",
            "krn:payment:eu1:request:6bbf0d3c-3f2a-4c1e-9d0e-2a7b8c9d0e1f",
            "krn:payment:eu1:transaction:x",
            "SKU-1",
            "krn:payment:eu1:transaction:6bbf0d3c-3f2a-4c1e-9d0e-2a7b8c9d0e1f/../x",
        ] {
            assert!(parse_transaction_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn returnable_quantities_subtract_refunded_and_pending() {
        let tx = crate::klarna::wire::PaymentTransaction {
            payment_transaction_id: "t".into(),
            payment_transaction_reference: None,
            amount: 5000,
            currency: "SEK".into(),
            state: Some("COMPLETED".into()),
            captured_amount: Some(5000),
            refunded_amount: Some(1000),
            payment_captures: vec![],
            payment_refunds: vec![serde_json::json!({"amount": 1000, "line_items": [
                {"name": "Socks", "reference": "S", "quantity": 1, "unit_price": 1000, "total_amount": 1000}]})],
            supplementary_purchase_data: None,
            line_items: vec![
                LineItem {
                    name: "Socks".into(),
                    quantity: 3,
                    unit_price: 1000,
                    total_amount: 3000,
                    reference: Some("S".into()),
                },
                LineItem {
                    name: "Cap".into(),
                    quantity: 1,
                    unit_price: 2000,
                    total_amount: 2000,
                    reference: None,
                },
            ],
        };
        let waiting = Waiting {
            quantities: [("ref:S".to_string(), 1)].into(),
            amount: 1000,
            ..Waiting::default()
        };
        let p = purchase_from(&tx, waiting);
        assert_eq!(p.lines[0].returnable_quantity, 1);
        assert_eq!(p.lines[1].returnable_quantity, 1);
        assert_eq!(p.refundable_amount, 3000);
    }
}
