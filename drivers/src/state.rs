//! The state of one peripheral as the agent and the UI see it, published by the device's port
//! thread through a `tokio::sync::watch` channel.

use std::time::SystemTime;

/// What a device is doing now. Transitions come from the port thread only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceState {
    /// The port is open and the device answers (or, for devices that never talk, accepts bytes).
    Connected,
    /// The port is missing or failed; the port thread is retrying with a back-off.
    Disconnected { since: SystemTime, reason: String },
    /// Printer: no paper. Receipts are refused until it is refilled.
    PaperOut,
    /// Printer: cover open. Receipts are refused until it is closed.
    CoverOpen,
    /// Printer: offline for another reason (error, feed button held), or not answering status.
    Offline,
}

impl DeviceState {
    pub(crate) fn disconnected(reason: impl Into<String>) -> Self {
        DeviceState::Disconnected {
            since: SystemTime::now(),
            reason: reason.into(),
        }
    }

    /// True if the device can do its job right now.
    pub fn is_ready(&self) -> bool {
        matches!(self, DeviceState::Connected)
    }

    /// Same kind of state, ignoring when and why it was disconnected (so a retry that fails for
    /// the same reason does not wake every watcher).
    pub fn same_kind(&self, other: &DeviceState) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}
