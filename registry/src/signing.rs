//! Publisher keys and signatures.
//!
//! A publisher holds an Ed25519 key (`zhongtai keygen`). Publishing signs the
//! statement `zhongtai-publish-v1\n<package>\n<version>\n<digest>\n`, so a
//! signature vouches for exactly one version's bytes. The registry keeps the
//! signature and the publisher's public key with the version; clients check
//! both on fetch, and a client with trusted keys accepts only versions
//! signed by one of them.

use serde::{Deserialize, Serialize};
use zhongtai_audit::{HostKey, VerifyKey};

use crate::name::{Digest, PackageName};

/// A publisher's signing key (the text forms and signatures are those of
/// every zhongtai Ed25519 key, [`HostKey`]).
pub struct PublisherKey {
    key: HostKey,
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

impl From<HostKey> for PublisherKey {
    /// A publisher key from any zhongtai Ed25519 key, e.g. one read or made
    /// with [`HostKey::load_or_create`].
    fn from(key: HostKey) -> Self {
        Self { key }
    }
}

impl PublisherKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<Self, SignatureError> {
        let key = HostKey::generate().map_err(SignatureError::BadKey)?;
        Ok(Self { key })
    }

    /// Reads the text form written by [`PublisherKey::to_text`].
    pub fn from_text(text: &str) -> Result<Self, SignatureError> {
        let key = HostKey::from_text(text).map_err(SignatureError::BadKey)?;
        Ok(Self { key })
    }

    /// The secret key as one line of text, for a key file.
    pub fn to_text(&self) -> String {
        self.key.to_text()
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.public().to_base64())
    }

    /// Signs the publish statement of one version.
    pub fn sign(
        &self,
        package: &PackageName,
        version: &semver::Version,
        digest: &Digest,
    ) -> Signed {
        Signed {
            signature: self.key.sign(&statement(package, version, digest)),
            public_key: self.public_key(),
        }
    }
}

impl PublicKey {
    /// Parses base64 of 32 bytes, or the `zhongtai-ed25519-public:` line
    /// `keygen` writes.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let key = VerifyKey::from_text(text).map_err(SignatureError::BadKey)?;
        Ok(Self(key.to_base64()))
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
        let key = VerifyKey::from_text(&self.public_key.0).map_err(SignatureError::BadKey)?;
        if key.verifies(&statement(package, version, digest), &self.signature) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch(format!("{package}@{version}")))
        }
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
