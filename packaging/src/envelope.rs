//! Signed JSON documents (`root.json`, `channel.json`): `{"signed": <body>, "signatures": [...]}`
//! where the signatures cover the body's exact bytes as they appear in the file, so no canonical
//! JSON is needed and nothing in the body is interpreted before its signatures are checked.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::keys::{Purpose, SecretKey, Signature};

/// Largest signed document accepted.
pub const MAX_DOCUMENT_BYTES: u64 = 64 * 1024;

/// A signed document whose body has not been parsed yet.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The exact body bytes that were signed.
    pub body: String,
    /// Signatures over `body`.
    pub signatures: Vec<Signature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    signed: &'a RawValue,
    signatures: Vec<Signature>,
}

#[derive(Serialize)]
struct WireOut<'a> {
    signed: &'a RawValue,
    signatures: &'a [Signature],
}

impl Envelope {
    /// Splits a document into body bytes and signatures; the body is left unparsed.
    pub fn parse(what: &'static str, bytes: &[u8]) -> Result<Envelope> {
        if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(Error::TooLarge(format!(
                "{what} over {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        let wire: Wire<'_> =
            serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e))?;
        Ok(Envelope {
            body: wire.signed.get().to_string(),
            signatures: wire.signatures,
        })
    }

    /// An unsigned envelope around a body serialised from `value`.
    pub fn new(value: &impl Serialize) -> Result<Envelope> {
        let body =
            serde_json::to_string_pretty(value).map_err(|e| Error::malformed("document", e))?;
        Ok(Envelope {
            body,
            signatures: Vec::new(),
        })
    }

    /// Adds (or replaces) the signature of `key`.
    pub fn sign(&mut self, purpose: Purpose, key: &SecretKey) {
        let sig = key.sign(purpose, self.body.as_bytes());
        self.signatures.retain(|s| s.keyid != sig.keyid);
        self.signatures.push(sig);
    }

    /// The document as written to disk.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let raw = RawValue::from_string(self.body.clone())
            .map_err(|e| Error::malformed("document", e))?;
        let mut out = serde_json::to_vec_pretty(&WireOut {
            signed: &raw,
            signatures: &self.signatures,
        })
        .map_err(|e| Error::malformed("document", e))?;
        out.push(b'\n');
        Ok(out)
    }
}
