//! Taking cash or the store's card terminal for a sale, in full or in part (Klarna then asks
//! for the rest), and cash moved into or out of the drawer outside a sale. The rules are
//! `kassa_core::tender`'s; here they are applied in one transaction with their journal rows.

use super::*;
use kassa_core::sale::TenderRow;
use kassa_core::tender::{self, TenderEvent, TenderInput, TenderKind, TenderState};

/// What a tender did: the tender as written and the sale after it (paid, or with less due).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tendered {
    pub tender: TenderRow,
    pub sale: SaleView,
}

/// Cash moved in or out of the drawer outside a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CashMovementKind {
    /// The cash the drawer starts the day with.
    Float,
    /// Cash put in (change from the bank, a correction).
    PaidIn,
    /// Cash taken out (a supplier paid, a bank drop).
    PaidOut,
}

impl CashMovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CashMovementKind::Float => "float",
            CashMovementKind::PaidIn => "paid_in",
            CashMovementKind::PaidOut => "paid_out",
        }
    }
}

/// Longest reason for a cash movement, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// The journal row of a tender being taken, voided or refunded.
pub(super) fn tender_entry(
    kind: JournalKind,
    t: &TenderRow,
    currency: &str,
    amount: i64,
    operator: &str,
) -> JournalEntry {
    let mut e = JournalEntry::new(kind, operator);
    e.sale_id = Some(t.sale_id.clone());
    e.amount = Some(amount);
    e.currency = Some(currency.to_string());
    e
}

impl Terminal {
    /// Takes `input` toward the sale's rest: the sale is paid when nothing is left, or its
    /// payment draft is made again for the rest (which Klarna or another tender pays).
    ///
    /// `key`, when the caller gives one (a UUID), makes the call safe to repeat: a tender already
    /// taken under it is answered again, not taken twice (a client that lost the answer retries).
    pub async fn take_tender(
        &self,
        sale_id: &str,
        input: TenderInput,
        operator: Option<String>,
        key: Option<String>,
    ) -> Result<Tendered, TerminalError> {
        let operator = self.operator(operator)?;
        if let Some(k) = &key
            && uuid::Uuid::parse_str(k).is_err()
        {
            return Err(TerminalError::Invalid(
                "a tender's id must be a UUID".into(),
            ));
        }
        let (t, sid) = (self.clone(), sale_id.to_string());
        let tendered = self
            .inner
            .store
            .call(move |db| {
                db.write(|w| {
                    if let Some(k) = &key
                        && let Ok(earlier) = w.tender(k)
                    {
                        let same = earlier.sale_id == sid
                            && match &input {
                                TenderInput::Cash { given } => {
                                    earlier.kind == TenderKind::Cash && earlier.given == *given
                                }
                                TenderInput::CardTerminal { amount, reference } => {
                                    earlier.kind == TenderKind::CardTerminal
                                        && earlier.amount == *amount
                                        && earlier.reference.as_deref() == Some(reference.trim())
                                }
                            };
                        if !same {
                            return Err(StoreError::Conflict(format!(
                                "tender {k} was taken for something else"
                            )));
                        }
                        return Ok(Tendered {
                            tender: earlier,
                            sale: w.sale(&sid)?,
                        });
                    }
                    let view = w.sale(&sid)?;
                    view.sale.state.next(kassa_core::sale::SaleEvent::Tendered)?;
                    match view.live_attempt() {
                        Some(a) if a.state == AttemptState::InDoubt => {
                            return Err(StoreError::Conflict(IN_DOUBT_MESSAGE.into()));
                        }
                        Some(_) => {
                            return Err(StoreError::Conflict(
                                "a Klarna payment is in progress: cancel it before taking another tender".into(),
                            ));
                        }
                        None => {}
                    }
                    let currency = view.sale.currency.code();
                    let step = t.inner.cfg.cash.step(currency);
                    let s = tender::settle(view.due, &input, step)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    let (kind, reference) = match &input {
                        TenderInput::Cash { .. } => (TenderKind::Cash, None),
                        TenderInput::CardTerminal { reference, .. } => {
                            (TenderKind::CardTerminal, Some(reference.trim().to_string()))
                        }
                    };
                    let row = TenderRow {
                        id: key
                            .clone()
                            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                        sale_id: sid.clone(),
                        kind,
                        state: TenderState::Taken,
                        amount: s.amount,
                        given: s.given,
                        change: s.change,
                        rounding: s.rounding,
                        reference,
                        refunded: 0,
                        operator: operator.clone(),
                        created_at: crate::now_rfc3339(),
                    };
                    w.insert_tender(&row)?;
                    let mut e =
                        tender_entry(JournalKind::TenderTaken, &row, currency, s.amount, &operator);
                    e.detail = serde_json::json!({
                        "tender_id": row.id, "tender": kind.as_str(), "given": s.given,
                        "change": s.change, "rounding": s.rounding, "drawer": s.drawer(kind),
                        "reference": row.reference, "due_before": view.due,
                    });
                    w.journal(e)?;
                    let after = w.sale(&sid)?;
                    if after.due == 0 {
                        let receipt_no = w.set_sale_state(&sid, SaleState::Paid)?;
                        let mut e = JournalEntry::new(JournalKind::ReceiptIssued, &operator);
                        e.sale_id = Some(sid.clone());
                        e.amount = Some(after.total);
                        e.currency = Some(currency.to_string());
                        e.detail = serde_json::json!({"receipt_no": receipt_no});
                        w.journal(e)?;
                    } else {
                        t.redraft(w, &sid)?;
                    }
                    Ok(Tendered {
                        tender: row,
                        sale: w.sale(&sid)?,
                    })
                })
            })
            .await?;
        (self.publisher())(tendered.sale.clone());
        Ok(tendered)
    }

