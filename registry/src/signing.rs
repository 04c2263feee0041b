//! Publisher keys and signatures.
//!
//! A publisher holds an Ed25519 key (`zhongtai keygen`). Publishing signs the
//! statement `zhongtai-publish-v1\n<package>\n<version>\n<digest>\n`, so a
//! signature vouches for exactly one version's bytes. The registry keeps the
//! signature and the publisher's public key with the version; clients check
//! both on fetch, and a client with trusted keys accepts only versions
//! signed by one of them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::name::{Digest, PackageName};

/// A publisher's signing key.
pub struct PublisherKey {
    key: SigningKey,
}

/// A publisher's public key, base64 of its 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub String);

/// A signature of one version by one publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// Base64 Ed25519 signature over the publish statement.
    pub signature: String,
    /// The publisher's public key.
    pub public_key: PublicKey,
}

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The key file or text is not a key.
    #[error("not a zhongtai publisher key: {0}")]
    BadKey(String),
    /// The signature does not verify for this package, version and digest.
    #[error("signature of {0} does not match its package, version and bytes")]
    Mismatch(String),
    /// The version has no signature and the client requires one.
    #[error("{0} is not signed, and only signed components from trusted publishers are accepted")]
    Unsigned(String),
    /// The signing key is not among the trusted ones.
    #[error("{what} is signed by {key}, which is not a trusted publisher key")]
    Untrusted {
        /// The version.
        what: String,
        /// The key that signed it.
        key: String,
    },
}

/// The bytes a publish signature covers.
pub fn statement(package: &PackageName, version: &semver::Version, digest: &Digest) -> Vec<u8> {
    format!("zhongtai-publish-v1\n{package}\n{version}\n{digest}\n").into_bytes()
}

impl PublisherKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<Self, SignatureError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| SignatureError::BadKey(format!("no randomness: {e}")))?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Reads the text form written by [`PublisherKey::to_text`].
    pub fn from_text(text: &str) -> Result<Self, SignatureError> {
        let seed = text
            .trim()
            .strip_prefix("zhongtai-ed25519-secret:")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| {
                SignatureError::BadKey(
                    "expected zhongtai-ed25519-secret:<base64 of 32 bytes>".into(),
                )
            })?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The secret key as one line of text, for a key file.
    pub fn to_text(&self) -> String {
        format!(
            "zhongtai-ed25519-secret:{}\n",
            STANDARD.encode(self.key.to_bytes())
        )
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(STANDARD.encode(self.key.verifying_key().as_bytes()))
    }

    /// Signs the publish statement of one version.
    pub fn sign(
        &self,
        package: &PackageName,
        version: &semver::Version,
        digest: &Digest,
    ) -> Signed {
        let signature = self.key.sign(&statement(package, version, digest));
        Signed {
            signature: STANDARD.encode(signature.to_bytes()),
            public_key: self.public_key(),
        }
    }
}

impl PublicKey {
    /// Parses base64 of 32 bytes, or the `zhongtai-ed25519-public:` line
    /// `keygen` writes.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let text = text.trim();
        let b64 = text
            .strip_prefix("zhongtai-ed25519-public:")
            .unwrap_or(text);
        let bytes: [u8; 32] = STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                SignatureError::BadKey(format!("{text:?} is not base64 of a 32-byte public key"))
            })?;
        VerifyingKey::from_bytes(&bytes)
            .map_err(|_| SignatureError::BadKey("not an Ed25519 public key".into()))?;
        Ok(Self(b64.to_owned()))
    }

    /// A short fingerprint for messages: the first 16 hex digits of the
    /// key's sha256.
    pub fn fingerprint(&self) -> String {
        Digest::of(self.0.as_bytes()).hex()[..16].to_owned()
    }
}

impl Signed {
    /// Checks the signature for this package, version and digest.
    pub fn verify(
        &self,
        package: &PackageName,
        version: &semver::Version,
        digest: &Digest,
    ) -> Result<(), SignatureError> {
        let what = format!("{package}@{version}");
        let key = PublicKey::parse(&self.public_key.0)?;
        let key_bytes: [u8; 32] = STANDARD
            .decode(&key.0)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| SignatureError::BadKey("public key".into()))?;
        let key = VerifyingKey::from_bytes(&key_bytes)
            .map_err(|_| SignatureError::BadKey("public key".into()))?;
        let signature: [u8; 64] = STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| SignatureError::Mismatch(what.clone()))?;
        key.verify(
            &statement(package, version, digest),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| SignatureError::Mismatch(what))
    }
}

/// Which publishers a client accepts. Empty means any publisher and unsigned
/// versions too (signatures that are present are still checked).
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    trusted: Vec<PublicKey>,
}

impl TrustPolicy {
    /// Accepts only versions signed by one of `keys`.
    pub fn trusting(keys: Vec<PublicKey>) -> Self {
        Self { trusted: keys }
    }

    /// Checks a version's signature (if any) and the policy.
    pub fn check(
        &self,
        package: &PackageName,
        version: &semver::Version,
        digest: &Digest,
        signed: Option<&Signed>,
    ) -> Result<(), SignatureError> {
        let what = format!("{package}@{version}");
        match signed {
            Some(signed) => {
                signed.verify(package, version, digest)?;
                if !self.trusted.is_empty() && !self.trusted.contains(&signed.public_key) {
                    return Err(SignatureError::Untrusted {
                        what,
                        key: signed.public_key.fingerprint(),
                    });
                }
                Ok(())
            }
            None if self.trusted.is_empty() => Ok(()),
            None => Err(SignatureError::Unsigned(what)),
        }
    }
}
