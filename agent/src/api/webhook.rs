//! Klarna webhook signatures (klarna-api.md §6): HMAC-SHA256 over the raw body with a key named by
//! id, compared in constant time. Webhooks are only a hint: the till still reads Klarna's state.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing Klarna-Signature or Klarna-Signing-Key-Id header")]
    MissingHeaders,
    #[error("unknown signing key id")]
    UnknownKey,
    #[error("signature does not match the body")]
    BadSignature,
    #[error("malformed webhook body: {0}")]
    Malformed(String),
}

/// Checks `signature_hex` = HMAC-SHA256(key[key_id], body).
pub fn verify_signature(
    keys: &BTreeMap<String, String>,
    key_id: &str,
    signature_hex: &str,
    body: &[u8],
) -> Result<(), WebhookError> {
    let key = keys.get(key_id).ok_or(WebhookError::UnknownKey)?;
    let sig = hex::decode(signature_hex.trim()).map_err(|_| WebhookError::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).map_err(|_| WebhookError::UnknownKey)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&sig)
        .map_err(|_| WebhookError::BadSignature)
}

/// The signature a sender would put on `body` (used by tests and the sandbox's counterpart).
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub metadata: Metadata,
    #[serde(default)]
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub event_type: String,
    pub event_id: String,
}

impl Envelope {
    pub fn payment_request_id(&self) -> Option<&str> {
        self.payload
            .get("payment_request_id")
            .and_then(|v| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> BTreeMap<String, String> {
        [("k1".to_string(), "secret-one".to_string())].into()
    }

    #[test]
    fn a_correct_signature_verifies() {
        let body = br#"{"metadata":{}}"#;
        assert_eq!(
            verify_signature(&keys(), "k1", &sign("secret-one", body), body),
            Ok(())
        );
    }

    #[test]
    fn wrong_key_body_or_id_is_rejected() {
        let body = br#"{"a":1}"#;
        let sig = sign("secret-one", body);
        assert_eq!(
            verify_signature(&keys(), "k2", &sig, body),
            Err(WebhookError::UnknownKey)
        );
        assert_eq!(
            verify_signature(&keys(), "k1", &sig, br#"{"a":2}"#),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(&keys(), "k1", &sign("other", body), body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(&keys(), "k1", "zz-not-hex", body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(&keys(), "k1", "", body),
            Err(WebhookError::BadSignature)
        );
    }
}
