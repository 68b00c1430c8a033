//! The manager area: the PIN that guards it (with a pause after repeated wrong PINs) and the
//! rows of its panes. The panes' data comes from the agent as the manager, outbox, health and
//! device work lands; until then they are empty and say so.

/// Wrong PINs in a row before the PIN pad pauses.
pub const WRONG_PINS_BEFORE_PAUSE: u32 = 5;
/// How long the PIN pad pauses after too many wrong PINs.
pub const PAUSE_MS: i64 = 60_000;

/// What happened when a PIN was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinAnswer {
    Opened,
    Wrong,
    /// Too many wrong PINs; no PIN is checked until the pause is over.
    Paused,
}

/// Guards the manager area with the store's PIN.
#[derive(Debug, Clone)]
pub struct ManagerAccess {
    pin: String,
    wrong_in_a_row: u32,
    paused_until_ms: Option<i64>,
    unlocked: bool,
}

impl ManagerAccess {
    /// An empty PIN never opens the area: a missing setting must not leave it open.
    pub fn new(pin: impl Into<String>) -> Self {
        ManagerAccess {
            pin: pin.into(),
            wrong_in_a_row: 0,
            paused_until_ms: None,
            unlocked: false,
        }
    }

    pub fn is_unlocked(&self) -> bool {
        self.unlocked
    }

    pub fn try_pin(&mut self, entered: &str, now_ms: i64) -> PinAnswer {
        if self.paused_until_ms.is_some_and(|until| now_ms < until) {
            return PinAnswer::Paused;
        }
        self.paused_until_ms = None;
        if !self.pin.is_empty() && same_pin(entered, &self.pin) {
            self.wrong_in_a_row = 0;
            self.unlocked = true;
            return PinAnswer::Opened;
        }
        self.wrong_in_a_row += 1;
        if self.wrong_in_a_row >= WRONG_PINS_BEFORE_PAUSE {
            self.wrong_in_a_row = 0;
            self.paused_until_ms = Some(now_ms.saturating_add(PAUSE_MS));
            return PinAnswer::Paused;
        }
        PinAnswer::Wrong
    }

    /// Leaving the manager area locks it again.
    pub fn lock(&mut self) {
        self.unlocked = false;
    }
}

/// Compares every byte so that the time taken does not tell how many digits were right.
fn same_pin(entered: &str, pin: &str) -> bool {
    let (a, b) = (entered.as_bytes(), pin.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// One sale or refund in the transaction log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransactionRow {
    pub time: String,
    pub amount: String,
    pub state: String,
}

/// One operation waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboxRow {
    pub operation: String,
    pub state: String,
    pub attempts: String,
}

/// Klarna's health in one SLO category (authorize, capture, refund, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthRow {
    pub category: String,
    pub state: String,
}

/// One device and its state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceRow {
    pub device: String,
    pub state: String,
}

/// The panes of the manager area.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManagerAreaModel {
    pub transactions: Vec<TransactionRow>,
    pub outbox: Vec<OutboxRow>,
    pub health: Vec<HealthRow>,
    pub devices: Vec<DeviceRow>,
    /// The till has no peripherals configured, so the devices pane says so instead of
    /// looking like it is still loading.
    pub no_devices: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_pin_opens_and_leaving_locks_again() {
        let mut access = ManagerAccess::new("2468");
        assert_eq!(access.try_pin("1111", 0), PinAnswer::Wrong);
        assert!(!access.is_unlocked());
        assert_eq!(access.try_pin("2468", 0), PinAnswer::Opened);
        assert!(access.is_unlocked());
        access.lock();
        assert!(!access.is_unlocked());
    }

    #[test]
    fn a_prefix_or_a_longer_pin_is_wrong() {
        let mut access = ManagerAccess::new("2468");
        assert_eq!(access.try_pin("246", 0), PinAnswer::Wrong);
        assert_eq!(access.try_pin("24680", 0), PinAnswer::Wrong);
        assert_eq!(access.try_pin("", 0), PinAnswer::Wrong);
    }

    #[test]
    fn an_empty_configured_pin_never_opens() {
        let mut access = ManagerAccess::new("");
        assert_eq!(access.try_pin("", 0), PinAnswer::Wrong);
    }

    #[test]
    fn five_wrong_pins_pause_the_pad_for_a_minute() {
        let mut access = ManagerAccess::new("2468");
        for _ in 1..WRONG_PINS_BEFORE_PAUSE {
            assert_eq!(access.try_pin("0000", 0), PinAnswer::Wrong);
        }
        assert_eq!(access.try_pin("0000", 0), PinAnswer::Paused);
        assert_eq!(
            access.try_pin("2468", PAUSE_MS - 1),
            PinAnswer::Paused,
            "even the right PIN waits"
        );
        assert_eq!(access.try_pin("2468", PAUSE_MS), PinAnswer::Opened);
    }
}
