//! Ed25519 signing keys, the canonical bytes a signature covers, and offline
//! verification for third parties.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;

use crate::model::{Field, License, LicenseError};

const DOMAIN: &[u8] = b"zhongtai-license-v1\n";

/// A named Ed25519 key pair.
pub struct NamedKey {
    /// Key id, recorded in each license it signs.
    pub id: String,
    key: SigningKey,
}

impl NamedKey {
    /// A key from its id and 32-byte seed.
    pub fn from_seed(id: &str, seed: [u8; 32]) -> Self {
        Self {
            id: id.to_owned(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The public half, base64.
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    /// Signs `license` (whose `key_id` must be this key's id).
    pub fn sign(&self, license: &License) -> String {
        STANDARD.encode(self.key.sign(&canonical_bytes(license)).to_bytes())
    }
}

/// Parses `signing-keys`: comma-separated `key-id:base64-seed`.
pub fn parse_keys(text: &str) -> Result<Vec<NamedKey>, LicenseError> {
    let bad = |why: String| LicenseError::Other(format!("configuration signing-keys: {why}"));
    let mut keys = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, seed) = entry
            .split_once(':')
            .ok_or_else(|| bad("an entry is not key-id:base64-seed".into()))?;
        if id.is_empty()
            || id.len() > 32
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad(format!(
                "key id {id:?} must be 1 to 32 letters, digits or '-'"
            )));
        }
        let seed: [u8; 32] = STANDARD
            .decode(seed.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| bad(format!("seed of key {id:?} must be 32 bytes of base64")))?;
        keys.push(NamedKey::from_seed(id, seed));
    }
    if keys.is_empty() {
        return Err(bad("no keys given".into()));
    }
    Ok(keys)
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Signed<'a> {
    number: &'a str,
    license_type: &'a str,
    holder_id: &'a str,
    holder_name: &'a str,
    fields: &'a [Field],
    valid_from: &'a str,
    valid_until: &'a str,
    issuing_department: &'a str,
    issued_at: u64,
    key_id: &'a str,
}

/// The bytes a license's signature covers: a domain prefix and the compact
/// JSON of the signed fields in their documented order.
pub fn canonical_bytes(license: &License) -> Vec<u8> {
    let signed = Signed {
        number: &license.number,
        license_type: &license.license_type,
        holder_id: &license.holder_id,
        holder_name: &license.holder_name,
        fields: &license.fields,
        valid_from: &license.valid_from,
        valid_until: &license.valid_until,
        issuing_department: &license.issuing_department,
        issued_at: license.issued_at,
        key_id: &license.key_id,
    };
    let mut bytes = DOMAIN.to_vec();
    bytes.extend(serde_json::to_vec(&signed).unwrap_or_default());
    bytes
}

/// Checks a license's signature against a base64 Ed25519 public key, the
/// way a third party does offline. Says nothing of validity or revocation.
pub fn verify_offline(license: &License, public_key: &str) -> Result<(), LicenseError> {
    let key: [u8; 32] = STANDARD
        .decode(public_key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            LicenseError::InvalidInput("public key must be 32 bytes of base64".into())
        })?;
    let key = VerifyingKey::from_bytes(&key)
        .map_err(|_| LicenseError::InvalidInput("not an Ed25519 public key".into()))?;
    let signature: [u8; 64] = STANDARD
        .decode(&license.signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(LicenseError::BadSignature)?;
    key.verify(
        &canonical_bytes(license),
        &Signature::from_bytes(&signature),
    )
    .map_err(|_| LicenseError::BadSignature)
}
