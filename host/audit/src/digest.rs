//! Keyed digests of what a call was given and what it gave back.
//!
//! A record must show that two calls had the same arguments without
//! showing the arguments — and a plain sha256 of arguments that hold a
//! password or an identity number can be reversed by guessing. So a record's
//! `args` and `result` are HMAC-SHA256 digests, `hmac-sha256:<hex>`, under a
//! key derived for the record's request from a secret the host keeps
//! (`digest.key`, owner-only, never exported with the trail or served by
//! the admin API):
//!
//! ```text
//! request key = HMAC-SHA256(secret, "zhongtai-audit-digest-v1\n" + request id)
//! digest      = HMAC-SHA256(request key, the value as compact JSON, keys sorted)
//! ```
//!
//! For one case, the operator discloses that request's key
//! (`zhongtai audit disclose --request ID`); with it an auditor recomputes
//! the digests of values they hold (`zhongtai audit digest --key …`), and
//! learns nothing about any other request.

use std::fs;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::AuditError;
use crate::key::write_secret;

/// The digest secret in a trail directory.
pub const DIGEST_KEY_FILE: &str = "digest.key";

const SECRET_PREFIX: &str = "zhongtai-audit-digest-secret:";
const REQUEST_LABEL: &str = "zhongtai-audit-digest-v1\n";
/// How a keyed digest is written in a record.
pub const DIGEST_PREFIX: &str = "hmac-sha256:";

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The host's digest secret.
pub struct DigestKey {
    secret: [u8; 32],
}

/// The key of one request's digests, which the operator may disclose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    key: [u8; 32],
}

impl DigestKey {
    /// Reads the secret at `path`, or makes one there (owner-only).
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        let refused = |message: String| AuditError::Key {
            path: path.display().to_string(),
            message,
        };
        match fs::read_to_string(path) {
            Ok(text) => {
                let hex_text = text
                    .trim()
                    .strip_prefix(SECRET_PREFIX)
                    .ok_or_else(|| refused(format!("expected {SECRET_PREFIX}<64 hex digits>")))?;
                let secret = hex::decode(hex_text)
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or_else(|| refused("expected 64 hex digits".into()))?;
                Ok(Self { secret })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret)
                    .map_err(|e| refused(format!("no randomness for a new secret: {e}")))?;
                let text = format!("{SECRET_PREFIX}{}\n", hex::encode(secret));
                write_secret(path, text.as_bytes())?;
                Ok(Self { secret })
            }
            Err(e) => Err(AuditError::io(path, e)),
        }
    }

    /// The key of the digests of `request`'s records.
    pub fn for_request(&self, request: &str) -> RequestKey {
        let mut message = REQUEST_LABEL.as_bytes().to_vec();
        message.extend_from_slice(request.as_bytes());
        RequestKey {
            key: hmac(&self.secret, &message),
        }
    }
}

impl RequestKey {
    /// The digest of `value`, as a record holds it.
    pub fn digest(&self, value: &serde_json::Value) -> String {
        let text = serde_json::to_vec(value).unwrap_or_default();
        format!("{DIGEST_PREFIX}{}", hex::encode(hmac(&self.key, &text)))
    }

    /// The key as 64 hex digits, to hand to an auditor.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    /// Reads a key an operator disclosed.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        hex::decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(|key| Self { key })
            .ok_or_else(|| "a request key is 64 hex digits".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digests_depend_on_the_secret_and_the_request() {
        let dir = tempfile::tempdir().unwrap();
        let key = DigestKey::load_or_create(&dir.path().join(DIGEST_KEY_FILE)).unwrap();
        let again = DigestKey::load_or_create(&dir.path().join(DIGEST_KEY_FILE)).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = DigestKey::load_or_create(&other_dir.path().join(DIGEST_KEY_FILE)).unwrap();
        let args = json!({"id": "11010519491231002X", "password": "tea-and-silk-2026"});
        let digest = key.for_request("r1").digest(&args);
        assert!(digest.starts_with(DIGEST_PREFIX));
        assert_eq!(again.for_request("r1").digest(&args), digest, "stable");
        assert_ne!(key.for_request("r2").digest(&args), digest, "per request");
        assert_ne!(other.for_request("r1").digest(&args), digest, "per host");
        let plain = crate::hash_json(&args);
        assert!(!digest.contains(&plain), "not the unkeyed hash");
    }

    #[test]
    fn a_disclosed_request_key_recomputes_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let key = DigestKey::load_or_create(&dir.path().join(DIGEST_KEY_FILE)).unwrap();
        let args = json!({"token": "abc"});
        let disclosed = RequestKey::from_hex(&key.for_request("r1").to_hex()).unwrap();
        assert_eq!(disclosed.digest(&args), key.for_request("r1").digest(&args));
        assert!(RequestKey::from_hex("xyz").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_secret_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DIGEST_KEY_FILE);
        DigestKey::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
