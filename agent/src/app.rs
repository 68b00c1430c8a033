//! Assembles a running agent: Klarna client with metrics, the terminal, and the local API on its
//! socket. Shared by `kassa run`, the demo, benchmarks and the end-to-end tests.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api;
use crate::config::{Config, Secret};
use crate::devices::{Devices, DevicesError};
use crate::health::Health;
use crate::klarna::KlarnaClient;
use crate::metrics::Metrics;
use crate::terminal::{Terminal, TerminalError};

/// A started agent; dropping it stops the API server (the database thread ends with the last handle).
pub struct Agent {
    pub terminal: Terminal,
    /// The serial peripherals (display, scanner, printer, card reader) following the terminal.
    pub devices: Devices,
    pub metrics: Metrics,
    /// Where the local API listens (useful when the config said port 0).
    pub api_addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    /// Held while the agent runs: a second agent on the same data (the service and a kiosk
    /// window, say) would follow the same payments and send the same outbox.
    _lock: std::fs::File,
}

impl Agent {
    /// Stops in order: the local API first (no new payment can start), then a durable record
    /// that this run ended cleanly, which also makes every earlier relaxed commit durable, so
    /// the next run knows no payment draft it finds was sent (`Db::begin_run`). A run that
    /// ends any other way (a crash, a power cut, a dropped agent) leaves them in doubt.
    pub async fn shutdown(self) {
        self.server.abort();
        if let Err(e) = self.terminal.store().call(|db| db.end_run()).await {
            tracing::warn!(error = %e, "could not record the clean end of this run");
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    #[error(transparent)]
    Devices(#[from] DevicesError),
    #[error(
        "another kassa agent is already running on {0} (stop it first: `systemctl stop kassa`, or close the till's window)"
    )]
    AlreadyRunning(std::path::PathBuf),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl Agent {
    /// Starts everything with secrets already in hand (the caller read them from files or env).
    pub async fn start(
        cfg: Config,
        klarna_key: Secret,
        api_token: Secret,
    ) -> Result<Agent, StartError> {
        // A configuration built in code (the demo, tests) is checked as a loaded one is.
        cfg.validate()?;
        let lock = lock_data_dir(&cfg.data_dir)?;
        let metrics = Metrics::new();
        let health = Arc::new(Health::new(cfg.health.clone()));
        let observer: crate::klarna::CallObserver = {
            let (m, h) = (metrics.clone(), health.clone());
            Arc::new(move |r| {
                m.record(r);
                h.record(r);
            })
        };
        let klarna =
            KlarnaClient::new(&cfg.klarna, klarna_key, cfg.production)?.with_observer(observer);
        let listen = cfg.api.listen;
        let terminal = Terminal::start(cfg, klarna, health).await?;
        let devices = Devices::start(terminal.clone())?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: listen,
                source,
            })?;
        let api_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
        let app = api::router_with_devices(
            terminal.clone(),
            metrics.clone(),
            api_token,
            Some(devices.clone()),
        );
        let server = tokio::spawn(api::serve::serve(listener, app));
        tracing::info!(%api_addr, "kassa agent ready");
        Ok(Agent {
            terminal,
            devices,
            metrics,
            api_addr,
            server,
            _lock: lock,
        })
    }

    /// Starts from a configuration file's settings, reading the secrets it points to.
    pub async fn start_from_config(cfg: Config) -> Result<Agent, StartError> {
        let key = cfg.klarna_api_key()?;
        let token = cfg.api_token()?;
        Self::start(cfg, key, token).await
    }
}

/// Takes the data directory's agent lock (released by the kernel when the process dies, so a
/// crash never leaves a stale lock behind).
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StartError> {
    let path = dir.join("agent.lock");
    let err = |source| StartError::Lock {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(err)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::AlreadyRunning(dir.into())),
        Err(std::fs::TryLockError::Error(e)) => Err(err(e)),
    }
}
