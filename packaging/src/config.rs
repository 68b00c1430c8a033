//! The updater's configuration, `<root>/etc/kassa/update.toml` (a conffile of the .deb): the
//! terminal's identity, where updates come from, the health check, and the limits.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::Target;

/// Updater configuration; every field has a default so an empty file is valid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Product this terminal runs.
    pub product: String,
    /// Channel this terminal follows.
    pub channel: String,
    /// Architecture; defaults to the one this updater was built for.
    pub arch: String,
    /// Bundle URL used by `install` without an argument (the timer).
    pub url: Option<String>,
    /// Channel document URL checked by online installs.
    pub channel_url: Option<String>,
    /// Health check run after switching; `{root}` is replaced by `--root`. Empty: leave the trial
    /// for an outside health check to `kassa-update commit`.
    pub health_cmd: String,
    /// How long the health check may take.
    pub health_timeout_secs: u64,
    /// Deadline for an outside health check to commit (when `health_cmd` is empty).
    pub trial_secs: u64,
    /// Command that restarts the agent after a switch (empty: none, as in tests).
    pub restart_cmd: String,
    /// How long to wait for an open sale or payment to finish before giving up for this run.
    pub busy_timeout_secs: u64,
    /// Largest bundle accepted.
    pub max_bundle_bytes: u64,
    /// Largest declared unpacked size accepted.
    pub max_unpacked_bytes: u64,
    /// Bytes staging may write in one run (download plus unpack); unset = only the real disk.
    pub staging_quota_bytes: Option<u64>,
    /// Network timeout for one download.
    pub download_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            product: "kassa".into(),
            channel: "stable".into(),
            arch: std::env::consts::ARCH.into(),
            url: None,
            channel_url: None,
            health_cmd: "{root}/opt/kassa/current/bin/kassa selftest".into(),
            health_timeout_secs: 120,
            trial_secs: 600,
            restart_cmd: "systemctl restart kassa.service".into(),
            busy_timeout_secs: 300,
            max_bundle_bytes: 512 * 1024 * 1024,
            max_unpacked_bytes: 2 * 1024 * 1024 * 1024,
            staging_quota_bytes: None,
            download_timeout_secs: 600,
        }
    }
}

impl Config {
    /// Loads `path`, or the defaults when it does not exist.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The identity bundles must match.
    pub fn target(&self) -> Target {
        Target {
            product: self.product.clone(),
            channel: self.channel.clone(),
            arch: self.arch.clone(),
        }
    }
}
