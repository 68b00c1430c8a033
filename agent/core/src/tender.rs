//! Tenders other than Klarna: cash and the store's own card terminal. A sale is settled by one
//! or several of them and, for whatever they leave, by Klarna. Here are their states and the one
//! function that moves them, what a cash or card tender takes from what is due (change and cash
//! rounding included), how a refund is shared back over the tenders that paid, and the line
//! that tells Klarna what another tender already paid.

use serde::{Deserialize, Serialize};

/// How the customer paid a part of a sale (Klarna's part is its payment attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenderKind {
    Cash,
    /// The store's own card terminal: the amount it charged and its reference.
    CardTerminal,
}

impl TenderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TenderKind::Cash => "cash",
            TenderKind::CardTerminal => "card_terminal",
        }
    }
    pub fn parse(s: &str) -> Option<TenderKind> {
        Some(match s {
            "cash" => TenderKind::Cash,
            "card_terminal" => TenderKind::CardTerminal,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenderState {
    /// The money was taken and counts toward the sale.
    Taken,
    /// Handed back before the sale was paid (the sale was abandoned): counts for nothing.
    Voided,
    /// Everything it took went back to the customer in returns.
    Refunded,
}

impl TenderState {
    pub const ALL: [TenderState; 3] = [
        TenderState::Taken,
        TenderState::Voided,
        TenderState::Refunded,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TenderState::Taken => "taken",
            TenderState::Voided => "voided",
            TenderState::Refunded => "refunded",
        }
    }
    pub fn parse(s: &str) -> Option<TenderState> {
        Some(match s {
            "taken" => TenderState::Taken,
            "voided" => TenderState::Voided,
            "refunded" => TenderState::Refunded,
            _ => return None,
        })
    }

    /// The one transition function. `left` is what the tender still holds (taken minus already
    /// refunded): a refund of all of it makes the tender refunded.
    pub fn next(self, event: TenderEvent, left: i64) -> Result<TenderState, TenderError> {
        match (self, event) {
            (TenderState::Taken, TenderEvent::Void) => Ok(TenderState::Voided),
            (TenderState::Taken, TenderEvent::Refund(a)) if a > 0 && a < left => {
                Ok(TenderState::Taken)
            }
            (TenderState::Taken, TenderEvent::Refund(a)) if a > 0 && a == left => {
                Ok(TenderState::Refunded)
            }
            (TenderState::Taken, TenderEvent::Refund(a)) => Err(TenderError::Invalid(format!(
                "a refund of {a} does not fit what the tender still holds ({left})"
            ))),
            (state, event) => Err(TenderError::NotAllowed { state, event }),
        }
    }
}

/// Something that happens to a tender after it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenderEvent {
    /// The sale it paid toward was given up: the money goes back as it came.
    Void,
    /// Part of a return goes back through it (minor units).
    Refund(i64),
}

impl std::fmt::Display for TenderEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenderEvent::Void => f.write_str("voided"),
            TenderEvent::Refund(a) => write!(f, "refunded {a}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenderError {
    #[error("{0}")]
    Invalid(String),
    #[error("a {state:?} tender cannot be {event}")]
    NotAllowed {
        state: TenderState,
        event: TenderEvent,
    },
}

/// What the cashier enters for a tender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenderInput {
    /// Cash handed over (minor units): at least what is due pays the rest of the sale and the
    /// difference is change; less pays that part and leaves the rest due.
    Cash { given: i64 },
    /// The store's card terminal charged `amount` (at most what is due) under `reference`.
    CardTerminal { amount: i64, reference: String },
}

/// What a tender does to a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Settlement {
    /// What it pays of the sale (minor units).
    pub amount: i64,
    /// Cash handed over (cash only; for a card the amount).
    pub given: i64,
    /// Cash handed back.
    pub change: i64,
    /// Cash rounding: what the drawer keeps beyond (positive) or short of (negative) `amount`,
    /// because the rest of the sale was rounded to the currency's smallest coin.
    pub rounding: i64,
}

impl Settlement {
    /// What the cash drawer gains (cash) or zero (card).
    pub fn drawer(&self, kind: TenderKind) -> i64 {
        match kind {
            TenderKind::Cash => self.given - self.change,
            TenderKind::CardTerminal => 0,
        }
    }
}

