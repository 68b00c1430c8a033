//! Where everything lives under `--root`, and the small persisted state (anti-rollback floor, bad
//! seqs, trial) that must survive crashes (every write goes through `fsutil::atomic_write`) and
//! the loss of a file or directory (the floors are kept in two places, see [`UpdateState::load`]).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;

/// While this file exists (relative to `--root`), the agent has a sale or payment open and no
/// version switch may happen. The agent creates it when a sale opens and removes it when the sale
/// or payment is finished; the updater only ever reads it.
pub const BUSY_FILE: &str = "run/kassa/busy";

/// Paths of the updater below a root directory (`/` on a terminal, a temp dir in tests).
#[derive(Debug, Clone)]
pub struct Layout {
    /// The root every other path is below.
    pub root: PathBuf,
}

impl Layout {
    /// Layout below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }
    /// Initial trust root shipped in the .deb.
    pub fn etc_root(&self) -> PathBuf {
        self.root.join("etc/kassa/root.json")
    }
    /// Updater configuration.
    pub fn config(&self) -> PathBuf {
        self.root.join("etc/kassa/update.toml")
    }
    /// Updater state directory (mode 0750, root only). Deliberately outside `/var/lib/kassa`: systemd
    /// hands `StateDirectory=kassa` to the agent user recursively, and the agent must not be able to
    /// lower its own anti-rollback floor.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("var/lib/kassa-update")
    }
    /// The currently trusted root (after rotations).
    pub fn trusted_root(&self) -> PathBuf {
        self.state_dir().join("root.json")
    }
    /// Persisted [`UpdateState`].
    pub fn state_file(&self) -> PathBuf {
        self.state_dir().join("state.json")
    }
    /// The second copy of the trusted root and the floors. On another tree than the state
    /// directory (root-owned too, out of the agent's reach), so that deleting one file or one
    /// directory never lowers a floor or brings back a revoked key.
    pub fn mirror_dir(&self) -> PathBuf {
        self.root.join("opt/kassa/update-trust")
    }
    /// The second copy of [`Layout::trusted_root`].
    pub fn mirror_root(&self) -> PathBuf {
        self.mirror_dir().join("root.json")
    }
    /// The second copy of [`Layout::state_file`].
    pub fn mirror_state_file(&self) -> PathBuf {
        self.mirror_dir().join("state.json")
    }
    /// Persisted [`Trial`] while a new version is on trial.
    pub fn trial_file(&self) -> PathBuf {
        self.state_dir().join("trial.json")
    }
    /// The updater lock.
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir().join("lock")
    }
    /// Private copies of bundles and partial downloads.
    pub fn staging(&self) -> PathBuf {
        self.state_dir().join("staging")
    }
    /// A download in progress, kept between runs so the next one resumes it.
    pub fn partial_download(&self) -> PathBuf {
        self.staging().join("download.part")
    }
    /// Database snapshots taken before irreversible migrations, one directory per seq.
    pub fn snapshots(&self) -> PathBuf {
        self.state_dir().join("db-snapshots")
    }
    /// The agent's database.
    pub fn database(&self) -> PathBuf {
        self.root.join("var/lib/kassa/kassa.db")
    }
    /// Installed versions, one directory per seq.
    pub fn versions(&self) -> PathBuf {
        self.root.join("opt/kassa/versions")
    }
    /// Directory of version `seq`.
    pub fn version_dir(&self, seq: u64) -> PathBuf {
        self.versions().join(seq.to_string())
    }
    /// The symlink the service runs from.
    pub fn current(&self) -> PathBuf {
        self.root.join("opt/kassa/current")
    }
    /// See [`BUSY_FILE`].
    pub fn busy(&self) -> PathBuf {
        self.root.join(BUSY_FILE)
    }

    /// The seq `current` points at, if any. A link we did not write (unparsable target) is an error,
    /// not a guess.
    pub fn current_seq(&self) -> Result<Option<u64>> {
        let link = self.current();
        let target = match fs::read_link(&link) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&link, e)),
        };
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.parse().map(Some).map_err(|_| {
            Error::State(format!(
                "{} points at {}, not at a version directory",
                link.display(),
                target.display()
            ))
        })
    }

    /// The highest seq installed here (a version directory or the `current` link), if any.
    pub fn highest_installed(&self) -> Result<Option<u64>> {
        let dirs = fsutil::list_dir(&self.versions())?;
        let named = dirs
            .iter()
            .filter_map(|p| p.file_name()?.to_str()?.parse::<u64>().ok());
        Ok(named.chain(self.current_seq()?).max())
    }
}

