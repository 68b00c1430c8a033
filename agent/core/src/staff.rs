//! Staff who sign in at the till: their roles, what a staff identifier may be, and a signed-in
//! session's idle lock. Pure; the agent keeps the accounts (with Argon2 PIN hashes) and sessions.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sells, takes tenders, records returns within the store's limits.
    Cashier,
    /// Also approves (price cuts, returns, day close, payments in doubt) and manages staff.
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cashier => "cashier",
            Role::Manager => "manager",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "cashier" => Role::Cashier,
            "manager" => Role::Manager,
            _ => return None,
        })
    }
}

/// Longest staff identifier, in characters (it is the journal's `operator`).
pub const MAX_STAFF_ID_CHARS: usize = 64;

/// A staff identifier: 1 to 64 letters, digits, `.`, `-` or `_` (it is typed on a keypad, read
/// back from the journal, and never confused with a name with spaces).
pub fn validate_staff_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.chars().count() > MAX_STAFF_ID_CHARS
        || !id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!(
            "a staff id is 1 to {MAX_STAFF_ID_CHARS} letters, digits, '.', '-' or '_'"
        ));
    }
    Ok(())
}

/// A signed-in session: locked after `idle` without use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub last_used: std::time::Instant,
}

impl Session {
    /// Whether the session is still open at `now` (and, if it is, it counts as used then).
    pub fn touch(&mut self, now: std::time::Instant, idle: std::time::Duration) -> bool {
        if now.saturating_duration_since(self.last_used) >= idle {
            return false;
        }
        self.last_used = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn staff_ids_are_short_words() {
        for good in ["ann", "maria.l", "till-2_night", "Åsa"] {
            assert!(validate_staff_id(good).is_ok(), "{good}");
        }
        for bad in ["", "ann smith", "a\nb", "x/y", &"a".repeat(65)] {
            assert!(validate_staff_id(bad).is_err(), "{bad:?}");
        }
        for r in [Role::Cashier, Role::Manager] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn a_session_locks_after_idle_time_and_use_keeps_it_open() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(300);
        let mut s = Session { last_used: t0 };
        assert!(s.touch(t0 + Duration::from_secs(299), idle));
        // Used at 299 s: open until 599 s.
        assert!(s.touch(t0 + Duration::from_secs(598), idle));
        assert!(!s.touch(t0 + Duration::from_secs(898), idle));
    }
}
