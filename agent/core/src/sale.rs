//! A sale as the till knows it, without storage: its states and the one function that says how
//! they change, its lines and their limits, and the whole-sale view every screen, receipt and API
//! answer is made from. The store reads and writes these; nothing here knows SQL.

use serde::Serialize;

use crate::money::{Currency, KLARNA_MAX_AMOUNT, Money};
use crate::payment::AttemptState;

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
    /// Lines are added (only while no payment is in flight, which the caller checks).
    LinesAdded,
    /// One of its payments was approved: the receipt is issued.
    Paid,
    /// The cashier (or another door) gave it up; nothing was charged.
    Abandoned,
}

impl std::fmt::Display for SaleEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SaleEvent::LinesAdded => "changed",
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
            (SaleState::Open, SaleEvent::LinesAdded) => Ok(SaleState::Open),
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

#[cfg(test)]
mod tests;
