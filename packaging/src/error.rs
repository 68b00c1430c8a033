//! The one error type of the kassa-packaging library. Each variant says why an update was refused
//! or failed in words an operator can act on; the binary adds context with `anyhow` at its edge.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an update operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed for a reason other than lack of space.
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Staging ran out of room; the running version is left untouched.
    #[error(
        "no space left while staging {0} (disk full or staging quota reached); the running version is untouched"
    )]
    DiskFull(PathBuf),
    /// A document or archive could not be read as the format it claims to be.
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// Not enough valid signatures from distinct trusted keys.
    #[error("signature check failed for {what}: {reason}")]
    Signature { what: &'static str, reason: String },
    /// A new trust root does not chain from the current one.
    #[error("trust root rotation refused: {0}")]
    Rotation(String),
    /// The bundle was made for another product, channel or architecture.
    #[error("bundle is for {field} {got:?}, this terminal is {want:?}")]
    WrongTarget {
        field: &'static str,
        got: String,
        want: String,
    },
    /// The bundle is older than (or as old as) what this terminal already ran, or below the epoch floor.
    #[error("downgrade refused: {0}")]
    Downgrade(String),
    /// This sequence number failed here before and is never retried.
    #[error("seq {0} failed its health check on this terminal before and is never retried")]
    BadSeq(u64),
    /// The signed channel document is expired, older than one seen before, or does not allow this bundle.
    #[error("channel document refused: {0}")]
    Channel(String),
    /// The wall clock is earlier than a time this terminal already saw, so expiry checks cannot be trusted.
    #[error(
        "the clock went backwards: this terminal already saw time {last_seen}, the clock now says {now}; fix the clock (NTP) and retry"
    )]
    ClockWentBackwards { last_seen: u64, now: u64 },
    /// The channel document was signed at a time this terminal's clock has not reached yet: the
    /// clock is behind (or the publisher's ahead), which is not the same as a clock stepped back.
    #[error(
        "the channel document is dated in the future (issued at {issued_at}, this terminal's clock says {now}); check the clock (NTP) and retry"
    )]
    ChannelFromTheFuture { issued_at: u64, now: u64 },
    /// Every copy of the floors, or of the newest trusted root, is gone while versions are
    /// installed. Acting would fall back to lower floors or to a root whose revoked keys sign again.
    #[error(
        "the updater's trust state is gone: {0}; kassa-update refuses to act until it is restored"
    )]
    StateLost(String),
    /// The payload bytes or files do not match what the signed manifest declares.
    #[error("payload does not match the signed manifest: {0}")]
    PayloadMismatch(String),
    /// An archive entry that could escape the version directory or smuggle special files.
    #[error("archive entry {path:?} rejected: {reason}")]
    UnsafeEntry { path: String, reason: String },
    /// A size cap was hit (download, manifest, unpacked data).
    #[error("size limit exceeded: {0}")]
    TooLarge(String),
    /// The bundle or channel document could not be fetched.
    #[error("download failed: {0}")]
    Download(String),
    /// A sale or payment stayed open; the verified version stays staged for the next run.
    #[error(
        "a sale or payment stayed open for {0:?}; version staged, it will be switched on the next run"
    )]
    Busy(Duration),
    /// The new version did not report healthy; it was rolled back and marked bad.
    #[error(
        "seq {seq} failed its health check ({reason}); rolled back to the previous version and marked bad"
    )]
    HealthCheckFailed { seq: u64, reason: String },
    /// A key file is unreadable or malformed.
    #[error("key file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    /// The updater configuration is invalid.
    #[error("config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    /// Another updater holds the lock and we were asked not to wait.
    #[error("another kassa-update is running (lock {0} is held)")]
    Locked(PathBuf),
    /// The requested state change is not possible right now.
    #[error("{0}")]
    State(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns, turning ENOSPC into [`Error::DiskFull`] so
    /// callers and tests can tell "disk full" from other failures.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        if source.kind() == io::ErrorKind::StorageFull
            || source.raw_os_error() == Some(libc::ENOSPC)
        {
            Error::DiskFull(path)
        } else {
            Error::Io { path, source }
        }
    }

    /// A closure for `map_err` that attaches `path`.
    pub fn at(path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        move |e| Error::io(path, e)
    }

    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Error {
        Error::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}
