//! A sale as the till knows it, without storage: its states and the one function that says how
//! they change, its lines and their limits, and the whole-sale view every screen, receipt and API
//! answer is made from. The store reads and writes these; nothing here knows SQL.

use serde::Serialize;

use crate::money::{Currency, KLARNA_MAX_AMOUNT, Money};
use crate::payment::AttemptState;
use crate::tender::{TenderKind, TenderState};

/// A sale or line that breaks a rule; the message says which, in words the caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    #[error("{0}")]
    Invalid(String),
    #[error("sale is {state:?}, so it cannot be {event}")]
    NotAllowed { state: SaleState, event: SaleEvent },
}

/// Something that happens to a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaleEvent {
    /// Lines are added, changed or removed (only while no payment is in flight, which the
    /// caller checks).
    Changed,
    /// A part was paid by another tender (cash, card terminal); the rest is still due.
    Tendered,
    /// Everything is paid (Klarna approved, or tenders cover the total): the receipt is issued.
    Paid,
    /// The cashier (or another door) gave it up; nothing was charged.
    Abandoned,
}

impl std::fmt::Display for SaleEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SaleEvent::Changed => "changed",
            SaleEvent::Tendered => "tendered",
            SaleEvent::Paid => "paid",
            SaleEvent::Abandoned => "abandoned",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SaleState {
    Open,
    Paid,
    Abandoned,
}

impl SaleState {
    pub const ALL: [SaleState; 3] = [SaleState::Open, SaleState::Paid, SaleState::Abandoned];

