//! Returns of a sale made at this till, by its receipt (sale id or receipt code): the money goes
//! back the way it came. The refund is shared over the sale's tenders in proportion to what
//! each still holds (`kassa_core::tender::share_refund`): cash is paid out and journaled, the
//! card terminal's part is refunded on the terminal and journaled, and Klarna's part goes
//! through the outbox as every Klarna refund does, all in one transaction.

use std::collections::HashMap;

use serde::Deserialize;

use super::ManagerApproval;
use crate::klarna::wire::LineItem;
use crate::outbox::{NewOperation, Operation, OutboxError};
use crate::payment::AttemptState;
use crate::store::sale_returns::{NewSaleReturn, SaleReturnRecord};
use crate::store::tenders::{TenderEvent, TenderKind};
use crate::store::{JournalEntry, JournalKind, SaleState, SaleView, StoreError, WriteTx};
use crate::terminal::{Terminal, TerminalError};
use kassa_core::tender::{Refundable, share_refund};

/// What comes back of a till sale.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleReturnRequest {
    /// The sale's lines that come back, by `line_no`; at most 500.
    #[schema(max_items = 500)]
    pub lines: Vec<SaleReturnLine>,
    /// Why (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    #[serde(default)]
    pub restock: bool,
    #[schema(min_length = 1, max_length = 64)]
    pub operator: Option<String>,
    /// A manager approving, when the store's rules require one.
    pub manager: Option<ManagerApproval>,
    /// A UUID the client makes for this return: sent again (after a lost answer), the return
    /// already recorded is answered, and nothing is paid out twice.
    #[schema(min_length = 36, max_length = 36)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleReturnLine {
    pub line_no: i64,
    #[schema(minimum = 1)]
    pub quantity: i64,
}

/// Who holds what of a sale's money: a tender by id, or Klarna's payment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Tender(String, TenderKind),
    Klarna,
}

/// A line of a return and its value, from the sale's own lines.
struct Back {
    line_no: i64,
    quantity: i64,
    item: LineItem,
}

/// The lines asked for, checked against the sale and what already came back.
fn lines_back(
    view: &SaleView,
    returned: &HashMap<i64, i64>,
    asked: &[SaleReturnLine],
) -> Result<(Vec<Back>, i64), TerminalError> {
    if asked.is_empty() || asked.len() > kassa_core::sale::MAX_LINES_PER_SALE {
        return Err(TerminalError::Invalid(
            "choose between 1 and 500 lines to return".into(),
        ));
    }
    let mut wanted: std::collections::BTreeMap<i64, i64> = Default::default();
    for l in asked {
        if l.quantity < 1 {
            return Err(TerminalError::Invalid(format!(
                "line {}: quantity must be at least 1",
                l.line_no
            )));
        }
        let q = wanted.entry(l.line_no).or_default();
        *q = q.saturating_add(l.quantity);
    }
    let mut out = vec![];
    let mut amount: i64 = 0;
    for (line_no, quantity) in wanted {
        let Some(line) = view.lines.iter().find(|l| l.line_no == line_no) else {
            return Err(TerminalError::Invalid(format!(
                "the sale has no line {line_no}"
            )));
        };
        let back = returned.get(&line_no).copied().unwrap_or(0);
        if quantity > line.quantity - back {
            return Err(TerminalError::Conflict(format!(
                "only {} of \"{}\" can still be returned ({} bought, {} returned)",
                (line.quantity - back).max(0),
                line.name,
                line.quantity,
                back
            )));
        }
        let total = super::add_line_value(&mut amount, line.unit_price, quantity)?;
        out.push(Back {
            line_no,
            quantity,
            item: LineItem {
                name: line.name.clone(),
                quantity,
                unit_price: line.unit_price,
                total_amount: total,
                reference: line.reference.clone(),
            },
        });
    }
    Ok((out, amount))
}