    /// Records cash put into or taken out of the drawer outside a sale, with its reason.
    pub async fn cash_movement(
        &self,
        kind: CashMovementKind,
        amount: i64,
        currency: Currency,
        reason: String,
        operator: Option<String>,
    ) -> Result<i64, TerminalError> {
        let operator = self.operator(operator)?;
        if amount <= 0 || amount > kassa_core::money::KLARNA_MAX_AMOUNT {
            return Err(TerminalError::Invalid(
                "the amount must be a positive number of minor units".into(),
            ));
        }
        let reason = reason.trim().to_string();
        if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
            return Err(TerminalError::Invalid(format!(
                "the reason must be at most {MAX_REASON_CHARS} characters on one line"
            )));
        }
        if reason.is_empty() && kind != CashMovementKind::Float {
            return Err(TerminalError::Invalid(
                "say why cash goes in or out of the drawer".into(),
            ));
        }
        let signed = if kind == CashMovementKind::PaidOut {
            -amount
        } else {
            amount
        };
        let seq = self
            .inner
            .store
            .call(move |db| {
                db.write(|w| {
                    let mut e = JournalEntry::new(JournalKind::CashMovement, &operator);
                    e.amount = Some(signed);
                    e.currency = Some(currency.code().to_string());
                    e.detail = serde_json::json!({"movement": kind.as_str(), "reason": reason});
                    w.journal(e)
                })
            })
            .await?;
        Ok(seq)
    }
}

/// In the commit that abandons a sale: every tender it took is handed back (journaled, so the
/// drawer's count knows the cash went out again).
pub(super) fn void_tenders(
    w: &mut WriteTx<'_>,
    view: &SaleView,
    operator: &str,
) -> Result<(), StoreError> {
    for t in view
        .tenders
        .iter()
        .filter(|t| t.state == TenderState::Taken)
    {
        let t = w.move_tender(&t.id, TenderEvent::Void)?;
        let drawer = if t.kind == TenderKind::Cash {
            t.given - t.change
        } else {
            0
        };
        let mut e = tender_entry(
            JournalKind::TenderVoided,
            &t,
            view.sale.currency.code(),
            t.amount,
            operator,
        );
        e.detail = serde_json::json!({
            "tender_id": t.id, "tender": t.kind.as_str(), "drawer": -drawer,
            "reference": t.reference,
        });
        w.journal(e)?;
    }
    Ok(())
}
