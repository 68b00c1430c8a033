//! The bundle file: an outer tar holding, in this order only, `format`, `manifest.json`,
//! `manifest.sig` and `payload.tar.zst`. Building it, and opening it so that the manifest's
//! signatures and the payload's hash are checked before anything is unpacked.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::keys::{Purpose, SecretKey, Signature};
use crate::manifest::{FileEntry, MAX_MANIFEST_BYTES, Manifest, PayloadInfo};
use crate::trust::TrustRoot;

/// `format` → `name`.
pub const FORMAT_NAME: &str = "kassa-bundle";
/// `format` → `version` this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Names of the outer entries, in their required order.
pub const ENTRY_NAMES: [&str; 4] = ["format", "manifest.json", "manifest.sig", "payload.tar.zst"];
const MAX_FORMAT_BYTES: u64 = 1024;
const MAX_SIG_BYTES: u64 = 64 * 1024;

/// The `format` entry: tells a reader how to read the rest, signed by nobody, so it holds nothing else.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Format {
    name: String,
    version: u32,
}

/// What a release is, as given to [`build_manifest`].
#[derive(Debug, Clone)]
pub struct Release {
    /// Product name.
    pub product: String,
    /// Channel.
    pub channel: String,
    /// Architecture.
    pub arch: String,
    /// Semver version.
    pub version: String,
    /// Release order.
    pub seq: u64,
    /// Security floor.
    pub epoch: u64,
    /// Unix seconds.
    pub issued_at: u64,
    /// Snapshot the database before switching.
    pub irreversible_migration: bool,
}

/// A compressed payload and the files it holds.
#[derive(Debug, Clone)]
pub struct Payload {
    /// `payload.tar.zst` bytes.
    pub compressed: Vec<u8>,
    /// Length of the uncompressed tar stream.
    pub unpacked_size: u64,
    /// Files in it.
    pub files: Vec<FileEntry>,
}

/// Packs every regular file below `dir` into a payload. Symlinks and special files are refused:
/// the installer would refuse them too, better to learn it at build time.
pub fn payload_from_dir(dir: &Path, level: i32) -> Result<Payload> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut tar = tar::Builder::new(Vec::new());
    let mut entries = Vec::new();
    for rel in files {
        let path = dir.join(&rel);
        let data = fs::read(&path).map_err(Error::at(&path))?;
        let mode = fs::metadata(&path)
            .map_err(Error::at(&path))?
            .permissions()
            .mode()
            & 0o777;
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &rel, data.as_slice())
            .map_err(Error::at(&path))?;
        entries.push(FileEntry {
            sha256: hex::encode(Sha256::digest(&data)),
            size: data.len() as u64,
            mode,
            path: rel,
        });
    }
    let tar_bytes = tar.into_inner().map_err(Error::at(dir))?;
    payload_from_tar(tar_bytes, entries, level)
}

/// Compresses an already built payload tar (tests use this to build hostile payloads).
pub fn payload_from_tar(tar_bytes: Vec<u8>, files: Vec<FileEntry>, level: i32) -> Result<Payload> {
    let compressed =
        zstd::encode_all(tar_bytes.as_slice(), level).map_err(|e| Error::io("payload", e))?;
    Ok(Payload {
        compressed,
        unpacked_size: tar_bytes.len() as u64,
        files,
    })
}

