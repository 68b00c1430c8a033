//! kassa-agent: the terminal's core. `terminal` runs sales and Klarna payments on top of the
//! pure `payment` state machine, `store` keeps them (and the hash-chained journal) in SQLite,
//! `klarna` talks to Klarna, `api` is the local control API, `metrics` what Prometheus scrapes.

pub mod api;
pub mod app;
pub mod archive;
#[cfg(feature = "sim")]
pub mod bench;
pub mod config;
#[cfg(feature = "sim")]
pub mod demo;
pub mod devices;
pub mod export;
pub mod health;
pub mod klarna;
pub mod manager;
pub mod metrics;
pub use kassa_core::money;
pub mod outbox;
pub use kassa_core::payment;
pub mod reports;
pub mod returns;
#[cfg(feature = "ui")]
pub mod screen;
pub mod service;
pub mod staff;
pub mod store;
pub mod terminal;

/// Now, as the RFC 3339 UTC text every stored timestamp uses (sortable as text).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