    /// The one transition function: only an open sale changes; paid and abandoned are final.
    pub fn next(self, event: SaleEvent) -> Result<SaleState, SaleError> {
        match (self, event) {
            (SaleState::Open, SaleEvent::Changed) => Ok(SaleState::Open),
            (SaleState::Open, SaleEvent::Tendered) => Ok(SaleState::Open),
            (SaleState::Open, SaleEvent::Paid) => Ok(SaleState::Paid),
            (SaleState::Open, SaleEvent::Abandoned) => Ok(SaleState::Abandoned),
            (state, event) => Err(SaleError::NotAllowed { state, event }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SaleState::Open => "open",
            SaleState::Paid => "paid",
            SaleState::Abandoned => "abandoned",
        }
    }
    pub fn parse(s: &str) -> Option<SaleState> {
        Some(match s {
            "open" => SaleState::Open,
            "paid" => SaleState::Paid,
            "abandoned" => SaleState::Abandoned,
            _ => return None,
        })
    }
}

/// A line as the caller gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    pub name: String,
    pub reference: Option<String>,
    pub quantity: i64,
    pub unit_price: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SaleLine {
    pub line_no: i64,
    pub name: String,
    pub reference: Option<String>,
    pub quantity: i64,
    pub unit_price: i64,
    pub total_amount: i64,
    /// The unit price the line was added at: a price cut is measured against it, so a line
    /// cannot be brought down in small steps that each stay under the limit.
    pub list_price: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SaleRow {
    pub id: String,
    #[schema(value_type = String, example = "SEK")]
    pub currency: Currency,
    pub state: SaleState,
    pub operator: String,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub receipt_no: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AttemptRow {
    pub id: String,
    pub sale_id: String,
    pub state: AttemptState,
    pub amount: i64,
    pub currency: String,
    pub correlation_id: String,
    #[serde(skip)]
    pub authorize_key: String,
    #[serde(skip)]
    pub finalize_key: String,
    #[serde(skip)]
    pub authorize_body: String,
    #[serde(skip)]
    pub interop_token: Option<String>,
    pub klarna_request_id: Option<String>,
    pub payment_request_url: Option<String>,
    pub expires_at: Option<String>,
    pub deadline_at: String,
    pub klarna_transaction_id: Option<String>,
    pub cancel_confirmed: bool,
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A sale with everything a screen or receipt needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SaleView {
    #[serde(flatten)]
    pub sale: SaleRow,
    pub lines: Vec<SaleLine>,
    /// Sum of the lines, in minor units.
    pub total: i64,
    /// Payment attempts, oldest first.
    pub payments: Vec<AttemptRow>,
    /// Parts paid by cash or the card terminal, oldest first.
    pub tenders: Vec<TenderRow>,
    /// What is still to pay: the total less the tenders taken (Klarna's request is for this).
    pub due: i64,
    /// How many times the sale's lines changed (added, edited, removed): of two states of one
    /// sale, the one with the higher revision is the newer.
    pub revision: i64,
}

/// A part of a sale paid by cash or the store's card terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TenderRow {
    pub id: String,
    pub sale_id: String,
    pub kind: TenderKind,
    pub state: TenderState,
    /// What it paid of the sale.
    pub amount: i64,
    /// Cash handed over (a card: the amount).
    pub given: i64,
    pub change: i64,
    /// Cash rounding kept by the drawer beyond `amount` (negative: short of it).
    pub rounding: i64,
    /// The card terminal's reference.
    pub reference: Option<String>,
    /// Given back in returns so far.
    pub refunded: i64,
    pub operator: String,
    pub created_at: String,
}

impl TenderRow {
    /// What it still holds for a refund.
    pub fn left(&self) -> i64 {
        if self.state == TenderState::Taken {
            self.amount - self.refunded
        } else {
            0
        }
    }
}

/// What tenders taken leave to pay of `total`.
pub fn due_after(total: i64, tenders: &[TenderRow]) -> i64 {
    total
        - tenders
            .iter()
            .filter(|t| t.state != TenderState::Voided)
            .map(|t| t.amount)
            .sum::<i64>()
}

impl SaleView {
    pub fn total_money(&self) -> Money {
        Money::new(self.total, self.sale.currency)
    }
    pub fn live_attempt(&self) -> Option<&AttemptRow> {
        self.payments.iter().find(|a| !a.state.is_final())
    }
}

/// Most lines one sale may hold: a till's sale is a basket, and Klarna refuses very large
/// requests (a sale it cannot take is one the customer cannot pay).
pub const MAX_LINES_PER_SALE: usize = 500;
/// Longest operator name, in characters.
pub const MAX_OPERATOR_CHARS: usize = 64;
/// Longest line name and reference, in characters (Klarna's limit for both).
pub const MAX_LINE_TEXT_CHARS: usize = 255;

/// An operator's name as the journal records it: 1 to 64 characters, no control characters.
pub fn validate_operator(operator: &str) -> Result<(), SaleError> {
    let n = operator.chars().count();
    if operator.trim().is_empty()
        || n > MAX_OPERATOR_CHARS
        || operator.chars().any(char::is_control)
    {
        return Err(SaleError::Invalid(format!(
            "operator must be 1 to {MAX_OPERATOR_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

pub fn validate_line(l: &LineInput, currency: Currency) -> Result<Money, SaleError> {
    let bad = |m: &str| Err(SaleError::Invalid(m.to_string()));
    let text_ok =
        |t: &str| t.chars().count() <= MAX_LINE_TEXT_CHARS && !t.chars().any(char::is_control);
    if l.name.trim().is_empty() || !text_ok(&l.name) {
        return bad("line name must be 1 to 255 characters without control characters");
    }
    if l.reference
        .as_deref()
        .is_some_and(|r| r.trim().is_empty() || !text_ok(r))
    {
        return bad("line reference must be 1 to 255 characters without control characters");
    }
    if l.quantity < 1 || l.quantity > 100_000 {
        return bad("line quantity must be between 1 and 100000");
    }
    if l.unit_price < 0 || l.unit_price > KLARNA_MAX_AMOUNT {
        return bad("line unit_price must be between 0 and 2147483647 minor units");
    }
    let total = Money::new(l.unit_price, currency)
        .checked_mul(l.quantity)
        .map_err(|e| SaleError::Invalid(e.to_string()))?;
    if total.minor > KLARNA_MAX_AMOUNT {
        return bad("line total exceeds the largest amount Klarna accepts");
    }
    Ok(total)
}

pub fn check_line_count(has: usize, adding: usize) -> Result<(), SaleError> {
    if has.saturating_add(adding) > MAX_LINES_PER_SALE {
        return Err(SaleError::Invalid(format!(
            "a sale holds at most {MAX_LINES_PER_SALE} lines ({has} already, {adding} more asked)"
        )));
    }
    Ok(())
}

/// A change to one line of an open sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEdit {
    /// The line goes (a wrong item scanned).
    Remove,
    /// A new quantity, 1 to 100,000.
    Quantity(i64),
    /// A new unit price (a price override, or a discount given as the price after it), with
    /// why: 1 to 255 characters, journaled.
    Price { unit_price: i64, reason: String },
}

/// A line after an edit: its quantity, unit price and total, or `None` once removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edited {
    pub quantity: i64,
    pub unit_price: i64,
    pub total: i64,
}

/// What `edit` makes of `line`, checked against the limits every line keeps (quantity, price,
/// a total Klarna accepts). The sale's own total is the caller's to check, as when adding.
pub fn edit_line(
    line: &SaleLine,
    edit: &LineEdit,
    currency: Currency,
) -> Result<Option<Edited>, SaleError> {
    let (quantity, unit_price) = match edit {
        LineEdit::Remove => return Ok(None),
        LineEdit::Quantity(q) => (*q, line.unit_price),
        LineEdit::Price { unit_price, reason } => {
            if reason.trim().is_empty()
                || reason.chars().count() > MAX_LINE_TEXT_CHARS
                || reason.chars().any(char::is_control)
            {
                return Err(SaleError::Invalid(
                    "a price change needs a reason: 1 to 255 characters without control characters"
                        .into(),
                ));
            }
            (line.quantity, *unit_price)
        }
    };
    let total = validate_line(
        &LineInput {
            name: line.name.clone(),
            reference: line.reference.clone(),
            quantity,
            unit_price,
        },
        currency,
    )?;
    Ok(Some(Edited {
        quantity,
        unit_price,
        total: total.minor,
    }))
}

/// Whether a new unit price needs a manager: one that lowers the price by more than
/// `free_percent` of it (a raise never does; 0 means every reduction does).
pub fn price_needs_manager(before: i64, after: i64, free_percent: u32) -> bool {
    if after >= before {
        return false;
    }
    // In i128: neither the cut nor a price times 100 can overflow, whatever the line.
    let cut = (i128::from(before) - i128::from(after)) * 100;
    cut > i128::from(before) * i128::from(free_percent)
}

/// A unit price after a discount of `percent` (1 to 100) of it: how a discount on the whole
/// sale becomes each line's new price, so every later step (Klarna's lines, a return's refund)
/// sees what was really charged. The amount off is rounded down to the minor unit, so a line is
/// never cut by more than the percentage given (10 % of 19.99 takes 1.99 off, not 2.00, and stays
/// within a 10 % limit).
pub fn discounted(unit_price: i64, percent: u32) -> i64 {
    let off = i128::from(unit_price.max(0)) * i128::from(percent.min(100)) / 100;
    unit_price - off as i64
}

/// The line a repeated scan or tap of the same product adds to (same reference, name and unit
/// price), so the sale shows "2 ×" rather than the product twice. A line without a reference is
/// never merged: nothing says two such lines are the same product.
pub fn merge_target<'a>(lines: &'a [SaleLine], new: &LineInput) -> Option<&'a SaleLine> {
    new.reference.as_ref()?;
    lines.iter().find(|l| {
        l.reference == new.reference && l.name == new.name && l.unit_price == new.unit_price
    })
}

#[cfg(test)]
mod tests;
