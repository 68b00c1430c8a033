//! The install flow and the trial that follows it: fetch into private staging, verify, unpack to
//! `versions/<seq>.tmp`, rename, wait for no open sale, switch `current`, health-check, then commit
//! or roll back. Every step is ordered so that a crash at any point leaves the old or the new
//! version running, and the next run (which always starts with [`Updater::recover`]) tidies up.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::bundle::{self, VerifiedBundle};
use crate::channel::{self, CLOCK_SKEW_SECS};
use crate::config::Config;
use crate::envelope::MAX_DOCUMENT_BYTES;
use crate::error::{Error, Result};
use crate::fsutil::{self, QuotaWriter, StagingQuota, UpdateLock};
use crate::health;
use crate::manifest::Manifest;
use crate::state::{self, Layout, Trial, TrialJudge, UpdateState};
use crate::trust::TrustRoot;
use crate::unpack;

/// Hidden test hook: the stage (`download`, `unpack`, `fsync`, `switch`, `commit`) at which the
/// process pauses, so a test can `kill -9` it exactly there (case 15) or hold the lock (case 18).
pub const PAUSE_AT_ENV: &str = "KASSA_UPDATE_PAUSE_AT";
/// Hidden test hook: directory where the paused process writes a marker file named after the
/// stage; it resumes when the marker is deleted.
pub const PAUSE_DIR_ENV: &str = "KASSA_UPDATE_PAUSE_DIR";

static PAUSED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Pauses here if the test hook asks for this stage (once per process).
fn pause_point(stage: &str) {
    if std::env::var(PAUSE_AT_ENV).as_deref() != Ok(stage) {
        return;
    }
    let Some(dir) = std::env::var_os(PAUSE_DIR_ENV) else {
        return;
    };
    if let Ok(mut done) = PAUSED.lock()
        && !done.insert(stage.to_string())
    {
        return;
    }
    let marker = Path::new(&dir).join(stage);
    if fs::write(&marker, std::process::id().to_string()).is_err() {
        return;
    }
    while marker.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where a bundle or channel document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local file (USB stick, test).
    File(PathBuf),
    /// An http(s) URL.
    Url(String),
}

impl Source {
    /// `http://` and `https://` are URLs, anything else is a path.
    pub fn parse(s: &str) -> Source {
        if s.starts_with("http://") || s.starts_with("https://") {
            Source::Url(s.to_string())
        } else {
            Source::File(PathBuf::from(s))
        }
    }
}

/// What to install.
#[derive(Debug, Clone)]
pub struct Request {
    /// The bundle.
    pub bundle: Source,
    /// The channel document: required for online installs, absent for offline (USB) ones.
    pub channel: Option<Source>,
    /// Wait for a running updater instead of failing with [`Error::Locked`].
    pub wait_for_lock: bool,
}

/// How an install ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Switched, healthy and committed.
    Installed { seq: u64, version: String },
    /// Switched; an outside health check must `commit` before `deadline` (unix seconds).
    OnTrial {
        seq: u64,
        version: String,
        deadline: u64,
    },
}

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Seq `current` points at.
    pub current_seq: Option<u64>,
    /// Seq kept for rollback.
    pub previous_seq: Option<u64>,
    /// Anti-rollback floor.
    pub highest_seq: u64,
    /// Security epoch floor.
    pub epoch: u64,
    /// Version of the trusted root.
    pub root_version: u64,
    /// Seqs never retried.
    pub bad_seqs: Vec<u64>,
    /// Version of the last accepted channel document.
    pub channel_version: u64,
    /// Trial in progress, if any.
    pub trial: Option<Trial>,
    /// A sale or payment is open now.
    pub busy: bool,
    /// The clock is behind a time this terminal already saw.
    pub clock_went_backwards: bool,
    /// Last noteworthy event.
    pub last_event: Option<String>,
    /// What this run's recovery did, if anything.
    pub recovered: Option<String>,
}

/// The updater for one root directory.
#[derive(Debug, Clone)]
pub struct Updater {
    /// Paths.
    pub layout: Layout,
    /// Configuration.
    pub config: Config,
}

