//! The in-store return screen's controller: the transaction id being looked up, the purchase's
//! lines with how many of each come back, the reason and restock choice, the manager's approval
//! when the agent asks for one, and the refund slip. Plain Rust, no I/O: the agent's `screen`
//! module feeds it the agent's answers and acts on what the cashier asks for.

use crate::Language;
use crate::amount::{Currency, format_amount};

/// One line of the purchase as the agent reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseLineSnapshot {
    /// The line's index in the purchase, as the agent wants it back.
    pub index: usize,
    pub name: String,
    pub unit_price: i64,
    /// How many can still come back (bought, less refunded and pending).
    pub returnable: i64,
}

/// A purchase found by its transaction id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseSnapshot {
    pub transaction_id: String,
    pub currency: Currency,
    pub refundable_amount: i64,
    pub lines: Vec<PurchaseLineSnapshot>,
}

/// Where the return stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReturnStage {
    /// Waiting for a transaction id.
    #[default]
    Entering,
    /// Asking the agent for the purchase.
    Finding,
    /// The purchase is shown; the cashier picks what comes back.
    Choosing,
    /// The agent needs a manager's name and PIN before refunding.
    NeedsManager,
    /// The refund was asked for; waiting for the agent.
    Refunding,
    /// The return is recorded; the slip is shown.
    Done { slip: String },
}

/// One row of the purchase on screen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReturnLineView {
    pub name: String,
    /// "2 can be returned".
    pub returnable: String,
    pub selected: i64,
    pub can_add: bool,
    pub can_remove: bool,
}

/// What the return screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReturnScreenView {
    pub open: bool,
    pub transaction_id: String,
    pub has_purchase: bool,
    pub lines: Vec<ReturnLineView>,
    /// The refund the chosen lines add up to.
    pub amount: String,
    pub can_find: bool,
    pub can_refund: bool,
    pub needs_manager: bool,
    pub busy: bool,
    pub slip: String,
    pub error: String,
    /// The reason and restock choice as the controller holds them (a new return clears them).
    pub reason: String,
    pub restock: bool,
}

/// The return screen's state.
#[derive(Debug, Clone)]
pub struct ReturnScreenModel {
    language: Language,
    open: bool,
    transaction_id: String,
    purchase: Option<PurchaseSnapshot>,
    selected: Vec<i64>,
    reason: String,
    restock: bool,
    stage: ReturnStage,
    error: String,
}

impl ReturnScreenModel {
    pub fn new(language: Language) -> Self {
        ReturnScreenModel {
            language,
            open: false,
            transaction_id: String::new(),
            purchase: None,
            selected: Vec::new(),
            reason: String::new(),
            restock: true,
            stage: ReturnStage::Entering,
            error: String::new(),
        }
    }

    /// Opens the screen afresh: nothing of an earlier return stays.
    pub fn open(&mut self) {
        *self = ReturnScreenModel {
            open: true,
            ..ReturnScreenModel::new(self.language)
        };
    }