fn collect_files(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(Error::at(dir))? {
        let entry = entry.map_err(Error::at(dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(Error::at(&path))?;
        if ft.is_dir() {
            collect_files(base, &path, out)?;
        } else if ft.is_file() {
            let rel = path
                .strip_prefix(base)
                .ok()
                .and_then(|p| p.to_str())
                .ok_or_else(|| Error::UnsafeEntry {
                    path: path.display().to_string(),
                    reason: "not UTF-8".into(),
                })?;
            crate::manifest::safe_relative_path(rel)?;
            out.push(rel.to_string());
        } else {
            return Err(Error::UnsafeEntry {
                path: path.display().to_string(),
                reason: "only regular files and directories can be packed".into(),
            });
        }
    }
    Ok(())
}

/// The manifest for `release` with `payload`.
pub fn build_manifest(release: &Release, payload: &Payload) -> Manifest {
    Manifest {
        product: release.product.clone(),
        channel: release.channel.clone(),
        arch: release.arch.clone(),
        version: release.version.clone(),
        seq: release.seq,
        epoch: release.epoch,
        issued_at: release.issued_at,
        irreversible_migration: release.irreversible_migration,
        payload: PayloadInfo {
            sha256: hex::encode(Sha256::digest(&payload.compressed)),
            size: payload.compressed.len() as u64,
            unpacked_size: payload.unpacked_size,
        },
        files: payload.files.clone(),
    }
}

/// Manifest bytes as they are signed and shipped.
pub fn manifest_bytes(manifest: &Manifest) -> Result<Vec<u8>> {
    let mut b = serde_json::to_vec_pretty(manifest).map_err(|e| Error::malformed("manifest", e))?;
    b.push(b'\n');
    Ok(b)
}

/// Signs manifest bytes with each key.
pub fn sign_manifest(manifest: &[u8], keys: &[&SecretKey]) -> Vec<Signature> {
    keys.iter()
        .map(|k| k.sign(Purpose::Manifest, manifest))
        .collect()
}

/// Writes a bundle: the four entries in the fixed order.
pub fn write_bundle(
    out: impl Write,
    manifest: &[u8],
    signatures: &[Signature],
    payload: &mut dyn Read,
    payload_size: u64,
) -> Result<()> {
    let format = serde_json::to_vec(&Format {
        name: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
    })
    .map_err(|e| Error::malformed("format", e))?;
    let sigs =
        serde_json::to_vec_pretty(signatures).map_err(|e| Error::malformed("signatures", e))?;
    let mut tar = tar::Builder::new(out);
    let small: [(&str, &[u8]); 3] = [
        (ENTRY_NAMES[0], &format),
        (ENTRY_NAMES[1], manifest),
        (ENTRY_NAMES[2], &sigs),
    ];
    for (name, data) in small {
        let mut h = outer_header(data.len() as u64);
        tar.append_data(&mut h, name, data)
            .map_err(|e| Error::io(name, e))?;
    }
    let mut h = outer_header(payload_size);
    tar.append_data(&mut h, ENTRY_NAMES[3], payload)
        .map_err(|e| Error::io(ENTRY_NAMES[3], e))?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::io("bundle", e))
}

fn outer_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// A bundle whose structure was read; nothing in it is trusted yet.
#[derive(Debug, Clone)]
pub struct OpenedBundle {
    /// Exact `manifest.json` bytes.
    pub manifest: Vec<u8>,
    /// Parsed `manifest.sig`.
    pub signatures: Vec<Signature>,
    /// Offset of `payload.tar.zst` in the file.
    pub payload_offset: u64,
    /// Length of `payload.tar.zst`.
    pub payload_size: u64,
}

/// Reads the outer structure of a bundle, refusing any other entry order, type or name, oversized
/// entries, trailing entries, and entries that claim more bytes than the file has (truncation).
pub fn open(file: &mut File, max_payload: u64) -> Result<OpenedBundle> {
    let file_len = file.metadata().map_err(|e| Error::io("bundle", e))?.len();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("bundle", e))?;
    let bad = |reason: String| Error::malformed("bundle", reason);
    let mut archive = tar::Archive::new(&mut *file);
    let mut entries = archive
        .entries_with_seek()
        .map_err(|e| bad(e.to_string()))?;
    let mut small: Vec<Vec<u8>> = Vec::new();
    let mut payload = (0, 0);
    for (i, name) in ENTRY_NAMES.iter().enumerate() {
        let entry = entries
            .next()
            .ok_or_else(|| bad(format!("missing entry {name} (truncated?)")))?;
        let mut entry = entry.map_err(|e| bad(format!("entry {name}: {e}")))?;
        let path = entry.path_bytes().into_owned();
        if path != name.as_bytes() {
            return Err(bad(format!(
                "entry {} is {:?}, expected {name}",
                i + 1,
                String::from_utf8_lossy(&path)
            )));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("{name} is not a regular file")));
        }
        let size = entry.size();
        let offset = entry.raw_file_position();
        if offset.checked_add(size).is_none_or(|end| end > file_len) {
            return Err(bad(format!(
                "{name} runs past the end of the file (truncated)"
            )));
        }
        if i < 3 {
            let cap = [MAX_FORMAT_BYTES, MAX_MANIFEST_BYTES, MAX_SIG_BYTES][i];
            if size > cap {
                return Err(Error::TooLarge(format!(
                    "{name} is {size} bytes, cap {cap}"
                )));
            }
            let mut buf = Vec::new();
            (&mut entry)
                .take(cap)
                .read_to_end(&mut buf)
                .map_err(|e| bad(format!("{name}: {e}")))?;
            if buf.len() as u64 != size {
                return Err(bad(format!("{name} is truncated")));
            }
            small.push(buf);
        } else {
            if size > max_payload {
                return Err(Error::TooLarge(format!(
                    "payload is {size} bytes, cap {max_payload}"
                )));
            }
            payload = (offset, size);
        }
    }
    match entries.next() {
        None => {}
        Some(Ok(_)) => return Err(bad("unexpected entry after payload.tar.zst".into())),
        Some(Err(e)) => return Err(bad(format!("after payload: {e}"))),
    }
    let format: Format =
        serde_json::from_slice(&small[0]).map_err(|e| Error::malformed("format entry", e))?;
    if format.name != FORMAT_NAME || format.version != FORMAT_VERSION {
        return Err(bad(format!(
            "format {} v{} is not {FORMAT_NAME} v{FORMAT_VERSION}",
            format.name, format.version
        )));
    }
    let signatures: Vec<Signature> =
        serde_json::from_slice(&small[2]).map_err(|e| Error::malformed("manifest.sig", e))?;
    let manifest = small.swap_remove(1);
    Ok(OpenedBundle {
        manifest,
        signatures,
        payload_offset: payload.0,
        payload_size: payload.1,
    })
}

