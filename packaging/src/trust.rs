//! The trust root (`root.json`): offline root keys that sign the release and channel key sets, and
//! the rule that a new root is accepted only as version N+1 signed by both the old and new root keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::keys::{KeySet, PublicKey, Purpose, Signature};

/// The `type` field of a root body.
pub const ROOT_TYPE: &str = "kassa-root";

/// A role in the root: which keys and how many must sign.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Key id → hex public key.
    pub keys: BTreeMap<String, String>,
    /// How many distinct keys must sign.
    pub threshold: u32,
}

impl Role {
    /// A role of `keys` with `threshold`, ids derived from the keys.
    pub fn new(keys: &[PublicKey], threshold: u32) -> Role {
        Role {
            keys: keys.iter().map(|k| (k.keyid(), k.to_hex())).collect(),
            threshold,
        }
    }

    fn key_set(&self, role: &str) -> Result<KeySet> {
        let mut keys = BTreeMap::new();
        for (id, hex) in &self.keys {
            let key = PublicKey::from_hex(hex)?;
            if &key.keyid() != id {
                return Err(Error::malformed(
                    "root",
                    format!("{role} key id {id} does not match its key"),
                ));
            }
            keys.insert(id.clone(), key);
        }
        if self.threshold == 0 || self.threshold as usize > keys.len() {
            return Err(Error::malformed(
                "root",
                format!(
                    "{role} threshold {} is impossible with {} key(s)",
                    self.threshold,
                    keys.len()
                ),
            ));
        }
        Ok(KeySet {
            keys,
            threshold: self.threshold,
        })
    }
}

/// Floors a root lowers when a terminal accepts it: recovery from a fast-forward, where keys this
/// root revokes signed a seq (or epoch, or channel version) so high that no genuine release could
/// pass the floor again. The root keys name the highest values they vouch for; a terminal applies
/// them once, when it accepts this root, so the floors then follow genuine releases again.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FloorReset {
    /// Highest release seq vouched for; a higher anti-rollback floor comes down to it.
    pub seq: u64,
    /// Highest security epoch vouched for.
    pub epoch: u64,
    /// Highest channel document version vouched for (a stolen channel key can fast-forward it).
    pub channel_version: u64,
}

/// The signed body of `root.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootBody {
    /// Always [`ROOT_TYPE`], so a channel body can never pass as a root.
    #[serde(rename = "type")]
    pub kind: String,
    /// Product this root is for; keys of another product's root are simply unknown here.
    pub product: String,
    /// Version of the root; rotations go N → N+1 only.
    pub version: u64,
    /// Offline keys that sign roots.
    pub root: Role,
    /// Keys that sign release manifests.
    pub release: Role,
    /// Online key(s) that sign the channel document.
    pub channel: Role,
    /// Floors lowered when a terminal accepts this root; absent in a root that resets nothing
    /// (and then absent from its bytes, so roots made before this field still verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_reset: Option<FloorReset>,
}

/// A root whose signatures have been checked.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    /// The parsed body.
    pub body: RootBody,
    /// The exact document bytes, persisted as-is.
    pub bytes: Vec<u8>,
    root: KeySet,
    release: KeySet,
    channel: KeySet,
}

impl TrustRoot {
    /// Accepts the initial root shipped in the .deb (trust on first install). It must still be
    /// consistent: signed by its own root threshold.
    pub fn bootstrap(bytes: &[u8]) -> Result<TrustRoot> {
        let env = Envelope::parse("root", bytes)?;
        let root = TrustRoot::from_body(&env.body, bytes)?;
        root.root
            .check("root", Purpose::Root, env.body.as_bytes(), &env.signatures)?;
        Ok(root)
    }

    /// Accepts `new` as the next root. The old root keys are checked before anything in the new body
    /// is read; then the version must be exactly N+1, and the new keys must sign too (so a rotation
    /// both proves authority and proves the new keys are held).
    pub fn rotate(&self, new: &[u8]) -> Result<TrustRoot> {
        let env = Envelope::parse("root", new)?;
        self.root
            .check(
                "new root (old root keys)",
                Purpose::Root,
                env.body.as_bytes(),
                &env.signatures,
            )
            .map_err(|e| Error::Rotation(e.to_string()))?;
        let next = TrustRoot::from_body(&env.body, new)?;
        if next.body.product != self.body.product {
            return Err(Error::Rotation(format!(
                "new root is for product {:?}, not {:?}",
                next.body.product, self.body.product
            )));
        }
        if next.body.version != self.body.version.saturating_add(1) {
            return Err(Error::Rotation(format!(
                "new root has version {}, only {} may follow {}",
                next.body.version,
                self.body.version.saturating_add(1),
                self.body.version
            )));
        }
        next.root
            .check(
                "new root (new root keys)",
                Purpose::Root,
                env.body.as_bytes(),
                &env.signatures,
            )
            .map_err(|e| Error::Rotation(e.to_string()))?;
        Ok(next)
    }

    fn from_body(body: &str, bytes: &[u8]) -> Result<TrustRoot> {
        let body: RootBody = serde_json::from_str(body).map_err(|e| Error::malformed("root", e))?;
        if body.kind != ROOT_TYPE {
            return Err(Error::malformed("root", format!("type is {:?}", body.kind)));
        }
        Ok(TrustRoot {
            root: body.root.key_set("root")?,
            release: body.release.key_set("release")?,
            channel: body.channel.key_set("channel")?,
            body,
            bytes: bytes.to_vec(),
        })
    }

    /// Checks the release threshold over the exact manifest bytes.
    pub fn check_manifest(&self, manifest: &[u8], sigs: &[Signature]) -> Result<()> {
        self.release
            .check("manifest", Purpose::Manifest, manifest, sigs)
    }

    /// Checks the channel threshold over a channel body.
    pub fn check_channel(&self, body: &[u8], sigs: &[Signature]) -> Result<()> {
        self.channel
            .check("channel document", Purpose::Channel, body, sigs)
    }
}
