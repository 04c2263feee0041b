//! `zhongtai.lock`: each component alias pinned to an exact version and the
//! sha256 of its bytes. Deploying uses the lock when present and refuses a
//! blob whose digest differs.

use serde::{Deserialize, Serialize};

/// A lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lock {
    /// Always 1.
    pub lock_version: u32,
    /// One entry per alias, by alias.
    #[serde(default, rename = "component")]
    pub components: Vec<LockedComponent>,
}

/// One pinned component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedComponent {
    /// The manifest's alias.
    pub alias: String,
    /// `namespace:name`.
    pub package: String,
    /// The requirement it was resolved from.
    pub requirement: String,
    /// The exact version.
    pub version: String,
    /// `sha256:…` of its bytes.
    pub digest: String,
}

impl Lock {
    /// Parses a lock file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lock: Lock = toml::from_str(text).map_err(|e| e.to_string())?;
        if lock.lock_version != 1 {
            return Err(format!(
                "lock-version must be 1, found {}",
                lock.lock_version
            ));
        }
        Ok(lock)
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# Written by `zhongtai lock`: exact versions and digests of the manifest's components.\n{body}"
        )
    }

    /// The pin of `alias`, if it is locked for the same package and requirement.
    pub fn pin(&self, alias: &str, package: &str, requirement: &str) -> Option<&LockedComponent> {
        self.components
            .iter()
            .find(|c| c.alias == alias && c.package == package && c.requirement == requirement)
    }
}