/// A bundle whose manifest signatures and payload hash have been verified.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The verified manifest.
    pub manifest: Manifest,
    /// Exact manifest bytes (kept for records).
    pub manifest_bytes: Vec<u8>,
    /// Offset of the payload in the verified file.
    pub payload_offset: u64,
    /// Length of the payload.
    pub payload_size: u64,
}

/// Verifies an opened bundle: signatures over the exact manifest bytes first, only then the
/// manifest is parsed, then the payload's size and sha256 are checked against it. Nothing is
/// unpacked here, so a bad payload is refused before a single file is written.
pub fn verify(file: &mut File, opened: OpenedBundle, root: &TrustRoot) -> Result<VerifiedBundle> {
    root.check_manifest(&opened.manifest, &opened.signatures)?;
    let manifest = Manifest::parse(&opened.manifest)?;
    if manifest.payload.size != opened.payload_size {
        return Err(Error::PayloadMismatch(format!(
            "payload is {} bytes, manifest says {}",
            opened.payload_size, manifest.payload.size
        )));
    }
    file.seek(SeekFrom::Start(opened.payload_offset))
        .map_err(|e| Error::io("bundle", e))?;
    let mut hasher = Sha256::new();
    let copied = io::copy(&mut (&mut *file).take(opened.payload_size), &mut hasher)
        .map_err(|e| Error::io("bundle", e))?;
    if copied != opened.payload_size {
        return Err(Error::PayloadMismatch("payload is truncated".into()));
    }
    if hex::encode(hasher.finalize()) != manifest.payload.sha256 {
        return Err(Error::PayloadMismatch("payload sha256 differs".into()));
    }
    Ok(VerifiedBundle {
        manifest,
        manifest_bytes: opened.manifest,
        payload_offset: opened.payload_offset,
        payload_size: opened.payload_size,
    })
}

/// Opens and verifies the bundle at `path` in one go (used by `kassa-update verify`).
pub fn verify_file(path: &Path, root: &TrustRoot, max_payload: u64) -> Result<VerifiedBundle> {
    let mut file = File::open(path).map_err(Error::at(path))?;
    let opened = open(&mut file, max_payload)?;
    verify(&mut file, opened, root)
}

/// Adds `key`'s signature to the bundle at `path` (k-of-n signing: each release key holder runs
/// this in turn), rewriting it atomically.
pub fn add_signature(path: &Path, key: &SecretKey, max_payload: u64) -> Result<()> {
    let mut file = File::open(path).map_err(Error::at(path))?;
    let mut opened = open(&mut file, max_payload)?;
    let sig = key.sign(Purpose::Manifest, &opened.manifest);
    opened.signatures.retain(|s| s.keyid != sig.keyid);
    opened.signatures.push(sig);
    file.seek(SeekFrom::Start(opened.payload_offset))
        .map_err(Error::at(path))?;
    let mut out = Vec::new();
    write_bundle(
        &mut out,
        &opened.manifest,
        &opened.signatures,
        &mut (&mut file).take(opened.payload_size),
        opened.payload_size,
    )?;
    crate::fsutil::atomic_write(path, &out, 0o644)
}
