//! Staff signing in at the till. A sign-in checks the account's PIN (Argon2, off the database
//! thread, behind the same lock-out as every PIN) and opens a session that locks after idle
//! time. While a request runs for a signed-in session, `current()` names its staff member, and
//! `Terminal::operator` records them as the operator of every journal row the request writes:
//! one choke point, so no handler can write a row under another name.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use serde::Serialize;

use crate::manager::{ManagerError, check_pin_format, pin_matches};
use crate::store::staff::{Role, StaffRow};
use crate::store::{Store, StoreError};
use kassa_core::staff::Session;

/// The staff member a request runs for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    pub id: String,
    pub name: String,
    pub role: Role,
}

tokio::task_local! {
    static SIGNED_IN: SignedIn;
}

/// The staff member the running request was signed in as, if any.
pub fn current() -> Option<SignedIn> {
    SIGNED_IN.try_with(Clone::clone).ok()
}

/// Runs `f` as `who` (see `current`); `None` runs it as nobody in particular.
pub async fn run_as<F: std::future::Future>(who: Option<SignedIn>, f: F) -> F::Output {
    match who {
        Some(w) => SIGNED_IN.scope(w, f).await,
        None => f.await,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("unknown staff id or wrong PIN")]
    WrongIdOrPin,
    #[error("signed out (idle for too long, or never signed in): sign in again")]
    SignedOut,
    #[error(transparent)]
    Pin(#[from] ManagerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Open sessions, by their secret token; kept in memory only, so a restart signs everyone out.
pub struct Sessions {
    open: Mutex<HashMap<String, (SignedIn, Session)>>,
    idle: Duration,
}

/// Most sessions open at once: a till has a handful of staff; a client that signs in in a loop
/// must not grow memory without end.
pub const MAX_SESSIONS: usize = 64;

impl Sessions {
    pub fn new(idle: Duration) -> Self {
        Sessions {
            open: Mutex::new(HashMap::new()),
            idle,
        }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (SignedIn, Session)>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The staff member behind `token`, if the session is open; using it keeps it open.
    pub fn resolve(&self, token: &str) -> Option<SignedIn> {
        let now = Instant::now();
        let mut open = self.lock();
        let idle = self.idle;
        let entry = open.get_mut(token)?;
        if entry.1.touch(now, idle) {
            return Some(entry.0.clone());
        }
        open.remove(token);
        None
    }

    /// The staff member behind `token` if the session is still open, without counting as use
    /// (a screen's clock asks this; only actions keep a session open).
    pub fn peek(&self, token: &str) -> Option<SignedIn> {
        let open = self.lock();
        let (who, s) = open.get(token)?;
        (Instant::now().saturating_duration_since(s.last_used) < self.idle).then(|| who.clone())
    }

    /// Checks `id`'s PIN and opens a session; returns its token. Refusals are journaled and
    /// count toward the lock-out every PIN shares.
    pub async fn sign_in(
        &self,
        store: &Store,
        id: &str,
        pin: &str,
    ) -> Result<(String, SignedIn), StaffError> {
        let _turn = store.pin_turn().await;
        if let Some(d) = store.pin_guard().locked_for(Instant::now()) {
            return Err(ManagerError::LockedOut {
                retry_after_secs: d.as_secs().max(1),
            }
            .into());
        }
        let key = id.to_string();
        let account = store.call(move |db| db.staff_member(&key)).await?;
        // An unknown id costs the same hash as a known one: the answer's time does not say
        // which ids exist.
        let (phc, known) = match &account {
            Some((row, phc)) if row.active => (phc.clone(), true),
            _ => (dummy_hash()?, false),
        };
        let ok = check_pin_format(pin).is_ok()
            && {
                let pin = pin.to_string();
                tokio::task::spawn_blocking(move || pin_matches(&phc, &pin))
                    .await
                    .map_err(|e| ManagerError::Hash(e.to_string()))??
            }
            && known;
        // Every door shares one count of wrong PINs. Only a manager's right PIN clears it: a
        // cashier who knows their own PIN must not be able to reset the count between guesses
        // at a manager's.
        let manager = account
            .as_ref()
            .is_some_and(|(row, _)| row.role == Role::Manager);
        if !ok || manager {
            store.pin_guard().record(ok, Instant::now());
        }
        let journal_id = if kassa_core::staff::validate_staff_id(id).is_ok() {
            id.to_string()
        } else {
            "unknown".to_string()
        };
        let event = if ok { "signed_in" } else { "refused" };
        store
            .call(move |db| db.journal_staff_session(&journal_id, event))
            .await?;
        let Some((row, _)) = account.filter(|_| ok) else {
            return Err(StaffError::WrongIdOrPin);
        };
        let who = signed_in(&row);
        let mut token = [0u8; 32];
        rand::rng().fill_bytes(&mut token);
        let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let mut open = self.lock();
        let now = Instant::now();
        let idle = self.idle;
        open.retain(|_, (_, s)| now.saturating_duration_since(s.last_used) < idle);
        if open.len() >= MAX_SESSIONS {
            // The session unused longest makes room.
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, (_, s))| s.last_used)
                .map(|(k, _)| k.clone())
            {
                open.remove(&oldest);
            }
        }
        open.insert(token.clone(), (who.clone(), Session { last_used: now }));
        Ok((token, who))
    }

    /// Closes the session `token` (journaled); false if it was not open.
    pub async fn sign_out(&self, store: &Store, token: &str) -> Result<bool, StaffError> {
        let Some((who, _)) = self.lock().remove(token) else {
            return Ok(false);
        };
        store
            .call(move |db| db.journal_staff_session(&who.id, "signed_out"))
            .await?;
        Ok(true)
    }
}

/// A hash of no one's PIN, made once, checked against when an id is unknown.
fn dummy_hash() -> Result<String, ManagerError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = crate::manager::hash_pin("00000000")?;
    Ok(DUMMY.get_or_init(|| h).clone())
}

fn signed_in(row: &StaffRow) -> SignedIn {
    SignedIn {
        id: row.id.clone(),
        name: row.name.clone(),
        role: row.role,
    }
}