    pub fn close(&mut self) {
        *self = ReturnScreenModel::new(self.language);
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn stage(&self) -> &ReturnStage {
        &self.stage
    }

    /// The id typed, pasted or scanned. A new id drops the purchase shown for the old one.
    pub fn set_transaction_id(&mut self, id: &str) {
        let id = id.trim();
        if id == self.transaction_id {
            return;
        }
        self.transaction_id = id.to_owned();
        if matches!(self.stage, ReturnStage::Choosing | ReturnStage::Done { .. }) {
            self.purchase = None;
            self.selected.clear();
            self.stage = ReturnStage::Entering;
        }
        self.error.clear();
    }

    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// Whether a purchase is on screen (found and not yet left).
    pub fn has_purchase(&self) -> bool {
        self.purchase.is_some()
    }

    pub fn can_find(&self) -> bool {
        self.open
            && !self.transaction_id.is_empty()
            && matches!(
                self.stage,
                ReturnStage::Entering | ReturnStage::Choosing | ReturnStage::Done { .. }
            )
    }

    /// The cashier asked for the purchase; returns the id to look up, or `None` if not now.
    pub fn finding(&mut self) -> Option<String> {
        if !self.can_find() {
            return None;
        }
        self.stage = ReturnStage::Finding;
        self.error.clear();
        Some(self.transaction_id.clone())
    }

    pub fn purchase_found(&mut self, purchase: PurchaseSnapshot) {
        if self.stage != ReturnStage::Finding || purchase.transaction_id != self.transaction_id {
            return;
        }
        self.selected = vec![0; purchase.lines.len()];
        self.purchase = Some(purchase);
        self.stage = ReturnStage::Choosing;
    }

    /// The agent could not find or read the purchase; `message` says why, plainly.
    pub fn find_failed(&mut self, message: impl Into<String>) {
        if self.stage == ReturnStage::Finding {
            self.stage = ReturnStage::Entering;
            self.purchase = None;
            self.selected.clear();
        }
        self.error = message.into();
    }

    /// One more of line `row` comes back, up to what can still be returned.
    pub fn add(&mut self, row: usize) {
        if !self.choosing() {
            return;
        }
        if let (Some(p), Some(n)) = (&self.purchase, self.selected.get_mut(row))
            && *n < p.lines[row].returnable
        {
            *n += 1;
        }
    }

    pub fn remove(&mut self, row: usize) {
        if !self.choosing() {
            return;
        }
        if let Some(n) = self.selected.get_mut(row)
            && *n > 0
        {
            *n -= 1;
        }
    }

    fn choosing(&self) -> bool {
        matches!(
            self.stage,
            ReturnStage::Choosing | ReturnStage::NeedsManager
        )
    }

    pub fn set_reason(&mut self, reason: &str) {
        self.reason = reason.to_owned();
    }

    pub fn set_restock(&mut self, restock: bool) {
        self.restock = restock;
    }

    pub fn reason(&self) -> &str {
        self.reason.trim()
    }

    pub fn restock(&self) -> bool {
        self.restock
    }

    /// The refund the chosen lines add up to, in minor units.
    pub fn amount(&self) -> i64 {
        self.purchase.as_ref().map_or(0, |p| {
            p.lines
                .iter()
                .zip(&self.selected)
                .map(|(l, n)| l.unit_price.saturating_mul(*n))
                .sum()
        })
    }

    /// Something is chosen, a reason is given, and it stays within what is refundable.
    pub fn can_refund(&self) -> bool {
        let Some(p) = &self.purchase else {
            return false;
        };
        self.stage == ReturnStage::Choosing
            && self.selected.iter().any(|n| *n > 0)
            && !self.reason().is_empty()
            && self.amount() <= p.refundable_amount
    }

    /// The chosen lines as (purchase line index, quantity), for the agent.
    pub fn chosen(&self) -> Vec<(usize, i64)> {
        self.purchase.as_ref().map_or_else(Vec::new, |p| {
            p.lines
                .iter()
                .zip(&self.selected)
                .filter(|(_, n)| **n > 0)
                .map(|(l, n)| (l.index, *n))
                .collect()
        })
    }

    /// The cashier tapped Refund (or the manager approved); `true` if it should go to the agent.
    pub fn refunding(&mut self, with_manager: bool) -> bool {
        let ready = if with_manager {
            self.stage == ReturnStage::NeedsManager
                && self.selected.iter().any(|n| *n > 0)
                && !self.reason().is_empty()
        } else {
            self.can_refund()
        };
        if ready {
            self.stage = ReturnStage::Refunding;
            self.error.clear();
        }
        ready
    }

    /// The agent wants a manager's approval (or the one given was refused).
    pub fn manager_needed(&mut self, message: impl Into<String>) {
        if self.stage == ReturnStage::Refunding {
            self.stage = ReturnStage::NeedsManager;
        }
        self.error = message.into();
    }

    /// The manager prompt was dismissed: back to choosing.
    pub fn manager_canceled(&mut self) {
        if self.stage == ReturnStage::NeedsManager {
            self.stage = ReturnStage::Choosing;
            self.error.clear();
        }
    }

    pub fn refunded(&mut self, slip: impl Into<String>) {
        if self.stage == ReturnStage::Refunding {
            self.stage = ReturnStage::Done { slip: slip.into() };
            self.error.clear();
        }
    }

    pub fn refund_failed(&mut self, message: impl Into<String>) {
        if self.stage == ReturnStage::Refunding {
            self.stage = ReturnStage::Choosing;
        }
        self.error = message.into();
    }

    pub fn view(&self) -> ReturnScreenView {
        let choosing = self.stage == ReturnStage::Choosing;
        let lines = match &self.purchase {
            Some(p) if !matches!(self.stage, ReturnStage::Done { .. }) => p
                .lines
                .iter()
                .zip(&self.selected)
                .map(|(l, n)| ReturnLineView {
                    name: format!(
                        "{}  {}",
                        l.name,
                        format_amount(l.unit_price, &p.currency, self.language)
                    ),
                    returnable: l.returnable.to_string(),
                    selected: *n,
                    can_add: choosing && *n < l.returnable,
                    can_remove: choosing && *n > 0,
                })
                .collect(),
            _ => Vec::new(),
        };
        ReturnScreenView {
            open: self.open,
            transaction_id: self.transaction_id.clone(),
            has_purchase: !lines.is_empty(),
            lines,
            amount: self.purchase.as_ref().map_or_else(String::new, |p| {
                format_amount(self.amount(), &p.currency, self.language)
            }),
            can_find: self.can_find(),
            can_refund: self.can_refund(),
            needs_manager: self.stage == ReturnStage::NeedsManager,
            busy: matches!(self.stage, ReturnStage::Finding | ReturnStage::Refunding),
            slip: match &self.stage {
                ReturnStage::Done { slip } => slip.clone(),
                _ => String::new(),
            },
            error: self.error.clone(),
            reason: self.reason.clone(),
            restock: self.restock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_return_starts_from_an_empty_form() {
        let mut m = ReturnScreenModel::new(Language::English);
        m.open();
        m.set_transaction_id("tx-1");
        m.set_reason("Wrong colour");
        m.set_restock(false);
        assert_eq!(m.view().reason, "Wrong colour");
        assert!(!m.view().restock);
        m.open();
        let v = m.view();
        assert!(v.open);
        assert_eq!((v.transaction_id.as_str(), v.reason.as_str()), ("", ""));
        assert!(
            v.restock,
            "goods go back to stock unless the cashier says not"
        );
    }

    fn scarves() -> PurchaseSnapshot {
        PurchaseSnapshot {
            transaction_id: "tx-1".into(),
            currency: "SEK".parse::<Currency>().unwrap(),
            refundable_amount: 39_800 + 5_000,
            lines: vec![
                PurchaseLineSnapshot {
                    index: 0,
                    name: "Scarf".into(),
                    unit_price: 19_900,
                    returnable: 2,
                },
                PurchaseLineSnapshot {
                    index: 1,
                    name: "Socks".into(),
                    unit_price: 5_000,
                    returnable: 1,
                },
            ],
        }
    }

    fn found() -> ReturnScreenModel {
        let mut m = ReturnScreenModel::new(Language::English);
        m.open();
        m.set_transaction_id("  tx-1 ");
        assert_eq!(m.finding().as_deref(), Some("tx-1"));
        m.purchase_found(scarves());
        m
    }

    #[test]
    fn nothing_is_looked_up_without_an_id() {
        let mut m = ReturnScreenModel::new(Language::English);
        m.open();
        assert!(!m.can_find());
        assert_eq!(m.finding(), None);
        m.set_transaction_id("   ");
        assert_eq!(m.finding(), None);
    }

    #[test]
    fn quantities_stay_between_zero_and_what_is_returnable() {
        let mut m = found();
        m.remove(0);
        assert_eq!(m.view().lines[0].selected, 0);
        for _ in 0..5 {
            m.add(0);
        }
        let v = m.view();
        assert_eq!(v.lines[0].selected, 2);
        assert!(!v.lines[0].can_add);
        assert!(v.lines[0].can_remove);
        assert_eq!(m.amount(), 39_800);
        m.add(7); // no such row: nothing happens
        assert_eq!(m.chosen(), vec![(0, 2)]);
    }

    #[test]
    fn a_refund_needs_something_chosen_and_a_reason() {
        let mut m = found();
        assert!(!m.can_refund());
        m.add(1);
        assert!(!m.can_refund(), "no reason yet");
        m.set_reason("  ");
        assert!(!m.can_refund(), "a blank reason is no reason");
        m.set_reason("Too small");
        assert!(m.can_refund());
        assert!(m.refunding(false));
        assert!(!m.refunding(false), "one tap, one refund");
        m.refunded("REFUND PENDING");
        assert_eq!(m.view().slip, "REFUND PENDING");
        assert!(m.view().lines.is_empty());
    }

    #[test]
    fn never_more_than_what_remains_refundable() {
        let mut m = found();
        let mut p = scarves();
        p.refundable_amount = 19_900;
        m.set_transaction_id("tx-1");
        m.stage = ReturnStage::Finding;
        m.purchase_found(p);
        m.set_reason("Wrong colour");
        m.add(0);
        assert!(m.can_refund());
        m.add(0);
        assert!(!m.can_refund());
    }

    #[test]
    fn a_manager_prompt_then_retry_or_back_to_choosing() {
        let mut m = found();
        m.add(0);
        m.set_reason("Damaged");
        assert!(m.refunding(false));
        m.manager_needed("a manager must approve");
        assert!(m.view().needs_manager);
        assert!(!m.view().can_refund);
        assert!(m.refunding(true));
        m.manager_needed("wrong PIN");
        assert_eq!(m.view().error, "wrong PIN");
        m.manager_canceled();
        assert!(m.view().can_refund);
    }

    #[test]
    fn errors_are_kept_plain_and_a_new_id_starts_over() {
        let mut m = ReturnScreenModel::new(Language::English);
        m.open();
        m.set_transaction_id("nope");
        m.finding();
        m.find_failed("nope not found");
        let v = m.view();
        assert_eq!(v.error, "nope not found");
        assert!(v.can_find);
        let mut m = found();
        m.add(0);
        m.set_transaction_id("tx-2");
        assert!(!m.view().has_purchase);
        assert_eq!(m.amount(), 0);
        m.close();
        assert!(!m.view().open);
    }
}
