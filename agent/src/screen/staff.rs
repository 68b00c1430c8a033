//! Signing in on the cashier's screen: the session the screen acts under, the lock while the
//! store requires someone signed in and nobody is (or the last one was idle too long), and the
//! spawn that runs every action of the screen as the signed-in member of staff.

use super::*;
use crate::staff::SignedIn;

/// The screen's staff session: its token, who it is, and the last refusal.
#[derive(Default)]
pub(super) struct ScreenStaff {
    session: Option<(String, SignedIn)>,
    problem: String,
    busy: bool,
}

impl Shared {
    /// Runs an action of the screen on the runtime, as whoever is signed in. Using the session
    /// keeps it open; a session that timed out is closed here and the screen locks.
    pub(super) fn spawn<F>(self: &Arc<Self>, action: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let who = self.acting();
        self.rt.spawn(crate::staff::run_as(who, action));
    }

    fn acting(self: &Arc<Self>) -> Option<SignedIn> {
        let token = lock(&self.staff).session.as_ref().map(|s| s.0.clone())?;
        let who = self.terminal.sessions().resolve(&token);
        if who.is_none() {
            self.session_ended();
        }
        who
    }

    /// Locks the screen once the session has been idle too long (asked by the status poll).
    pub(super) fn check_idle(self: &Arc<Self>) {
        let token = lock(&self.staff).session.as_ref().map(|s| s.0.clone());
        if let Some(token) = token
            && self.terminal.sessions().peek(&token).is_none()
        {
            self.session_ended();
        }
    }

    /// The session ended (idle, signed out, someone else signed in): nothing it opened stays
    /// open for the next person: the manager area and the return screen close, and a manager's
    /// name and PIN typed on the price screen are forgotten.
    fn session_ended(self: &Arc<Self>) {
        lock(&self.staff).session = None;
        self.close_manager_area();
        *lock(&self.returning_sale) = None;
        lock(&self.returns).close();
        self.show_return();
        let _ = self.till.upgrade_in_event_loop(|w| {
            let g = w.global::<SaleScreen>();
            g.set_manager_name(Default::default());
            g.set_manager_pin(Default::default());
        });
        self.show_staff();
    }

    /// Leaves the manager area: locked, and nothing of the manager's data kept.
    pub(super) fn close_manager_area(&self) {
        lock(&self.manager).lock();
        *lock(&self.panes) = ManagerAreaModel::default();
        lock(&self.log).clear();
        lock(&self.reports).clear();
        *lock(&self.report) = None;
        let (log, reports) = (lock(&self.log).view(), lock(&self.reports).view());
        let _ = self.till.upgrade_in_event_loop(move |w| {
            w.global::<ManagerArea>().set_open(false);
            // The next manager finds the pad without the last one's "wrong PIN".
            bind::show_pin_answer(&w, PinAnswer::Opened);
            bind::show_manager_area(&w, &ManagerAreaModel::default(), false);
            bind::show_log_pane(&w, &log);
            bind::show_report_pane(&w, &reports);
        });
    }

    pub(super) fn show_staff(&self) {
        let required = self.terminal.config().staff.require_sign_in;
        let (name, problem, busy) = {
            let s = lock(&self.staff);
            (
                s.session
                    .as_ref()
                    .map(|(_, w)| format!("{} ({})", w.name, w.id))
                    .unwrap_or_default(),
                s.problem.clone(),
                s.busy,
            )
        };
        let _ = self.till.upgrade_in_event_loop(move |w| {
            bind::show_staff(&w, &name, required && name.is_empty(), &problem, busy);
        });
    }

    pub(super) fn sign_in(self: &Arc<Self>, id: String, pin: String) {
        {
            let mut s = lock(&self.staff);
            if s.busy {
                return;
            }
            s.busy = true;
            s.problem.clear();
        }
        self.show_staff();
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            let t = &shared.terminal;
            let answer = t.sessions().sign_in(t.store(), id.trim(), &pin).await;
            {
                let mut s = lock(&shared.staff);
                s.busy = false;
                match answer {
                    Ok((token, who)) => {
                        // A new member of staff takes the till: the last one's session ends,
                        // with what it had open.
                        if let Some((old, _)) = s.session.take() {
                            drop(s);
                            shared.session_ended();
                            let (t, store) = (t.clone(), t.store().clone());
                            tokio::spawn(async move {
                                let _ = t.sessions().sign_out(&store, &old).await;
                            });
                            s = lock(&shared.staff);
                        }
                        s.session = Some((token, who));
                    }
                    // The two refusals a cashier meets are said in the screen's language.
                    Err(crate::staff::StaffError::WrongIdOrPin) => s.problem = "wrong_pin".into(),
                    Err(crate::staff::StaffError::Pin(
                        crate::manager::ManagerError::LockedOut { .. },
                    )) => s.problem = "locked_out".into(),
                    Err(e) => s.problem = e.to_string(),
                }
            }
            shared.show_staff();
        });
    }

    pub(super) fn sign_out(self: &Arc<Self>) {
        let Some((token, _)) = lock(&self.staff).session.take() else {
            return;
        };
        self.session_ended();
        let shared = Arc::clone(self);
        self.rt.spawn(async move {
            let t = &shared.terminal;
            if let Err(e) = t.sessions().sign_out(t.store(), &token).await {
                tracing::warn!("could not journal the sign-out: {e}");
            }
        });
    }
}