/// Longest card terminal reference, in characters.
pub const MAX_REFERENCE_CHARS: usize = 64;

/// `due` rounded to the nearest multiple of `step` (half away from zero); step 0 or 1 keeps it.
pub fn round_cash(due: i64, step: i64) -> i64 {
    if step <= 1 {
        return due;
    }
    let rest = due.rem_euclid(step);
    if rest * 2 >= step {
        due - rest + step
    } else {
        due - rest
    }
}

/// What `input` settles of a sale that still has `due` to pay, cash rounded to `cash_step`
/// minor units (the smallest coin the store gives, 1 for none).
pub fn settle(due: i64, input: &TenderInput, cash_step: i64) -> Result<Settlement, TenderError> {
    if due <= 0 {
        return Err(TenderError::Invalid("nothing is left to pay".into()));
    }
    match input {
        TenderInput::Cash { given } => {
            let given = *given;
            let rounded = round_cash(due, cash_step);
            if given < 0 || (given == 0 && rounded > 0) {
                return Err(TenderError::Invalid(
                    "enter the cash the customer gave".into(),
                ));
            }
            if given > crate::money::KLARNA_MAX_AMOUNT {
                return Err(TenderError::Invalid(
                    "that is more cash than a till takes at once".into(),
                ));
            }
            if given >= rounded || given >= due {
                // All of it is paid. Change is what exceeds the rounded rest; whatever the
                // drawer keeps beyond (or short of) the rest is rounding, so a sale is never
                // paid more than its total.
                let change = (given - rounded).max(0);
                Ok(Settlement {
                    amount: due,
                    given,
                    change,
                    rounding: given - change - due,
                })
            } else {
                Ok(Settlement {
                    amount: given,
                    given,
                    change: 0,
                    rounding: 0,
                })
            }
        }
        TenderInput::CardTerminal { amount, reference } => {
            let reference = reference.trim();
            if reference.is_empty()
                || reference.chars().count() > MAX_REFERENCE_CHARS
                || reference.chars().any(char::is_control)
            {
                return Err(TenderError::Invalid(format!(
                    "give the card terminal's reference (1 to {MAX_REFERENCE_CHARS} characters)"
                )));
            }
            if *amount <= 0 || *amount > due {
                return Err(TenderError::Invalid(format!(
                    "the card amount must be between 1 and what is due ({due})"
                )));
            }
            Ok(Settlement {
                amount: *amount,
                given: *amount,
                change: 0,
                rounding: 0,
            })
        }
    }
}

/// What one tender of a sale can still give back: its id (any key) and the amount left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refundable<K> {
    pub key: K,
    pub left: i64,
}

/// Shares a refund of `amount` over the tenders that paid, in proportion to what each still
/// holds (largest remainder, ties to the earlier tender), so a half-cash, half-Klarna sale gets
/// half of each item back each way. Fails when the tenders together hold less.
pub fn share_refund<K: Clone>(
    amount: i64,
    tenders: &[Refundable<K>],
) -> Result<Vec<(K, i64)>, TenderError> {
    let held: i64 = tenders.iter().map(|t| t.left.max(0)).sum();
    if amount <= 0 || amount > held {
        return Err(TenderError::Invalid(format!(
            "a refund of {amount} does not fit what the sale's tenders still hold ({held})"
        )));
    }
    let mut shares: Vec<(usize, i64, i128)> = tenders
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let exact = i128::from(amount) * i128::from(t.left.max(0));
            let floor = exact / i128::from(held);
            (i, floor as i64, exact - floor * i128::from(held))
        })
        .collect();
    let mut rest = amount - shares.iter().map(|s| s.1).sum::<i64>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| shares[*b].2.cmp(&shares[*a].2).then(a.cmp(b)));
    for i in order {
        if rest == 0 {
            break;
        }
        if shares[i].1 < tenders[i].left {
            shares[i].1 += 1;
            rest -= 1;
        }
    }
    Ok(shares
        .into_iter()
        .filter(|s| s.1 > 0)
        .map(|(i, a, _)| (tenders[i].key.clone(), a))
        .collect())
}

#[cfg(test)]
mod tests;
