//! Ed25519 keys, key ids, domain-separated signatures and the k-of-n threshold check shared by
//! manifests, trust roots and channel documents.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What a signature is for. The context string is signed in front of the message, so a signature
/// made over a manifest can never be replayed as a root or channel signature (or vice versa), even
/// if someone crafted bytes that parse as both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `manifest.json` of a bundle, signed by release keys.
    Manifest,
    /// `root.json`, signed by root keys.
    Root,
    /// `channel.json`, signed by the online channel key.
    Channel,
}

impl Purpose {
    /// The domain-separation prefix of this purpose.
    pub fn context(self) -> &'static [u8] {
        match self {
            Purpose::Manifest => b"kassa-update v1 manifest\0",
            Purpose::Root => b"kassa-update v1 root\0",
            Purpose::Channel => b"kassa-update v1 channel\0",
        }
    }

    fn message(self, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(self.context().len() + body.len());
        m.extend_from_slice(self.context());
        m.extend_from_slice(body);
        m
    }
}

/// One signature as stored in `manifest.sig` and in signed envelopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Key id (see [`PublicKey::keyid`]) of the key that made it.
    pub keyid: String,
    /// Hex of the 64-byte ed25519 signature.
    pub sig: String,
}

/// A verifying key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.keyid())
    }
}

impl PublicKey {
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<PublicKey> {
        let bytes: [u8; 32] = hex::decode(s.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::malformed("public key", "expected 64 hex digits"))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| Error::malformed("public key", e))
    }

    /// Hex of the 32 key bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// Stable short name of the key: hex of the first 16 bytes of its sha256. Ids are derived, never
    /// chosen, so a document cannot claim one key under another key's id.
    pub fn keyid(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..16])
    }

    /// Reads a `.pub` file written by [`SecretKey::write_pair`].
    pub fn from_file(path: &Path) -> Result<PublicKey> {
        let text = crate::fsutil::read_capped(path, 1024, "public key file")?;
        let text = String::from_utf8(text).map_err(|_| Error::Key {
            path: path.to_path_buf(),
            reason: "not text".into(),
        })?;
        PublicKey::from_hex(&text).map_err(|e| Error::Key {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    fn verify(&self, purpose: Purpose, body: &[u8], sig: &Signature) -> bool {
        let Some(bytes) = hex::decode(&sig.sig)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        // verify_strict rejects small-order keys and non-canonical signatures, so one key can't
        // produce several distinct valid signatures over the same message.
        self.0.verify_strict(&purpose.message(body), &sig).is_ok()
    }
}

/// A signing key. Its `Debug` shows only the key id: secrets are never printed.
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public().keyid())
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<SecretKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::State(format!("no randomness: {e}")))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `body` for `purpose`.
    pub fn sign(&self, purpose: Purpose, body: &[u8]) -> Signature {
        Signature {
            keyid: self.public().keyid(),
            sig: hex::encode(self.0.sign(&purpose.message(body)).to_bytes()),
        }
    }

    /// Writes `<dir>/<name>.key` (mode 0600, created new so an existing key is never overwritten)
    /// and `<dir>/<name>.pub`. Returns both paths.
    pub fn write_pair(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
        let key_path = dir.join(format!("{name}.key"));
        let pub_path = dir.join(format!("{name}.pub"));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .map_err(Error::at(&key_path))?;
        f.write_all(format!("{}\n", hex::encode(self.0.to_bytes())).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(Error::at(&key_path))?;
        crate::fsutil::atomic_write(
            &pub_path,
            format!("{}\n", self.public().to_hex()).as_bytes(),
            0o644,
        )?;
        Ok((key_path, pub_path))
    }

    /// Reads a `.key` file.
    pub fn from_file(path: &Path) -> Result<SecretKey> {
        let bad = |reason: &str| Error::Key {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let text = crate::fsutil::read_capped(path, 1024, "secret key file")?;
        let text = std::str::from_utf8(&text).map_err(|_| bad("not text"))?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("expected 64 hex digits"))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }
}

/// A set of trusted keys (by key id) and how many of them must sign.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// Trusted keys by id.
    pub keys: BTreeMap<String, PublicKey>,
    /// Minimum number of distinct keys whose signatures must verify.
    pub threshold: u32,
}

impl KeySet {
    /// Succeeds when at least `threshold` distinct trusted keys made a valid signature over `body`.
    /// Unknown keys and bad signatures are ignored rather than fatal (a rotated-out key may still
    /// have signed), but they never count; the same key signing twice counts once.
    pub fn check(
        &self,
        what: &'static str,
        purpose: Purpose,
        body: &[u8],
        sigs: &[Signature],
    ) -> Result<()> {
        if self.threshold == 0 {
            return Err(Error::Signature {
                what,
                reason: "trusted threshold is 0".into(),
            });
        }
        let mut good = BTreeSet::new();
        for sig in sigs {
            if good.contains(&sig.keyid) {
                continue;
            }
            if let Some(key) = self.keys.get(&sig.keyid)
                && key.verify(purpose, body, sig)
            {
                good.insert(sig.keyid.clone());
            }
        }
        if (good.len() as u64) < u64::from(self.threshold) {
            return Err(Error::Signature {
                what,
                reason: format!(
                    "{} valid signature(s) from distinct trusted keys, {} required",
                    good.len(),
                    self.threshold
                ),
            });
        }
        Ok(())
    }
}