/// What this terminal remembers between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateState {
    /// Highest seq ever committed here: anything at or below it is a downgrade.
    pub highest_seq: u64,
    /// Highest epoch ever committed here: the security floor.
    pub epoch: u64,
    /// Seqs that failed here and are never retried.
    pub bad_seqs: BTreeSet<u64>,
    /// Version of the newest channel document accepted.
    pub channel_version: u64,
    /// Latest wall-clock time seen (unix seconds), to detect a clock stepped backwards.
    pub last_seen: u64,
    /// The version kept for rollback.
    pub previous_seq: Option<u64>,
    /// Last noteworthy event (rollback, refusal), shown by `status`.
    pub last_event: Option<String>,
    /// Version of the trust root these floors were last brought in line with: a newer root's
    /// floor reset is applied once, when this falls behind it (see `FloorReset`).
    pub root_version: u64,
    /// Counts saves, so that of two copies the one written last wins (a crash can fall between
    /// the two writes; a reset may lower a floor, so "the higher floor" would be wrong).
    pub generation: u64,
}

impl UpdateState {
    /// Loads the state from whichever of its two copies was written last; one missing or
    /// unreadable copy is ignored (the next save writes it again). With both gone, a terminal
    /// that never ran a signed update starts from the defaults, but one that has installed a
    /// version above the .deb's seq 0 refuses: its floors cannot be known.
    pub fn load(layout: &Layout) -> Result<UpdateState> {
        Ok(UpdateState::load_copies(layout)?.0)
    }

    /// As [`UpdateState::load`], and whether both copies hold that same state (when not, the
    /// caller should save it to put them back in step).
    pub fn load_copies(layout: &Layout) -> Result<(UpdateState, bool)> {
        let primary = read_state(&layout.state_file());
        let mirror = read_state(&layout.mirror_state_file());
        match (primary, mirror) {
            (Ok(Some(a)), Ok(Some(b))) => {
                let in_step = a == b;
                Ok((if b.generation > a.generation { b } else { a }, in_step))
            }
            (Ok(Some(s)), _) | (_, Ok(Some(s))) => Ok((s, false)),
            (Ok(None), Ok(None)) => match layout.highest_installed()? {
                Some(seq) if seq > 0 => Err(Error::StateLost(format!(
                    "version {seq} is installed, but its anti-rollback floors are in neither {} nor {}; \
                     restore either file from a backup (each holds the floors and the trusted root's version)",
                    layout.state_file().display(),
                    layout.mirror_state_file().display()
                ))),
                _ => Ok((UpdateState::default(), false)),
            },
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// Persists the state atomically to both copies, the state directory's first.
    pub fn save(&mut self, layout: &Layout) -> Result<()> {
        self.generation = self.generation.saturating_add(1);
        save_json(&layout.state_file(), self)?;
        save_json(&layout.mirror_state_file(), self)
    }
}

/// One copy of the state; `None` when it does not exist.
fn read_state(path: &Path) -> Result<Option<UpdateState>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::malformed("state file", format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Who decides whether a trial passes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TrialJudge {
    /// The installing `kassa-update` runs the health command while holding the lock; if a later run
    /// gets the lock and finds the trial, that installer died and the trial failed.
    Installer,
    /// An outside health check calls `kassa-update commit` before the deadline.
    External,
}

/// A version on trial: switched to, not yet known to be healthy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Trial {
    /// The seq on trial.
    pub seq: u64,
    /// Its version string, for reports.
    pub version: String,
    /// Its epoch, committed with it.
    pub epoch: u64,
    /// The seq to go back to (`None` on a first install).
    pub previous_seq: Option<u64>,
    /// Unix seconds after which an uncommitted trial has failed.
    pub deadline: u64,
    /// Boot id when the trial began; a different boot id means the machine rebooted mid-trial.
    pub boot_id: String,
    /// A database snapshot was taken before switching and must be restored on rollback.
    pub db_snapshot: bool,
    /// Who judges the trial.
    pub judge: TrialJudge,
    /// Set once a rollback has begun, so a rollback interrupted by a crash is finished, not forgotten.
    pub failed: Option<String>,
    /// Set once the health check passed, before committing: a commit interrupted by a crash is
    /// then finished by the next run, never mistaken for a trial that failed.
    #[serde(default)]
    pub health_passed: bool,
}

impl Trial {
    /// The trial in progress, if any.
    pub fn load(layout: &Layout) -> Result<Option<Trial>> {
        let path = layout.trial_file();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::malformed("trial file", e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Persists the trial atomically.
    pub fn save(&self, layout: &Layout) -> Result<()> {
        save_json(&layout.trial_file(), self)
    }

    /// Ends the trial record durably.
    pub fn clear(layout: &Layout) -> Result<()> {
        let path = layout.trial_file();
        fsutil::remove_all(&path)?;
        fsutil::fsync_dir(fsutil::parent(&path)?)
    }
}

fn save_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::malformed("state", e))?;
    bytes.push(b'\n');
    fsutil::ensure_dir(fsutil::parent(path)?, 0o750)?;
    fsutil::atomic_write(path, &bytes, 0o640)
}

/// The kernel's id of this boot, or `unknown` where there is none.
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
