//! kassa-packaging: signed update bundles for kassa terminals and the logic of `kassa-update`
//! (verify, stage, switch, health-check, commit or roll back). See ARCHITECTURE.md for invariants.

pub mod bundle;
pub mod channel;
pub mod config;
pub mod download;
pub mod envelope;
pub mod error;
pub mod fsutil;
pub mod health;
pub mod install;
pub mod keys;
pub mod manifest;
pub mod state;
pub mod trust;
pub mod unpack;

pub use error::{Error, Result};