/// What each holder can still give back: the tenders' `left`, and Klarna's paid amount less what
/// earlier returns of this sale sent back through it.
fn holdings(view: &SaleView, klarna_returned: i64) -> Vec<Refundable<Holder>> {
    let mut h: Vec<Refundable<Holder>> = view
        .tenders
        .iter()
        .map(|t| Refundable {
            key: Holder::Tender(t.id.clone(), t.kind),
            left: t.left(),
        })
        .collect();
    if let Some(a) = view.payments.iter().find(|a| a.state == AttemptState::Paid) {
        h.push(Refundable {
            key: Holder::Klarna,
            left: (a.amount - klarna_returned).max(0),
        });
    }
    h
}

/// The return already recorded under `rid`, when this is the same request again; a different
/// request under the same id is refused.
fn replay(
    db: &crate::store::Db,
    rid: &str,
    sid: &str,
    asked: &[SaleReturnLine],
) -> Result<Option<SaleReturnRecord>, StoreError> {
    let Ok(earlier) = db.sale_return(rid) else {
        return Ok(None);
    };
    let wanted: Vec<(i64, i64)> = asked
        .iter()
        .fold(std::collections::BTreeMap::new(), |mut m, l| {
            *m.entry(l.line_no).or_insert(0i64) += l.quantity;
            m
        })
        .into_iter()
        .collect();
    if earlier.sale_id == sid && earlier.lines == wanted {
        return Ok(Some(earlier));
    }
    Err(StoreError::Conflict(format!(
        "return {rid} was recorded for something else"
    )))
}

