//! The one error type of kassa-drivers: what went wrong with a peripheral and what the caller
//! can do about it (retry later, fix the configuration, reprint from the journal).

use std::path::PathBuf;

/// Errors surfaced to the agent. Bad bytes from a device are never an error here: they become
/// `Scan::Text` or `Scan::Unknown`, `CardSwipe::Unreadable` or a `DeviceState`, because a device
/// talking nonsense must not stop the till.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The configuration cannot work on any device (e.g. 9 data bits); fix the TOML.
    #[error("invalid device configuration: {0}")]
    InvalidConfig(String),
    /// No port matches the configured path or USB vid/pid right now; the port thread keeps trying.
    #[error("no serial port matches {0}")]
    NotFound(String),
    /// Opening the port failed (missing, busy, permissions); the port thread keeps trying.
    #[error("cannot open {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// The device is unplugged or its port failed; the job was not done and may be retried
    /// (a receipt must be reprinted from the journal).
    #[error("device disconnected: {0}")]
    Disconnected(String),
    /// The printer reports no paper; the receipt was not printed.
    #[error("printer is out of paper")]
    PaperOut,
    /// The printer reports its cover open; the receipt was not printed.
    #[error("printer cover is open")]
    CoverOpen,
    /// The printer is offline for another reason (error state, feed button held).
    #[error("printer is offline")]
    Offline,
    /// Data that the protocol cannot carry (e.g. a QR payload over 7089 bytes).
    #[error("cannot encode for the device: {0}")]
    Encode(String),
    /// The device's thread has stopped (the handle outlived a shutdown); reopen the device.
    #[error("device thread has stopped")]
    Stopped,
}
