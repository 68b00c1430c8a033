//! Crash-safe filesystem primitives: atomic writes, directory fsync, symlink switching, the updater
//! lock, capped reads, and the staging quota that makes "disk full" testable without a full disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content, never a mix:
/// temp file in the same directory, fsync, rename, fsync the directory (the rename itself must be durable).
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = parent(path)?;
    fs::create_dir_all(dir).map_err(Error::at(dir))?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::State(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(Error::at(&tmp))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::at(&tmp));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(Error::at(path))?;
    fsync_dir(dir)
}

/// Makes directory entries (creations, renames, removals) durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::at(dir))
}

/// The parent directory of `path`, which every path we handle has.
pub fn parent(path: &Path) -> Result<&Path> {
    match path.parent() {
        // A bare file name ("root.json") lives in the working directory.
        Some(p) if p.as_os_str().is_empty() => Ok(Path::new(".")),
        Some(p) => Ok(p),
        None => Err(Error::State(format!(
            "{} has no parent directory",
            path.display()
        ))),
    }
}

/// Creates `dir` (and parents) and sets its mode, so state directories are never world-readable.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::at(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(Error::at(dir))
}

/// Points the symlink `link` at `target` atomically: a new link at a temporary name renamed over
/// the old one, so readers see the old or the new version, never a missing `current`.
pub fn switch_symlink(link: &Path, target: &Path) -> Result<()> {
    let dir = parent(link)?;
    let tmp = dir.join(".current.new");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&tmp, e)),
    }
    std::os::unix::fs::symlink(target, &tmp).map_err(Error::at(&tmp))?;
    fs::rename(&tmp, link).map_err(Error::at(link))?;
    fsync_dir(dir)
}

/// Reads a whole file but refuses anything larger than `cap` bytes, so a hostile file cannot
/// exhaust memory.
pub fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(Error::at(path))?;
    read_capped_from(file, cap, what).map_err(|e| match e {
        Error::Io { source, .. } => Error::io(path, source),
        other => other,
    })
}

/// As [`read_capped`] for any reader.
pub fn read_capped_from(reader: impl Read, cap: u64, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(what, e))?;
    if buf.len() as u64 > cap {
        return Err(Error::TooLarge(format!(
            "{what} is larger than {cap} bytes"
        )));
    }
    Ok(buf)
}

/// Exclusive advisory lock held for the whole of an updater run; released when dropped (or when
/// the process dies, which is why a kill -9 never leaves the terminal locked).
#[derive(Debug)]
pub struct UpdateLock {
    /// Kept open only to hold the flock.
    _file: File,
}

impl UpdateLock {
    /// Takes the lock. If it is held: fails with [`Error::Locked`] when `wait` is false, otherwise
    /// calls `on_wait` once (so the user sees why nothing happens) and blocks.
    pub fn acquire(path: &Path, wait: bool, on_wait: impl FnOnce()) -> Result<UpdateLock> {
        ensure_dir(parent(path)?, 0o750)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(Error::at(path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                if !wait {
                    return Err(Error::Locked(path.to_path_buf()));
                }
                on_wait();
                file.lock().map_err(Error::at(path))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
        Ok(UpdateLock { _file: file })
    }
}

/// How many bytes staging may still write. `None` means no quota beyond the real disk.
///
/// Why this exists: CI has no small tmpfs to fill, so "disk full while staging" (test case 16) is
/// exercised by a quota that fails writes with the very same ENOSPC error a full disk returns. Every
/// staging write goes through [`QuotaWriter`], so the error path and cleanup tested are the real ones.
#[derive(Debug, Clone, Copy)]
pub struct StagingQuota {
    /// Remaining bytes, or `None` for unlimited.
    pub remaining: Option<u64>,
}

impl StagingQuota {
    /// A quota of `bytes`, or unlimited.
    pub fn new(bytes: Option<u64>) -> StagingQuota {
        StagingQuota { remaining: bytes }
    }
}

/// A writer that charges every byte to a [`StagingQuota`] and fails with ENOSPC when it runs out.
pub struct QuotaWriter<'q, W> {
    /// The real destination.
    pub inner: W,
    /// Shared budget for the whole staging run.
    pub quota: &'q mut StagingQuota,
}

impl<W: Write> Write for QuotaWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(rem) = self.quota.remaining.as_mut() {
            if buf.len() as u64 > *rem {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = self.inner.write(buf)?;
            *rem -= n as u64;
            Ok(n)
        } else {
            self.inner.write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Removes a file or directory tree if it exists; missing is fine.
pub fn remove_all(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let res = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    res.map_err(Error::at(path))
}

/// Fsyncs every directory below (and including) `dir`, so a renamed version directory is complete
/// on disk before `current` can point at it.
pub fn fsync_tree_dirs(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(Error::at(dir))? {
        let entry = entry.map_err(Error::at(dir))?;
        let ft = entry.file_type().map_err(Error::at(entry.path()))?;
        if ft.is_dir() {
            fsync_tree_dirs(&entry.path())?;
        }
    }
    fsync_dir(dir)
}

/// Lists the entries of `dir` (empty if it does not exist).
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.path()).map_err(Error::at(dir)))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Copies `from` to `to` durably (used for the database snapshot); a missing source is reported as `false`.
pub fn copy_durable(from: &Path, to: &Path) -> Result<bool> {
    let mut src = match File::open(from) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(from, e)),
    };
    let dir = parent(to)?;
    fs::create_dir_all(dir).map_err(Error::at(dir))?;
    let tmp = dir.join(format!(".copy.tmp.{}", std::process::id()));
    let mut dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::at(&tmp))?;
    io::copy(&mut src, &mut dst).map_err(Error::at(&tmp))?;
    dst.sync_all().map_err(Error::at(&tmp))?;
    fs::rename(&tmp, to).map_err(Error::at(to))?;
    fsync_dir(dir)?;
    Ok(true)
}