impl Terminal {
    /// Records a return of lines of a paid sale made at this till and gives the money back the
    /// way it came, in one transaction (see the module's comment).
    pub async fn return_sale(
        &self,
        sale_id: &str,
        req: SaleReturnRequest,
    ) -> Result<SaleReturnRecord, TerminalError> {
        let operator = self.operator(req.operator.clone())?;
        let reason = req.reason.trim().to_string();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(TerminalError::Invalid(
                "give a reason for the return (at most 500 characters)".into(),
            ));
        }
        let return_id = match &req.id {
            Some(k) if uuid::Uuid::parse_str(k).is_ok() => k.clone(),
            Some(_) => {
                return Err(TerminalError::Invalid(
                    "a return's id must be a UUID".into(),
                ));
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        // The same request again (a client that lost the answer): the recorded return.
        let (sid, rid, asked) = (sale_id.to_string(), return_id.clone(), req.lines.clone());
        if let Some(earlier) = self
            .store()
            .call(move |db| replay(db, &rid, &sid, &asked))
            .await?
        {
            return Ok(earlier);
        }
        // A first look, to know the amount (and so whether a manager must approve) before the
        // PIN is checked; everything is checked again in the transaction.
        let sid = sale_id.to_string();
        let (view, returned) = self
            .store()
            .call(move |db| Ok((db.sale(&sid)?, db.returned_lines(&sid)?)))
            .await?;
        if view.sale.state != SaleState::Paid {
            return Err(TerminalError::Conflict(format!(
                "sale {sale_id} is not paid: only a paid sale's goods can be returned"
            )));
        }
        let (_, amount) = lines_back(&view, &returned, &req.lines)?;
        let rules = &self.config().returns;
        let approved_by = self
            .return_approval(amount > rules.approval_above, req.manager.clone())
            .await?;
        let limits = self.config().outbox.clone();
        let (sid, rid, asked) = (sale_id.to_string(), return_id.clone(), req.lines.clone());
        let restock = req.restock;
        let record = self
            .store()
            .call(move |db| {
                if let Some(earlier) = replay(db, &rid, &sid, &asked)? {
                    return Ok(earlier);
                }
                // Read again on the database thread: another return of the same sale may have
                // been recorded since the first look.
                let view = db.sale(&sid)?;
                // Goods already returned by the Klarna id (the return screen's way) are counted
                // there, not here: the rest of such a purchase comes back the same way.
                if returned_by_klarna_id(db, &view)?.is_some() {
                    return Err(StoreError::Conflict(
                        "part of this purchase was returned by its Klarna id: return the rest the same way".into(),
                    ));
                }
                let returned = db.returned_lines(&sid)?;
                let (back, amount) = lines_back(&view, &returned, &asked)
                    .map_err(|e| StoreError::Conflict(e.to_string()))?;
                let klarna_returned = db.klarna_returned(&sid)?;
                let shares = share_refund(amount, &holdings(&view, klarna_returned))
                    .map_err(|e| StoreError::Conflict(e.to_string()))?;
                let klarna_amount = shares
                    .iter()
                    .find(|(h, _)| *h == Holder::Klarna)
                    .map_or(0, |s| s.1);
                let currency = view.sale.currency.code().to_string();
                let shares_json = serde_json::Value::Array(
                    shares
                        .iter()
                        .map(|(h, a)| match h {
                            Holder::Tender(id, kind) => serde_json::json!({
                                "tender": kind.as_str(), "tender_id": id, "amount": a}),
                            Holder::Klarna => serde_json::json!({"tender": "klarna", "amount": a}),
                        })
                        .collect(),
                );
                let lines: Vec<(i64, i64)> = back.iter().map(|b| (b.line_no, b.quantity)).collect();
                let record = |w: &mut WriteTx<'_>, outbox_id: Option<i64>| {
                    w.insert_sale_return(&NewSaleReturn {
                        id: &rid,
                        sale_id: &sid,
                        currency: &currency,
                        amount,
                        klarna_amount,
                        outbox_id,
                        shares: &shares_json,
                        lines: &lines,
                        reason: &reason,
                        restock,
                        operator: &operator,
                        approved_by: approved_by.as_deref(),
                    })?;
                    if let Some(m) = &approved_by {
                        let mut e = JournalEntry::new(JournalKind::ManagerAction, m);
                        e.sale_id = Some(sid.clone());
                        e.amount = Some(amount);
                        e.currency = Some(currency.clone());
                        e.detail = serde_json::json!({"action": "approve_return",
                            "outcome": "approved", "return_id": rid});
                        w.journal(e)?;
                    }
                    for (h, a) in &shares {
                        let Holder::Tender(id, kind) = h else {
                            continue;
                        };
                        let t = w.move_tender(id, TenderEvent::Refund(*a))?;
                        // Cash paid out is what the customer handed over: the last refund of a
                        // cash tender takes its rounding back too (149.49 paid with 149 kr comes
                        // back as 149 kr), so the drawer balances to the coin.
                        let rounding = if *kind == TenderKind::Cash
                            && t.state == kassa_core::tender::TenderState::Refunded
                        {
                            t.rounding
                        } else {
                            0
                        };
                        let mut e = JournalEntry::new(JournalKind::TenderRefunded, &operator);
                        e.sale_id = Some(sid.clone());
                        e.amount = Some(*a);
                        e.currency = Some(currency.clone());
                        let drawer = if *kind == TenderKind::Cash {
                            -(a + rounding)
                        } else {
                            0
                        };
                        e.detail = serde_json::json!({"tender_id": id, "tender": kind.as_str(),
                            "drawer": drawer, "rounding": rounding, "return_id": rid});
                        w.journal(e)?;
                    }
                    let mut e = JournalEntry::new(JournalKind::ReturnRecorded, &operator);
                    e.sale_id = Some(sid.clone());
                    e.amount = Some(amount);
                    e.currency = Some(currency.clone());
                    e.detail = serde_json::json!({"return_id": rid, "lines": lines,
                        "reason": reason, "restock": restock, "approved_by": approved_by,
                        "shares": shares_json, "outbox_id": outbox_id});
                    w.journal(e)?;
                    Ok(())
                };
                if klarna_amount == 0 {
                    db.write(|w| record(w, None))?;
                    return db.sale_return(&rid);
                }
                let tx = view
                    .payments
                    .iter()
                    .find(|a| a.state == AttemptState::Paid)
                    .and_then(|a| a.klarna_transaction_id.clone())
                    .ok_or_else(|| {
                        StoreError::Conflict(
                            "the sale's Klarna payment has no transaction id".into(),
                        )
                    })?;
                // Klarna's refund names the items that came back; when other tenders take part
                // of their value, one negative line says so, so the lines sum to the refund.
                let mut items: Vec<LineItem> = back.into_iter().map(|b| b.item).collect();
                if klarna_amount < amount {
                    items.push(LineItem {
                        name: "Refunded another way".into(),
                        quantity: 1,
                        unit_price: klarna_amount - amount,
                        total_amount: klarna_amount - amount,
                        reference: Some("tender:other".into()),
                    });
                }
                let op = NewOperation {
                    operation: Operation::Refund,
                    transaction_id: tx,
                    currency: currency.clone(),
                    amount: klarna_amount,
                    line_items: items,
                    reference: format!("return-{rid}"),
                    operator: operator.clone(),
                    sale_id: Some(sid.clone()),
                };
                db.enqueue_with(&op, &limits, |w, o| record(w, Some(o.id)))
                    .map_err(|e| match e {
                        OutboxError::LimitReached(m) => StoreError::OutboxFull(m),
                        OutboxError::Store(e) => e,
                    })?;
                db.sale_return(&rid)
            })
            .await?;
        if record.klarna_amount > 0 {
            self.wake_outbox();
        }
        Ok(record)
    }

