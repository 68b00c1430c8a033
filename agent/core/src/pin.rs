//! The manager PIN's lock-out: wrong PINs in a row and the pause they cause, the same for
//! every door to the PIN (screen, local API). Pure: the agent keeps one per database and asks it
//! before and after each check.

/// Wrong PINs in a row before every door to the PIN pauses.
pub const WRONG_PINS_BEFORE_LOCKOUT: u32 = 5;
/// The first pause; each lock-out that follows another without a right PIN between doubles it.
pub const FIRST_LOCKOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest pause.
pub const MAX_LOCKOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Wrong manager PINs in a row and the pause they caused (kept by the `Store`, shared by every
/// door to the PIN). A right PIN resets it.
#[derive(Debug, Default)]
pub struct PinGuard {
    wrong_in_a_row: u32,
    lockouts_in_a_row: u32,
    locked_until: Option<std::time::Instant>,
}

impl PinGuard {
    /// How long until a PIN may be checked again, if it may not now.
    pub fn locked_for(&self, now: std::time::Instant) -> Option<std::time::Duration> {
        self.locked_until
            .filter(|u| *u > now)
            .map(|u| u.duration_since(now))
    }

    /// Records an answer; returns the pause it starts, if it starts one.
    pub fn record(&mut self, right: bool, now: std::time::Instant) -> Option<std::time::Duration> {
        if right {
            *self = PinGuard::default();
            return None;
        }
        self.wrong_in_a_row += 1;
        if self.wrong_in_a_row < WRONG_PINS_BEFORE_LOCKOUT {
            return None;
        }
        self.wrong_in_a_row = 0;
        let pause = FIRST_LOCKOUT
            .saturating_mul(1 << self.lockouts_in_a_row.min(8))
            .min(MAX_LOCKOUT);
        self.lockouts_in_a_row += 1;
        self.locked_until = Some(now + pause);
        Some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn five_wrong_pins_pause_every_door_and_each_pause_in_a_row_doubles() {
        let t0 = Instant::now();
        let mut g = PinGuard::default();
        for _ in 1..WRONG_PINS_BEFORE_LOCKOUT {
            assert_eq!(g.record(false, t0), None);
            assert_eq!(g.locked_for(t0), None);
        }
        assert_eq!(g.record(false, t0), Some(FIRST_LOCKOUT));
        assert_eq!(g.locked_for(t0), Some(FIRST_LOCKOUT));
        let later = t0 + FIRST_LOCKOUT;
        assert_eq!(g.locked_for(later), None);
        for _ in 1..WRONG_PINS_BEFORE_LOCKOUT {
            g.record(false, later);
        }
        assert_eq!(g.record(false, later), Some(FIRST_LOCKOUT * 2));
        // Never longer than the cap, however many pauses in a row.
        let mut at = later;
        for _ in 0..20 {
            at += MAX_LOCKOUT;
            for _ in 0..WRONG_PINS_BEFORE_LOCKOUT {
                g.record(false, at);
            }
        }
        assert_eq!(g.locked_for(at), Some(MAX_LOCKOUT));
        // A right PIN (after the pause) starts the count again.
        let after = at + MAX_LOCKOUT + Duration::from_secs(1);
        assert_eq!(g.record(true, after), None);
        assert_eq!(g.record(false, after), None);
        assert_eq!(g.locked_for(after), None);
    }
}
