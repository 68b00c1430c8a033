//! The signed manifest of a bundle: what it is for (product, channel, arch), where it sits in the
//! release order (seq, epoch), and the exact payload and files it may install.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest manifest accepted (the design's 64 KiB).
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// Terminal identity a bundle must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Product name, e.g. `kassa`.
    pub product: String,
    /// Release channel, e.g. `stable`.
    pub channel: String,
    /// CPU architecture as Rust names it (`x86_64`, `aarch64`).
    pub arch: String,
}

/// The payload archive as a whole.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PayloadInfo {
    /// Hex sha256 of `payload.tar.zst`.
    pub sha256: String,
    /// Size of `payload.tar.zst` in bytes.
    pub size: u64,
    /// Size of the decompressed tar stream: the cap that stops decompression bombs.
    pub unpacked_size: u64,
}

/// One file the payload installs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative path with `/` separators inside the version directory.
    pub path: String,
    /// Hex sha256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (no setuid, setgid or sticky).
    pub mode: u32,
}

/// The manifest. Only ever built from bytes after their signatures verified (see `bundle`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Product the bundle is for.
    pub product: String,
    /// Channel the bundle is for.
    pub channel: String,
    /// Architecture the bundle is for.
    pub arch: String,
    /// Version for people (semver); ordering uses `seq`.
    pub version: String,
    /// Monotonic release number that orders releases.
    pub seq: u64,
    /// Security floor: a terminal never goes below the highest epoch it has run.
    pub epoch: u64,
    /// When the release was made (unix seconds).
    pub issued_at: u64,
    /// The new version migrates the database in a way the old one cannot read: snapshot it first.
    #[serde(default)]
    pub irreversible_migration: bool,
    /// The payload archive.
    pub payload: PayloadInfo,
    /// Every file installed.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Parses verified manifest bytes and checks internal consistency.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| Error::malformed("manifest", e))?;
        semver::Version::parse(&m.version)
            .map_err(|e| Error::malformed("manifest", format!("version {:?}: {e}", m.version)))?;
        check_sha(&m.payload.sha256)?;
        let mut seen = BTreeSet::new();
        let mut total: u64 = 0;
        for f in &m.files {
            safe_relative_path(&f.path)?;
            check_sha(&f.sha256)?;
            if f.mode & !0o777 != 0 {
                return Err(Error::malformed(
                    "manifest",
                    format!("{}: mode {:o} has special bits", f.path, f.mode),
                ));
            }
            if !seen.insert(f.path.as_str()) {
                return Err(Error::malformed(
                    "manifest",
                    format!("{} listed twice", f.path),
                ));
            }
            total = total.saturating_add(f.size);
        }
        if total > m.payload.unpacked_size {
            return Err(Error::malformed(
                "manifest",
                "files add up to more than the declared unpacked size",
            ));
        }
        Ok(m)
    }

    /// Refuses a bundle made for another product, channel or architecture.
    pub fn check_target(&self, target: &Target) -> Result<()> {
        for (field, got, want) in [
            ("product", &self.product, &target.product),
            ("channel", &self.channel, &target.channel),
            ("arch", &self.arch, &target.arch),
        ] {
            if got != want {
                return Err(Error::WrongTarget {
                    field,
                    got: got.clone(),
                    want: want.clone(),
                });
            }
        }
        Ok(())
    }

    /// The entry for `path`, if listed.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }
}

fn check_sha(s: &str) -> Result<()> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::malformed(
            "manifest",
            format!("{s:?} is not a lowercase hex sha256"),
        ))
    }
}

/// Accepts only plain relative paths made of normal components: no absolute paths, no `..`, no
/// `.`, no empty components, no NUL. This is the rule for manifests and for archive entries.
pub fn safe_relative_path(path: &str) -> Result<&Path> {
    let unsafe_entry = |reason: &str| Error::UnsafeEntry {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() || path.contains('\0') {
        return Err(unsafe_entry("empty or contains NUL"));
    }
    if path.starts_with('/') {
        return Err(unsafe_entry("absolute path"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(unsafe_entry("path has an empty, '.' or '..' component"));
    }
    let p = Path::new(path);
    if !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(unsafe_entry("path is not plain relative"));
    }
    Ok(p)
}