    pub async fn sale_return(&self, id: &str) -> Result<SaleReturnRecord, TerminalError> {
        let id = id.to_string();
        Ok(self.store().call(move |db| db.sale_return(&id)).await?)
    }
}

/// A sale of this till as the return screen shows a purchase, and how its lines are named.
#[derive(Debug, Clone)]
pub struct TillPurchase {
    pub sale_id: String,
    pub purchase: super::Purchase,
    /// The sale's line number of each purchase line, by index.
    pub line_nos: Vec<i64>,
}

impl Terminal {
    /// The till sale a scanned or typed receipt code names, when it comes back by its receipt:
    /// `kassa:sale:<id>`, or the Klarna transaction of a sale that was paid in part another way.
    /// `None` for a purchase Klarna paid alone (it comes back by its Klarna id, as before).
    pub async fn find_till_purchase(
        &self,
        code: &str,
    ) -> Result<Option<TillPurchase>, TerminalError> {
        let code = code.trim().to_string();
        let by_code = crate::devices::codes::sale_code(&code).map(str::to_string);
        let shown = code.clone();
        Ok(self
            .store()
            .call(move |db| {
                let by_receipt = by_code.is_some();
                let sale_id = match by_code {
                    Some(id) => id,
                    None => {
                        let Ok(tid) = super::parse_transaction_id(&code) else {
                            return Ok(None);
                        };
                        let Some(a) = db.attempt_by_transaction(&tid)? else {
                            return Ok(None);
                        };
                        a.sale_id
                    }
                };
                let view = db.sale(&sale_id)?;
                // Part of it already returned by its Klarna id (the return screen's way before
                // receipts carried a sale code): the rest can only come back that way too.
                if let Some(tid) = returned_by_klarna_id(db, &view)? {
                    if by_receipt {
                        return Err(StoreError::Conflict(format!(
                            "part of this purchase was returned by its Klarna id: scan or type {tid} to return the rest"
                        )));
                    }
                    return Ok(None);
                }
                let split = view
                    .tenders
                    .iter()
                    .any(|t| t.state != kassa_core::tender::TenderState::Voided);
                if !split {
                    return Ok(None);
                }
                if view.sale.state != SaleState::Paid {
                    return Err(StoreError::Conflict(format!(
                        "sale {sale_id} is not paid: nothing of it can come back"
                    )));
                }
                let returned = db.returned_lines(&sale_id)?;
                let klarna_returned = db.klarna_returned(&sale_id)?;
                let refundable: i64 = holdings(&view, klarna_returned)
                    .iter()
                    .map(|h| h.left)
                    .sum();
                let lines: Vec<super::PurchaseLine> = view
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(index, l)| {
                        let back = returned.get(&l.line_no).copied().unwrap_or(0);
                        super::PurchaseLine {
                            index,
                            name: l.name.clone(),
                            reference: l.reference.clone(),
                            quantity: l.quantity,
                            unit_price: l.unit_price,
                            total_amount: l.total_amount,
                            refunded_quantity: back,
                            pending_quantity: 0,
                            returnable_quantity: (l.quantity - back).max(0),
                        }
                    })
                    .collect();
                Ok(Some(TillPurchase {
                    sale_id: sale_id.clone(),
                    line_nos: view.lines.iter().map(|l| l.line_no).collect(),
                    purchase: super::Purchase {
                        transaction_id: shown,
                        reference: view.sale.receipt_no.map(|n| format!("receipt {n}")),
                        state: Some("paid".into()),
                        currency: view.sale.currency.code().to_string(),
                        amount: view.total,
                        captured_amount: view.total,
                        refunded_amount: view.total - refundable,
                        pending_amount: 0,
                        refundable_amount: refundable,
                        lines,
                        waiting: Default::default(),
                    },
                }))
            })
            .await?)
    }
}