/// Wall clock in unix seconds (0 if the clock is before 1970, which the clock check then reports).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Updater {
    /// The updater for `root` with its `etc/kassa/update.toml` (or defaults).
    pub fn open(root: impl Into<PathBuf>) -> Result<Updater> {
        let layout = Layout::new(root);
        let config = Config::load(&layout.config())?;
        Ok(Updater { layout, config })
    }

    fn lock(&self, wait: bool) -> Result<UpdateLock> {
        let path = self.layout.lock_file();
        UpdateLock::acquire(&path, wait, || {
            eprintln!(
                "kassa-update: waiting for another update to finish (lock {})",
                path.display()
            );
        })
    }

    /// The trusted root: the newest of its two persisted copies (after rotations), else the one
    /// shipped in `/etc/kassa`. Reads only; see [`Updater::newest_root`].
    pub fn trust_root(&self) -> Result<TrustRoot> {
        self.newest_root(&UpdateState::load(&self.layout)?)
    }

    /// The newest root among the state directory's copy and the mirror's, else the shipped one.
    /// Never older than the root the floors were last brought in line with: if every copy of that
    /// root is gone, falling back to an older one would let the keys it revoked sign again.
    fn newest_root(&self, state: &UpdateState) -> Result<TrustRoot> {
        let mut newest: Option<TrustRoot> = None;
        let mut unreadable = None;
        for path in [self.layout.trusted_root(), self.layout.mirror_root()] {
            let root = fsutil::read_capped(&path, MAX_DOCUMENT_BYTES, "trusted root")
                .and_then(|bytes| TrustRoot::bootstrap(&bytes));
            match root {
                Ok(root) => {
                    if newest
                        .as_ref()
                        .is_none_or(|n| root.body.version > n.body.version)
                    {
                        newest = Some(root);
                    }
                }
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => unreadable = Some(e),
            }
        }
        let root = match (newest, unreadable) {
            (Some(root), _) => root,
            (None, Some(e)) => return Err(e),
            (None, None) => {
                let shipped = self.layout.etc_root();
                TrustRoot::bootstrap(&fsutil::read_capped(
                    &shipped,
                    MAX_DOCUMENT_BYTES,
                    "root.json",
                )?)?
            }
        };
        if root.body.version < state.root_version {
            return Err(Error::StateLost(format!(
                "this terminal trusts root version {}, but only version {} is left; restore \
                 root.json of version {} to {} or {} from a backup",
                state.root_version,
                root.body.version,
                state.root_version,
                self.layout.trusted_root().display(),
                self.layout.mirror_root().display()
            )));
        }
        Ok(root)
    }

    /// Writes `root` to both of its places where it is missing or differs (older or unreadable).
    fn persist_root(&self, root: &TrustRoot) -> Result<()> {
        for path in [self.layout.trusted_root(), self.layout.mirror_root()] {
            if fs::read(&path).is_ok_and(|b| b == root.bytes) {
                continue;
            }
            fsutil::ensure_dir(fsutil::parent(&path)?, 0o750)?;
            fsutil::atomic_write(&path, &root.bytes, 0o640)?;
        }
        Ok(())
    }

    /// Under the lock: the trusted root and the floors, with both copies of each put back in step
    /// (a deleted copy is written again) and the floor reset of a root not yet applied, applied.
    fn trust(&self) -> Result<(TrustRoot, UpdateState)> {
        let (mut state, in_step) = UpdateState::load_copies(&self.layout)?;
        let root = self.newest_root(&state)?;
        self.persist_root(&root)?;
        if state.root_version < root.body.version {
            self.accept_root(&root, &mut state)?;
        } else if !in_step {
            state.save(&self.layout)?;
        }
        Ok((root, state))
    }

    /// Brings the floors in line with a newly accepted root: once per root version, lowers every
    /// floor above the root's [`FloorReset`](crate::trust::FloorReset). A version installed above
    /// the reset was signed by keys the root no longer vouches for: its seq is never installed
    /// again, is no floor and no rollback target (it keeps running until the next release).
    fn accept_root(&self, root: &TrustRoot, state: &mut UpdateState) -> Result<()> {
        let version = root.body.version;
        if let Some(reset) = root.body.floor_reset {
            let mut lowered = Vec::new();
            for (name, floor, to) in [
                ("seq", &mut state.highest_seq, reset.seq),
                ("epoch", &mut state.epoch, reset.epoch),
                (
                    "channel version",
                    &mut state.channel_version,
                    reset.channel_version,
                ),
            ] {
                if *floor > to {
                    lowered.push(format!("{name} {floor} to {to}"));
                    *floor = to;
                }
            }
            let above = [self.layout.current_seq()?, state.previous_seq];
            for seq in above.into_iter().flatten().filter(|s| *s > reset.seq) {
                state.bad_seqs.insert(seq);
            }
            if state.previous_seq.is_some_and(|p| p > reset.seq) {
                state.previous_seq = None;
            }
            if !lowered.is_empty() {
                state.last_event = Some(format!(
                    "trust root version {version} lowered the floors it vouches for: {}",
                    lowered.join(", ")
                ));
            }
        }
        state.root_version = version;
        state.save(&self.layout)
    }

    /// Replaces the trusted root with `new`, which must chain from it (N → N+1, both thresholds),
    /// and applies its floor reset, if any.
    pub fn rotate_root(&self, new: &[u8]) -> Result<TrustRoot> {
        let _lock = self.lock(true)?;
        let (root, mut state) = self.trust()?;
        let next = root.rotate(new)?;
        // The root goes to disk before the floors it resets: a crash in between leaves a root
        // newer than `root_version`, and the next run's `trust` applies the reset then.
        self.persist_root(&next)?;
        self.accept_root(&next, &mut state)?;
        Ok(next)
    }

    /// Verifies a bundle file against the trusted root and this terminal's identity, without
    /// touching any state (`kassa-update verify`).
    pub fn verify(&self, path: &Path) -> Result<VerifiedBundle> {
        let root = self.trust_root()?;
        let verified = bundle::verify_file(path, &root, self.config.max_bundle_bytes)?;
        verified.manifest.check_target(&self.config.target())?;
        Ok(verified)
    }

    /// Installs a bundle. Holds the lock throughout; errors are also recorded for `status`.
    pub fn install(&self, req: &Request) -> Result<Outcome> {
        let _lock = self.lock(req.wait_for_lock)?;
        let result = self.install_locked(req);
        if let Err(e) = &result {
            self.note(format!("install refused or failed: {e}"));
        }
        result
    }

    fn note(&self, event: String) {
        if let Ok(mut s) = UpdateState::load(&self.layout) {
            s.last_event = Some(event);
            let _ = s.save(&self.layout);
        }
    }

    fn install_locked(&self, req: &Request) -> Result<Outcome> {
        self.recover(false)?;
        if let Some(trial) = Trial::load(&self.layout)? {
            return Err(Error::State(format!(
                "seq {} is on trial until {}; commit or roll it back first",
                trial.seq, trial.deadline
            )));
        }
        let (root, mut state) = self.trust()?;
        let now = now();
        let mut latest_allowed = None;
        if let Some(ch) = &req.channel {
            let bytes = match ch {
                Source::File(p) => fsutil::read_capped(p, MAX_DOCUMENT_BYTES, "channel document")?,
                Source::Url(u) => crate::download::fetch_small(
                    u,
                    MAX_DOCUMENT_BYTES,
                    Duration::from_secs(self.config.download_timeout_secs),
                )?,
            };
            let body = channel::verify_channel(
                &root,
                &bytes,
                &self.config.target(),
                state.channel_version,
                state.last_seen,
                now,
            )?;
            state.channel_version = body.version;
            state.last_seen = state.last_seen.max(now);
            state.save(&self.layout)?;
            latest_allowed = Some(body.latest_seq);
        }

        let staging = self.layout.staging();
        fsutil::ensure_dir(&staging, 0o700)?;
        let mut quota = StagingQuota::new(self.config.staging_quota_bytes);
        let private = staging.join("bundle.kup");
        fsutil::remove_all(&private)?;
        match &req.bundle {
            Source::File(p) => {
                if let Err(e) = self.copy_private(p, &private, &mut quota) {
                    fsutil::remove_all(&private)?;
                    return Err(e);
                }
            }
            Source::Url(u) => {
                let part = self.layout.partial_download();
                crate::download::download_resumable(
                    u,
                    &part,
                    self.config.max_bundle_bytes,
                    Duration::from_secs(self.config.download_timeout_secs),
                    &mut quota,
                    &mut |_| pause_point("download"),
                )?;
                fs::rename(&part, &private).map_err(Error::at(&private))?;
                fsutil::remove_all(&crate::download::url_record(&part))?;
            }
        }
        // From here on only the private copy is read: replacing the original changes nothing.
        let staged = File::open(&private)
            .map_err(Error::at(&private))
            .and_then(|mut f| {
                self.verify_and_stage(&mut f, &root, &state, latest_allowed, &mut quota)
            });
        fsutil::remove_all(&private)?;
        let verified = staged?;

        state.last_seen = state.last_seen.max(now);
        state.save(&self.layout)?;
        self.wait_until_not_busy()?;
        self.switch_to(&verified.manifest)
    }

    fn copy_private(&self, src: &Path, dst: &Path, quota: &mut StagingQuota) -> Result<()> {
        let cap = self.config.max_bundle_bytes;
        let mut input = File::open(src).map_err(Error::at(src))?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dst)
            .map_err(Error::at(dst))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total: u64 = 0;
        loop {
            let n = input.read(&mut buf).map_err(Error::at(src))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > cap {
                return Err(Error::TooLarge(format!("bundle is over {cap} bytes")));
            }
            QuotaWriter {
                inner: &mut out,
                quota: &mut *quota,
            }
            .write_all(&buf[..n])
            .map_err(Error::at(dst))?;
            pause_point("download");
        }
        out.sync_all().map_err(Error::at(dst))
    }

    fn check_release_order(
        &self,
        m: &Manifest,
        state: &UpdateState,
        latest_allowed: Option<u64>,
    ) -> Result<()> {
        if state.bad_seqs.contains(&m.seq) {
            return Err(Error::BadSeq(m.seq));
        }
        // The running version is a floor too, unless a root's floor reset disowned it (then it
        // is in `bad_seqs`, and the fast-forward it came from must not stay a floor).
        let running = self
            .layout
            .current_seq()?
            .filter(|s| !state.bad_seqs.contains(s));
        let floor = state.highest_seq.max(running.unwrap_or(0));
        if m.seq <= floor {
            return Err(Error::Downgrade(format!(
                "seq {} is not newer than seq {floor} already installed",
                m.seq
            )));
        }
        if m.epoch < state.epoch {
            return Err(Error::Downgrade(format!(
                "epoch {} is below this terminal's security floor {}",
                m.epoch, state.epoch
            )));
        }
        if let Some(latest) = latest_allowed
            && m.seq > latest
        {
            return Err(Error::Channel(format!(
                "seq {} is above the channel's latest seq {latest}",
                m.seq
            )));
        }
        if m.payload.unpacked_size > self.config.max_unpacked_bytes {
            return Err(Error::TooLarge(format!(
                "declared unpacked size {} over the cap {}",
                m.payload.unpacked_size, self.config.max_unpacked_bytes
            )));
        }
        Ok(())
    }

    fn verify_and_stage(
        &self,
        file: &mut File,
        root: &TrustRoot,
        state: &UpdateState,
        latest_allowed: Option<u64>,
        quota: &mut StagingQuota,
    ) -> Result<VerifiedBundle> {
        let opened = bundle::open(file, self.config.max_bundle_bytes)?;
        let verified = bundle::verify(file, opened, root)?;
        let m = &verified.manifest;
        m.check_target(&self.config.target())?;
        self.check_release_order(m, state, latest_allowed)?;

        let versions = self.layout.versions();
        fsutil::ensure_dir(&versions, 0o755)?;
        let dir = self.layout.version_dir(m.seq);
        if dir.exists() {
            // Staged by an earlier run that found the shop busy: reuse it only if intact.
            if unpack::check_staged(&dir, &verified).is_ok() {
                return Ok(verified);
            }
            fsutil::remove_all(&dir)?;
        }
        let tmp = versions.join(format!("{}.tmp", m.seq));
        fsutil::remove_all(&tmp)?;
        let staged = unpack::unpack(file, &verified, &tmp, quota)
            .inspect(|()| pause_point("unpack"))
            .and_then(|()| fsutil::fsync_tree_dirs(&tmp));
        if let Err(e) = staged {
            fsutil::remove_all(&tmp)?;
            return Err(e);
        }
        pause_point("fsync");
        fs::rename(&tmp, &dir).map_err(Error::at(&dir))?;
        fsutil::fsync_dir(&versions)?;
        Ok(verified)
    }

    fn wait_until_not_busy(&self) -> Result<()> {
        let busy = self.layout.busy();
        let timeout = Duration::from_secs(self.config.busy_timeout_secs);
        let deadline = Instant::now() + timeout;
        while busy.exists() {
            if Instant::now() >= deadline {
                return Err(Error::Busy(timeout));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn switch_to(&self, m: &Manifest) -> Result<Outcome> {
        let previous_seq = self.layout.current_seq()?;
        let db_snapshot = m.irreversible_migration && self.snapshot_db(m.seq)?;
        let judge = if self.config.health_cmd.trim().is_empty() {
            TrialJudge::External
        } else {
            TrialJudge::Installer
        };
        let window = match judge {
            TrialJudge::Installer => self.config.health_timeout_secs.saturating_add(60),
            TrialJudge::External => self.config.trial_secs,
        };
        let mut trial = Trial {
            seq: m.seq,
            version: m.version.clone(),
            epoch: m.epoch,
            previous_seq,
            deadline: now().saturating_add(window),
            boot_id: state::boot_id(),
            db_snapshot,
            judge,
            failed: None,
            health_passed: false,
        };
        // The trial is recorded before the switch: whoever finds `current` on an uncommitted seq
        // also finds the record that says how to go back.
        trial.save(&self.layout)?;
        pause_point("switch");
        fsutil::switch_symlink(
            &self.layout.current(),
            &Path::new("versions").join(m.seq.to_string()),
        )?;
        if let Err(reason) = self.restart_agent() {
            return Err(self.fail_trial(trial, reason));
        }
        match judge {
            TrialJudge::External => Ok(Outcome::OnTrial {
                seq: trial.seq,
                version: trial.version,
                deadline: trial.deadline,
            }),
            TrialJudge::Installer => {
                match health::run(
                    &self.config.health_cmd,
                    &self.layout.root,
                    Duration::from_secs(self.config.health_timeout_secs),
                ) {
                    Ok(()) => {
                        // The verdict is durable before the commit, so a crash in between is
                        // finished as a commit by the next run, not judged a failed trial.
                        trial.health_passed = true;
                        trial.save(&self.layout)?;
                        pause_point("commit");
                        self.commit_trial(&trial)?;
                        Ok(Outcome::Installed {
                            seq: trial.seq,
                            version: trial.version,
                        })
                    }
                    Err(reason) => Err(self.fail_trial(trial, reason)),
                }
            }
        }
    }

    fn fail_trial(&self, trial: Trial, reason: String) -> Error {
        let seq = trial.seq;
        match self.rollback_trial(trial, &reason) {
            Ok(()) => Error::HealthCheckFailed { seq, reason },
            Err(e) => Error::State(format!(
                "seq {seq} failed ({reason}) and rolling back failed too: {e}"
            )),
        }
    }

    fn restart_agent(&self) -> std::result::Result<(), String> {
        if self.config.restart_cmd.trim().is_empty() {
            return Ok(());
        }
        health::run_command(
            &self.config.restart_cmd,
            &self.layout.root,
            Duration::from_secs(120),
            "restart",
        )
    }

    fn snapshot_db(&self, seq: u64) -> Result<bool> {
        let dir = self.layout.snapshots().join(seq.to_string());
        fsutil::remove_all(&dir)?;
        fsutil::ensure_dir(&dir, 0o700)?;
        let db = self.layout.database();
        let mut any = false;
        for suffix in ["", "-wal"] {
            let from = PathBuf::from(format!("{}{suffix}", db.display()));
            any |= fsutil::copy_durable(&from, &dir.join(format!("kassa.db{suffix}")))?;
        }
        Ok(any)
    }

    fn restore_db(&self, seq: u64) -> Result<()> {
        let dir = self.layout.snapshots().join(seq.to_string());
        let db = self.layout.database();
        for suffix in ["", "-wal"] {
            let live = PathBuf::from(format!("{}{suffix}", db.display()));
            // A WAL or shared-memory file written by the newer version must not be replayed
            // over the restored database.
            if !fsutil::copy_durable(&dir.join(format!("kassa.db{suffix}")), &live)? {
                fsutil::remove_all(&live)?;
            }
        }
        fsutil::remove_all(&PathBuf::from(format!("{}-shm", db.display())))?;
        fsutil::fsync_dir(fsutil::parent(&db)?)
    }

    fn commit_trial(&self, trial: &Trial) -> Result<()> {
        let mut state = UpdateState::load(&self.layout)?;
        state.highest_seq = state.highest_seq.max(trial.seq);
        state.epoch = state.epoch.max(trial.epoch);
        // A version a floor reset disowned is no rollback target: keep the one before it.
        let usable = |s: &u64| *s != trial.seq && !state.bad_seqs.contains(s);
        state.previous_seq = trial
            .previous_seq
            .filter(usable)
            .or(state.previous_seq.filter(usable));
        state.last_seen = state.last_seen.max(now());
        state.last_event = Some(format!("seq {} ({}) committed", trial.seq, trial.version));
        let previous = state.previous_seq;
        state.save(&self.layout)?;
        Trial::clear(&self.layout)?;
        self.collect_garbage(trial.seq, previous)
    }

    /// Keeps the current and the previous version (and the snapshot taken before the current one);
    /// removes every other version directory and snapshot.
    fn collect_garbage(&self, current: u64, previous: Option<u64>) -> Result<()> {
        for path in fsutil::list_dir(&self.layout.versions())? {
            let keep = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n == current || Some(n) == previous);
            if !keep {
                fsutil::remove_all(&path)?;
            }
        }
        for path in fsutil::list_dir(&self.layout.snapshots())? {
            if path.file_name().and_then(|n| n.to_str()) != Some(current.to_string().as_str()) {
                fsutil::remove_all(&path)?;
            }
        }
        Ok(())
    }

    /// Switches back from a failed trial, restores the database snapshot, marks the seq bad.
    /// Idempotent: a crash half-way is finished by the next run thanks to `trial.failed`.
    fn rollback_trial(&self, mut trial: Trial, reason: &str) -> Result<()> {
        if trial.failed.is_none() {
            trial.failed = Some(reason.to_string());
            trial.save(&self.layout)?;
        }
        match trial.previous_seq {
            Some(prev) => fsutil::switch_symlink(
                &self.layout.current(),
                &Path::new("versions").join(prev.to_string()),
            )?,
            None => {
                let current = self.layout.current();
                fsutil::remove_all(&current)?;
                fsutil::fsync_dir(fsutil::parent(&current)?)?;
            }
        }
        if trial.db_snapshot {
            self.restore_db(trial.seq)?;
        }
        let mut state = UpdateState::load(&self.layout)?;
        state.bad_seqs.insert(trial.seq);
        state.last_event = Some(format!(
            "seq {} ({}) rolled back: {reason}",
            trial.seq, trial.version
        ));
        state.save(&self.layout)?;
        // Best effort: the old version is in place whether or not the restart command works.
        let _ = self.restart_agent();
        Trial::clear(&self.layout)?;
        fsutil::remove_all(&self.layout.version_dir(trial.seq))?;
        fsutil::remove_all(&self.layout.snapshots().join(trial.seq.to_string()))
    }

    /// Tidies up after whatever a previous run left: half-unpacked versions, a half-made link, the
    /// private bundle copy, and a trial that can no longer pass. Must run under the lock. `boot`
    /// says this run is the first since the machine started. Returns what it did, for the report.
    pub fn recover(&self, boot: bool) -> Result<Option<String>> {
        for path in fsutil::list_dir(&self.layout.versions())? {
            if path.extension().is_some_and(|e| e == "tmp") {
                fsutil::remove_all(&path)?;
            }
        }
        if let Some(opt) = self.layout.current().parent() {
            fsutil::remove_all(&opt.join(".current.new"))?;
        }
        // A partial download is kept on purpose, for the next run to resume, unless it can never
        // become a bundle: as large as the cap allows, or with no record of its URL.
        let part = self.layout.partial_download();
        let part_len = match fs::symlink_metadata(&part) {
            Ok(meta) => Some(meta.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&part, e)),
        };
        if part_len.is_some_and(|n| {
            n >= self.config.max_bundle_bytes || !crate::download::url_record(&part).exists()
        }) {
            crate::download::discard_partial(&part)?;
        }
        fsutil::remove_all(&self.layout.staging().join("bundle.kup"))?;
        let Some(trial) = Trial::load(&self.layout)? else {
            return Ok(None);
        };
        let state = UpdateState::load(&self.layout)?;
        let current = self.layout.current_seq()?;
        let seq = trial.seq;
        let fail = |reason: String| -> Result<Option<String>> {
            let msg = format!("seq {seq} rolled back: {reason}");
            self.rollback_trial(trial.clone(), &reason)?;
            Ok(Some(msg))
        };
        if let Some(reason) = trial.failed.clone() {
            return fail(reason);
        }
        if current != Some(seq) {
            Trial::clear(&self.layout)?;
            return Ok(Some(format!(
                "seq {seq} was staged but the switch never happened; still on {current:?}"
            )));
        }
        if state.highest_seq >= seq {
            self.commit_trial(&trial)?;
            return Ok(Some(format!("seq {seq} had been committed")));
        }
        if trial.health_passed {
            // Whatever happened since (a kill, a reboot), the version was judged healthy.
            self.commit_trial(&trial)?;
            return Ok(Some(format!(
                "seq {seq} passed its health check before the updater stopped; now committed"
            )));
        }
        if boot || trial.boot_id != state::boot_id() {
            return fail("the machine restarted before the trial was committed".into());
        }
        if trial.judge == TrialJudge::Installer {
            return fail("the installer stopped before the health check passed".into());
        }
        if now() > trial.deadline {
            return fail("not committed before the trial deadline".into());
        }
        Ok(Some(format!(
            "seq {seq} is on trial until {}",
            trial.deadline
        )))
    }

    /// `kassa-update check-trial`: recovery on its own (run by the timer and at boot).
    pub fn check_trial(&self, boot: bool) -> Result<Option<String>> {
        let _lock = self.lock(true)?;
        self.recover(boot)
    }

    /// `kassa-update commit`: an outside health check declares the version on trial healthy.
    pub fn commit(&self) -> Result<u64> {
        let _lock = self.lock(true)?;
        if let Some(report) = self.recover(false)?
            && Trial::load(&self.layout)?.is_none()
        {
            return Err(Error::State(format!("nothing to commit: {report}")));
        }
        let mut trial =
            Trial::load(&self.layout)?.ok_or_else(|| Error::State("nothing is on trial".into()))?;
        trial.health_passed = true;
        trial.save(&self.layout)?;
        self.commit_trial(&trial)?;
        Ok(trial.seq)
    }

    /// `kassa-update rollback`: go back to the kept previous version and never retry the one left.
    pub fn rollback(&self) -> Result<String> {
        let _lock = self.lock(true)?;
        self.recover(false)?;
        if let Some(trial) = Trial::load(&self.layout)? {
            let seq = trial.seq;
            self.rollback_trial(trial, "rolled back by the operator")?;
            return Ok(format!("seq {seq} rolled back"));
        }
        let mut state = UpdateState::load(&self.layout)?;
        let current = self
            .layout
            .current_seq()?
            .ok_or_else(|| Error::State("no version is installed".into()))?;
        let previous = state
            .previous_seq
            .filter(|p| self.layout.version_dir(*p).is_dir())
            .ok_or_else(|| Error::State("no previous version is kept".into()))?;
        fsutil::switch_symlink(
            &self.layout.current(),
            &Path::new("versions").join(previous.to_string()),
        )?;
        if self.layout.snapshots().join(current.to_string()).is_dir() {
            self.restore_db(current)?;
        }
        state.bad_seqs.insert(current);
        state.previous_seq = None;
        let msg = format!("rolled back from seq {current} to seq {previous} by the operator");
        state.last_event = Some(msg.clone());
        state.save(&self.layout)?;
        let _ = self.restart_agent();
        Ok(msg)
    }

    /// `kassa-update status`. Runs recovery too when no other updater is running, so an expired
    /// trial is rolled back by the first status call after its deadline.
    pub fn status(&self) -> Result<Status> {
        let recovered = match self.lock(false) {
            Ok(_lock) => self.recover(false)?,
            Err(Error::Locked(_)) => Some("another kassa-update is running".into()),
            Err(e) => return Err(e),
        };
        let state = UpdateState::load(&self.layout)?;
        Ok(Status {
            current_seq: self.layout.current_seq()?,
            previous_seq: state.previous_seq,
            highest_seq: state.highest_seq,
            epoch: state.epoch,
            root_version: state.root_version,
            bad_seqs: state.bad_seqs.iter().copied().collect(),
            channel_version: state.channel_version,
            trial: Trial::load(&self.layout)?,
            busy: self.layout.busy().exists(),
            clock_went_backwards: state.last_seen > now().saturating_add(CLOCK_SKEW_SECS),
            last_event: state.last_event,
            recovered,
        })
    }
}
