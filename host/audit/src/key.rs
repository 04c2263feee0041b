//! Ed25519 keys in zhongtai's one-line text forms,
//! `zhongtai-ed25519-secret:<base64>` and `zhongtai-ed25519-public:<base64>`:
//! the host's key, which signs checkpoints, and (through the registry's
//! `PublisherKey`) the keys `zhongtai keygen` makes, so an operator may give
//! the host a key made with `keygen`.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::AuditError;

const SECRET_PREFIX: &str = "zhongtai-ed25519-secret:";
const PUBLIC_PREFIX: &str = "zhongtai-ed25519-public:";

/// A signing key: the host's, or a publisher's.
pub struct HostKey {
    key: SigningKey,
}

/// A public key, to check checkpoint signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyKey {
    key: VerifyingKey,
}

impl HostKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<Self, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no randomness for a new key: {e}"))?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Makes a new key and writes it to `path`, which must not exist yet,
    /// readable by its owner only.
    pub fn create(path: &Path) -> Result<Self, AuditError> {
        let key = Self::generate().map_err(|message| AuditError::Key {
            path: path.display().to_string(),
            message,
        })?;
        write_secret(path, key.to_text().as_bytes())?;
        Ok(key)
    }

    /// Reads the key at `path`, or makes one there ([`HostKey::create`])
    /// when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::from_text(&text).map_err(|message| AuditError::Key {
                path: path.display().to_string(),
                message,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(AuditError::io(path, e)),
        }
    }

    /// Reads `zhongtai-ed25519-secret:<base64 of 32 bytes>`.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let seed = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| format!("expected {SECRET_PREFIX}<base64 of 32 bytes>"))?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The secret key as one line of text (with its newline), for a key file.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}\n", STANDARD.encode(self.key.to_bytes()))
    }

    /// The public half.
    pub fn public(&self) -> VerifyKey {
        VerifyKey {
            key: self.key.verifying_key(),
        }
    }

    /// Signs `message`; base64 of the signature.
    pub fn sign(&self, message: &[u8]) -> String {
        STANDARD.encode(self.key.sign(message).to_bytes())
    }
}

impl VerifyKey {
    /// Reads base64 of 32 bytes, or the `zhongtai-ed25519-public:` line.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let b64 = text.strip_prefix(PUBLIC_PREFIX).unwrap_or(text);
        let bytes: [u8; 32] = STANDARD
            .decode(b64)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| format!("{text:?} is not base64 of a 32-byte public key"))?;
        VerifyingKey::from_bytes(&bytes)
            .map(|key| Self { key })
            .map_err(|_| "not an Ed25519 public key".to_owned())
    }

    /// Reads a public key file.
    pub fn from_file(path: &Path) -> Result<Self, AuditError> {
        let text = fs::read_to_string(path).map_err(|e| AuditError::io(path, e))?;
        Self::from_text(&text).map_err(|message| AuditError::Key {
            path: path.display().to_string(),
            message,
        })
    }

    /// The base64 of the key, as checkpoints name it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key.as_bytes())
    }

    /// The `zhongtai-ed25519-public:` line.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", self.to_base64())
    }

    /// Whether `signature` (base64) signs `message` with this key.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        STANDARD
            .decode(signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .is_some_and(|signature| self.key.verify(message, &signature).is_ok())
    }
}

/// Writes `bytes` to a new file at `path`, readable by its owner only, and
/// syncs it; a file already there is an error (a secret is never replaced).
pub(crate) fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let io = |e: std::io::Error| AuditError::io(path, e);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io)
}

/// Whether `given` is the secret `expected`, compared in time independent
/// of where the two differ (tokens of the admin API and the registry).
pub fn same_secret(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
