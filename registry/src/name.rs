//! Package names and digests, parsed once at the boundary.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A package name, `namespace:name`: each part 1 to 64 lowercase ASCII
/// letters, digits or `-`, starting with a letter (`zhongtai:auth`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageName(String);

/// Why a name, version or digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

impl PackageName {
    /// Parses `namespace:name`.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if zhongtai_ids::is_package_name(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(NameError(format!(
                "package name {text:?} must be namespace:name, each part lowercase letters, digits or '-', starting with a letter"
            )))
        }
    }

    /// The namespace: `zhongtai` of `zhongtai:auth`.
    pub fn namespace(&self) -> &str {
        self.0
            .split_once(':')
            .map_or(self.0.as_str(), |(namespace, _)| namespace)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PackageName {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, NameError> {
        Self::parse(&text)
    }
}

impl From<PackageName> for String {
    fn from(name: PackageName) -> String {
        name.0
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a semver version, saying what was wrong.
/// Build metadata (`+…`) is refused: semver ignores it when comparing, so
/// `1.0.0` and `1.0.0+x` would be two versions no requirement tells apart.
pub fn parse_version(text: &str) -> Result<semver::Version, NameError> {
    let version = semver::Version::parse(text)
        .map_err(|e| NameError(format!("version {text:?} is not semver: {e}")))?;
    if !version.build.is_empty() {
        return Err(NameError(format!(
            "version {text:?} has build metadata (+{}); publish it as a version of its own",
            version.build
        )));
    }
    Ok(version)
}

/// Parses a semver requirement by cargo's rules (`^1.2`, `~1`, `>=1, <2`).
pub fn parse_requirement(text: &str) -> Result<semver::VersionReq, NameError> {
    semver::VersionReq::parse(text)
        .map_err(|e| NameError(format!("version requirement {text:?} is not valid: {e}")))
}

/// A sha256 digest, written `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(bytes))
        ))
    }

    /// Parses `sha256:<64 hex>`.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let hex_part = text.strip_prefix("sha256:").unwrap_or("");
        if hex_part.len() == 64
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(NameError(format!(
                "digest {text:?} must be sha256: followed by 64 lowercase hex digits"
            )))
        }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The digest as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Digest {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, NameError> {
        Self::parse(&text)
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> String {
        digest.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_with_build_metadata_are_refused() {
        // semver ranks 1.0.0+meta with 1.0.0, so `^1` could not tell them
        // apart: such a version is refused outright.
        let refused = parse_version("1.0.0+meta").unwrap_err();
        assert!(refused.0.contains("build metadata (+meta)"), "{refused}");
        assert!(parse_version("1.0.0-rc.1").is_ok());
        assert!(parse_version("1.0.0").is_ok());
    }

    #[test]
    fn names() {
        assert!(PackageName::parse("zhongtai:auth").is_ok());
        assert!(PackageName::parse("market-regulation:fees").is_ok());
        for bad in [
            "auth",
            "Zhongtai:auth",
            "zhongtai:",
            ":auth",
            "a:b:c",
            "a:1b",
            "a:b-",
            "a:b c",
        ] {
            assert!(PackageName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests() {
        let digest = Digest::of(b"hello");
        assert_eq!(Digest::parse(digest.as_str()).unwrap(), digest);
        assert_eq!(digest.hex().len(), 64);
        assert!(Digest::parse("sha256:ABC").is_err());
        assert!(Digest::parse(&digest.as_str().replace("sha256", "md5")).is_err());
    }
}
