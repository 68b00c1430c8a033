//! The manager PIN: stored only as an Argon2id hash in the database, checked off the database
//! thread (hashing is deliberately slow), and every manager action (or refusal) is journaled.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

use crate::store::{Store, StoreError};

/// Why a manager function was not done; each says what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("no manager PIN is set: run `kassa manager set-pin` on the terminal")]
    NoPin,
    #[error("a manager PIN is needed for this")]
    PinMissing,
    #[error("wrong manager PIN")]
    WrongPin,
    /// Too many wrong PINs in a row: none is checked until the pause is over.
    #[error("too many wrong manager PINs; try again in {retry_after_secs} s")]
    LockedOut { retry_after_secs: u64 },
    #[error("a manager PIN is 4 to 12 digits")]
    BadPin,
    #[error("the stored manager PIN hash is unreadable ({0}): set the PIN again")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the PIN's shape before it is hashed or compared.
pub fn check_pin_format(pin: &str) -> Result<(), ManagerError> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ManagerError::BadPin)
    }
}

/// The PIN as an Argon2id PHC string (the salt and parameters travel inside it).
pub fn hash_pin(pin: &str) -> Result<String, ManagerError> {
    check_pin_format(pin)?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| ManagerError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ManagerError::Hash(e.to_string()))
}

/// Whether `pin` matches the stored hash; slow on purpose, so call it off the database thread.
pub fn pin_matches(phc: &str, pin: &str) -> Result<bool, ManagerError> {
    let parsed = PasswordHash::new(phc).map_err(|e| ManagerError::Hash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(pin.as_bytes(), &parsed)
        .is_ok())
}

pub use kassa_core::pin::{FIRST_LOCKOUT, MAX_LOCKOUT, PinGuard, WRONG_PINS_BEFORE_LOCKOUT};

/// Checks `pin` for `action`; a wrong or missing PIN is journaled as a refused manager action.
/// After `WRONG_PINS_BEFORE_LOCKOUT` wrong PINs in a row, through any door, no PIN is checked
/// (and nothing more is journaled) until the pause is over: guessing a 4-digit PIN through the
/// API would otherwise take minutes.
pub async fn authorize(
    store: &Store,
    pin: Option<String>,
    action: &'static str,
    operator: &str,
) -> Result<(), ManagerError> {
    let locked = |d: std::time::Duration| ManagerError::LockedOut {
        retry_after_secs: d.as_secs().max(1),
    };
    let _turn = store.pin_turn().await;
    if let Some(d) = store.pin_guard().locked_for(std::time::Instant::now()) {
        return Err(locked(d));
    }
    // A name that is a staff account is checked against that account's own PIN, and must be a
    // manager's; any other name is checked against the store PIN (the `manager` account), as
    // before staff accounts existed.
    let name = operator.to_string();
    // A cashier's (or a closed) account cannot approve: as wrong as a wrong PIN (empty hash).
    let phc = store
        .call(move |db| match db.staff_member(&name)? {
            Some((row, phc)) if row.active && row.role == crate::store::staff::Role::Manager => {
                Ok(Some(phc))
            }
            Some(_) => Ok(Some(String::new())),
            // Any other name: the store PIN, which is the `manager` account's (one secret).
            None => match db.staff_member("manager")? {
                Some((row, phc))
                    if row.active && row.role == crate::store::staff::Role::Manager =>
                {
                    Ok(Some(phc))
                }
                Some(_) => Ok(Some(String::new())),
                None => db.manager_pin_hash(),
            },
        })
        .await?
        .ok_or(ManagerError::NoPin)?;
    let ok = match pin {
        Some(pin) if check_pin_format(&pin).is_ok() && !phc.is_empty() => {
            tokio::task::spawn_blocking(move || pin_matches(&phc, &pin))
                .await
                .map_err(|e| ManagerError::Hash(e.to_string()))??
        }
        _ => false,
    };
    let pause = store.pin_guard().record(ok, std::time::Instant::now());
    if ok {
        return Ok(());
    }
    let op = operator.to_string();
    let mut detail =
        serde_json::json!({"action": action, "outcome": "refused", "why": "wrong_pin"});
    if let Some(p) = pause {
        detail["locked_out_secs"] = serde_json::json!(p.as_secs());
    }
    store
        .call(move |db| db.journal_manager_action(&op, detail))
        .await?;
    Err(ManagerError::WrongPin)
}

/// A manager approving something at the counter: their name (journaled) and PIN (checked, never
/// stored or logged).
#[derive(Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagerApproval {
    pub name: String,
    pub pin: String,
}

impl std::fmt::Debug for ManagerApproval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerApproval")
            .field("name", &self.name)
            .field("pin", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_stored_only_as_a_hash_that_checks_it() {
        let phc = hash_pin("2468").expect("hashes");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("2468"));
        assert!(pin_matches(&phc, "2468").expect("checks"));
        assert!(!pin_matches(&phc, "2469").expect("checks"));
        assert!(matches!(hash_pin("12a4"), Err(ManagerError::BadPin)));
        assert!(matches!(hash_pin("123"), Err(ManagerError::BadPin)));
    }

    #[tokio::test]
    async fn a_wrong_pin_is_refused_and_journaled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("k.db"), "till-1").expect("opens");
        assert!(matches!(
            authorize(&store, Some("1111".into()), "day_close", "mia").await,
            Err(ManagerError::NoPin)
        ));
        let phc = hash_pin("1357").expect("hashes");
        store
            .call(move |db| db.set_manager_pin(&phc, "mia"))
            .await
            .expect("stored");
        assert!(matches!(
            authorize(&store, Some("1111".into()), "day_close", "mia").await,
            Err(ManagerError::WrongPin)
        ));
        assert!(matches!(
            authorize(&store, None, "day_close", "mia").await,
            Err(ManagerError::WrongPin)
        ));
        authorize(&store, Some("1357".into()), "day_close", "mia")
            .await
            .expect("right PIN");
        let rows = store
            .call(|db| db.journal_rows(0, 100))
            .await
            .expect("rows");
        let actions: Vec<_> = rows
            .iter()
            .filter(|r| r.kind == "manager_action")
            .map(|r| r.detail.to_string())
            .collect();
        assert_eq!(actions.len(), 3, "{actions:?}");
        assert!(actions[0].contains("set_pin"));
        assert!(actions[1].contains("refused") && actions[2].contains("refused"));
        assert!(
            actions
                .iter()
                .all(|a| !a.contains("1357") && !a.contains("1111"))
        );
    }
}