/// The Klarna transaction id of a sale's paid Klarna part, if goods of it were already returned
/// by that id (the return screen's way): the rest of such a purchase can only come back that
/// way, so that no line comes back twice by two roads.
fn returned_by_klarna_id(
    db: &crate::store::Db,
    view: &SaleView,
) -> Result<Option<String>, StoreError> {
    let Some(tid) = view
        .payments
        .iter()
        .find(|a| a.state == AttemptState::Paid)
        .and_then(|a| a.klarna_transaction_id.clone())
    else {
        return Ok(None);
    };
    Ok((db.returns_by_transaction(&tid)? > 0).then_some(tid))
}

/// The slip a customer gets for a return of a till sale: what came back and how each part of
/// the money goes back.
pub fn sale_return_slip(r: &SaleReturnRecord) -> String {
    let money = |minor: i64, currency: &str| {
        currency
            .parse::<kassa_core::money::Currency>()
            .map(|c| kassa_core::money::Money::new(minor, c).to_string())
            .unwrap_or_else(|_| format!("{minor} {currency}"))
    };
    sale_return_slip_in(r, &|en| en.to_owned(), &money)
}

/// As `sale_return_slip`, with every label put through `say` (English in, the till's language
/// out) and amounts through `money`.
pub fn sale_return_slip_in(
    r: &SaleReturnRecord,
    say: &dyn Fn(&str) -> String,
    money: &dyn Fn(i64, &str) -> String,
) -> String {
    let money = |minor: i64| money(minor, &r.currency);
    let mut out = format!(
        "{}\n{} {}\n{}: {}\n",
        say("RETURN"),
        say("Sale"),
        r.sale_id,
        say("Reason"),
        r.reason
    );
    for (line_no, quantity) in &r.lines {
        out.push_str(&format!("  {} {line_no}: {quantity}\n", say("line")));
    }
    out.push_str(&format!("{}: {}\n", say("Total back"), money(r.amount)));
    for share in r.shares.as_array().into_iter().flatten() {
        let amount = share["amount"].as_i64().unwrap_or(0);
        let how = match share["tender"].as_str() {
            Some("cash") => "Cash paid out",
            Some("card_terminal") => "Refund on the card terminal",
            _ => "Klarna refund (sent once Klarna answers)",
        };
        out.push_str(&format!("{}: {}\n", say(how), money(amount)));
    }
    out
}
