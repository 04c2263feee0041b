//! The host's Ed25519 key, which signs checkpoints.
//!
//! Key files use the same one-line text forms as `zhongtai keygen`:
//! `zhongtai-ed25519-secret:<base64>` and `zhongtai-ed25519-public:<base64>`,
//! so an operator may give the host a key made with `keygen`.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::AuditError;

const SECRET_PREFIX: &str = "zhongtai-ed25519-secret:";
const PUBLIC_PREFIX: &str = "zhongtai-ed25519-public:";

/// The host's signing key.
pub struct HostKey {
    key: SigningKey,
}

/// A public key, to check checkpoint signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyKey {
    key: VerifyingKey,
}

impl HostKey {
    /// Reads the key at `path`, or makes one there (readable by its owner
    /// only) with its public half beside it (`.pub`) when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::from_text(&text).map_err(|e| AuditError::Key {
                path: path.display().to_string(),
                message: e,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| AuditError::Key {
                    path: path.display().to_string(),
                    message: format!("no randomness for a new key: {e}"),
                })?;
                let key = Self {
                    key: SigningKey::from_bytes(&seed),
                };
                let io = |e: std::io::Error| AuditError::io(path, e);
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io)?;
                file.write_all(format!("{SECRET_PREFIX}{}\n", STANDARD.encode(seed)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                fs::write(path.with_extension("pub"), key.public().to_text() + "\n").map_err(io)?;
                Ok(key)
            }
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
        STANDARD
            .decode(b64)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
            .map(|key| Self { key })
            .ok_or_else(|| format!("expected {PUBLIC_PREFIX}<base64 of 32 bytes>, or the base64"))
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
