//! Life under systemd and the updater: readiness and watchdog notifications (the unit is
//! `Type=notify` with `WatchdogSec`), and the busy marker that keeps an update from switching
//! versions while a sale or payment is open.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::store::Store;

/// Returns at systemd's stop (SIGTERM) or Ctrl-C (SIGINT): the moment to shut down in order.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Tells systemd the agent is ready (no-op when not started by systemd).
pub fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::debug!("sd_notify READY: {e}");
    }
}

/// Pings systemd's watchdog at half its interval, but only while the database thread answers:
/// a hung agent stops pinging and is restarted.
pub async fn watchdog(store: Store) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = interval / 2;
    loop {
        tokio::time::sleep(every).await;
        let alive = tokio::time::timeout(every, store.call(|_| Ok(()))).await;
        if matches!(alive, Ok(Ok(()))) {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!("database thread did not answer; withholding the watchdog ping");
        }
    }
}

/// Keeps a file present exactly while a sale is open with lines or a payment is in flight.
#[derive(Clone)]
pub struct BusyMarker {
    path: Option<PathBuf>,
    /// Serialises updates so the last writer always wrote the latest truth.
    lock: Arc<Mutex<()>>,
}

impl BusyMarker {
    pub fn new(path: Option<PathBuf>) -> Self {
        BusyMarker {
            path,
            lock: Arc::new(Mutex::new(())),
        }
    }

    pub async fn update(&self, store: &Store) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let _g = self.lock.lock().await;
        let busy = store.call(|db| db.sale_or_payment_open()).await;
        let r = match busy {
            Ok(true) => std::fs::write(&path, b"sale or payment open\n"),
            Ok(false) => std::fs::remove_file(&path).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }),
            Err(e) => {
                tracing::warn!("busy marker: {e}");
                return;
            }
        };
        if let Err(e) = r {
            tracing::warn!("busy marker {}: {e}", path.display());
        }
    }
}

/// Default interval used when the unit has no watchdog (for documentation and tests).
pub const NO_WATCHDOG: Option<Duration> = None;
