//! Unpacks a verified payload into `versions/<seq>.tmp/`, trusting nothing in the archive beyond
//! what the signed manifest lists: only plain files and their directories, each exactly as declared.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::rc::Rc;

use sha2::{Digest, Sha256};

use crate::bundle::VerifiedBundle;
use crate::error::{Error, Result};
use crate::fsutil::{QuotaWriter, StagingQuota};
use crate::manifest::safe_relative_path;

/// Stops reading the decompressed stream once it exceeds the declared unpacked size, so a
/// decompression bomb costs at most that much work and no disk beyond it.
struct CapReader<R> {
    inner: R,
    remaining: u64,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for CapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for one byte more than allowed: getting it proves the stream is over the cap.
        let want = buf
            .len()
            .min(usize::try_from(self.remaining.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.remaining {
            self.tripped.set(true);
            return Err(io::Error::other(
                "decompressed payload exceeds its declared size",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Unpacks the payload of `bundle` (read from `file`, the private verified copy) into `dest`,
/// which must not exist yet. On error `dest` may hold partial files; the caller removes it.
pub fn unpack(
    file: &mut File,
    bundle: &VerifiedBundle,
    dest: &Path,
    quota: &mut StagingQuota,
) -> Result<()> {
    let manifest = &bundle.manifest;
    fs::create_dir(dest).map_err(Error::at(dest))?;
    file.seek(SeekFrom::Start(bundle.payload_offset))
        .map_err(|e| Error::io("bundle", e))?;
    let compressed = (&mut *file).take(bundle.payload_size);
    let decoder =
        zstd::stream::read::Decoder::new(compressed).map_err(|e| Error::io("payload", e))?;
    let tripped = Rc::new(Cell::new(false));
    let capped = CapReader {
        inner: decoder,
        remaining: manifest.payload.unpacked_size,
        tripped: tripped.clone(),
    };
    let bomb = || {
        Error::TooLarge(format!(
            "payload decompresses to more than its declared {} bytes",
            manifest.payload.unpacked_size
        ))
    };
    let mut allowed_dirs = BTreeSet::new();
    for f in &manifest.files {
        let mut p = Path::new(&f.path).parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            allowed_dirs.insert(d.to_path_buf());
            p = d.parent();
        }
    }
    let mut archive = tar::Archive::new(capped);
    let entries = archive
        .entries()
        .map_err(|e| Error::malformed("payload", e))?;
    let mut seen = BTreeSet::new();
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(_) if tripped.get() => return Err(bomb()),
            Err(e) => return Err(Error::malformed("payload", e)),
        };
        let raw = entry.path_bytes().into_owned();
        let Ok(name) = String::from_utf8(raw.clone()) else {
            return Err(Error::UnsafeEntry {
                path: String::from_utf8_lossy(&raw).into_owned(),
                reason: "name is not UTF-8".into(),
            });
        };
        let unsafe_entry = |reason: &str| Error::UnsafeEntry {
            path: name.clone(),
            reason: reason.into(),
        };
        let kind = entry.header().entry_type();
        let trimmed = if kind.is_dir() {
            name.trim_end_matches('/')
        } else {
            name.as_str()
        };
        let rel = safe_relative_path(trimmed)?.to_path_buf();
        let mode = entry
            .header()
            .mode()
            .map_err(|e| Error::malformed("payload", e))?;
        if mode & 0o7000 != 0 {
            return Err(unsafe_entry("setuid, setgid or sticky bit"));
        }
        if !seen.insert(trimmed.to_string()) {
            return Err(unsafe_entry("duplicate entry"));
        }
        if kind.is_dir() {
            if !allowed_dirs.contains(&rel) {
                return Err(Error::PayloadMismatch(format!(
                    "directory {trimmed} holds no listed file"
                )));
            }
            fs::create_dir_all(dest.join(&rel)).map_err(Error::at(dest.join(&rel)))?;
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(unsafe_entry(match kind {
                tar::EntryType::Symlink => "symbolic link",
                tar::EntryType::Link => "hard link",
                tar::EntryType::Char | tar::EntryType::Block => "device node",
                tar::EntryType::Fifo => "fifo",
                _ => "not a regular file or directory",
            }));
        }
        let Some(listed) = manifest.file(trimmed) else {
            return Err(Error::PayloadMismatch(format!(
                "{trimmed} is not in the manifest"
            )));
        };
        if entry.size() > listed.size {
            return Err(Error::TooLarge(format!(
                "{trimmed} is {} bytes in the archive, {} in the manifest",
                entry.size(),
                listed.size
            )));
        }
        let target = dest.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(Error::at(parent))?;
        }
        // create_new: never follow or reuse anything already at that path.
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(listed.mode)
            .open(&target)
            .map_err(Error::at(&target))?;
        let mut hasher = Sha256::new();
        let mut buf = [0u8; 64 * 1024];
        let mut written: u64 = 0;
        let mut limited = (&mut entry).take(listed.size.saturating_add(1));
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) if tripped.get() => return Err(bomb()),
                Err(e) => return Err(Error::malformed("payload", e)),
            };
            written += n as u64;
            if written > listed.size {
                return Err(Error::TooLarge(format!(
                    "{trimmed} is larger than declared"
                )));
            }
            hasher.update(&buf[..n]);
            QuotaWriter {
                inner: &mut out,
                quota: &mut *quota,
            }
            .write_all(&buf[..n])
            .map_err(Error::at(&target))?;
        }
        if written != listed.size || hex::encode(hasher.finalize()) != listed.sha256 {
            return Err(Error::PayloadMismatch(format!(
                "{trimmed} differs from the manifest"
            )));
        }
        // Mode is set explicitly: the umask must not change what the manifest says.
        out.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(listed.mode))
            .and_then(|()| out.sync_all())
            .map_err(Error::at(&target))?;
    }
    if tripped.get() {
        return Err(bomb());
    }
    for f in &manifest.files {
        if !seen.contains(&f.path) {
            return Err(Error::PayloadMismatch(format!(
                "{} is listed but missing",
                f.path
            )));
        }
    }
    Ok(())
}

/// Checks that an already staged version directory holds exactly the manifest's files with the
/// right content, so a version staged by an earlier run (then deferred) can be switched to.
pub fn check_staged(dir: &Path, bundle: &VerifiedBundle) -> Result<()> {
    let mut found = Vec::new();
    list_files(dir, dir, &mut found)?;
    found.sort();
    let mut listed: Vec<&str> = bundle
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    listed.sort();
    if found != listed {
        return Err(Error::PayloadMismatch(format!(
            "{} holds other files than the manifest",
            dir.display()
        )));
    }
    for f in &bundle.manifest.files {
        let path = dir.join(&f.path);
        let mut file = File::open(&path).map_err(Error::at(&path))?;
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher).map_err(Error::at(&path))?;
        if hex::encode(hasher.finalize()) != f.sha256 {
            return Err(Error::PayloadMismatch(format!(
                "{} changed on disk",
                f.path
            )));
        }
    }
    Ok(())
}

fn list_files(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(Error::at(dir))? {
        let entry = entry.map_err(Error::at(dir))?;
        let ft = entry.file_type().map_err(Error::at(entry.path()))?;
        let path = entry.path();
        if ft.is_dir() {
            list_files(base, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(base)
                .ok()
                .and_then(|p| p.to_str())
                .unwrap_or("?");
            if !ft.is_file() {
                return Err(Error::PayloadMismatch(format!(
                    "{rel} is not a regular file"
                )));
            }
            out.push(rel.to_string());
        }
    }
    Ok(())
}
