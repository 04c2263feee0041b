//! Host configuration handed to components through `wasi:config`.
//!
//! The operator writes one TOML file; each table under `[components]` is the
//! configuration of one package, and only that package's components can read
//! it:
//!
//! ```toml
//! [components."zhongtai:auth"]
//! signing-keys = "k1:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
//! token-ttl-seconds = 3600
//! ```
//!
//! Numbers and booleans are handed over as their text. Values are secrets as
//! far as the host is concerned: they are never logged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Configuration values of one package, by key.
pub type PackageConfig = Arc<BTreeMap<String, String>>;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read host configuration {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("host configuration {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What was wrong, with its position.
        message: String,
    },
}

/// Configuration for every package, as loaded from the host's TOML file.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    packages: BTreeMap<String, PackageConfig>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    components: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

impl HostConfig {
    /// Loads a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses configuration text; the error says what and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut packages = BTreeMap::new();
        for (package, values) in file.components {
            let mut flat = BTreeMap::new();
            for (key, value) in values {
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(format!(
                            "components.\"{package}\".{key}: expected a string, number or boolean, found {}",
                            other.type_str()
                        ));
                    }
                };
                flat.insert(key, text);
            }
            packages.insert(package, Arc::new(flat));
        }
        Ok(Self { packages })
    }

    /// Sets one value; for tests and tools that build configuration in code.
    pub fn set(&mut self, package: &str, key: &str, value: &str) {
        let entry = self.packages.entry(package.to_owned()).or_default();
        Arc::make_mut(entry).insert(key.to_owned(), value.to_owned());
    }

    /// The configuration of `package` (empty when none is given).
    pub fn package(&self, package: &str) -> PackageConfig {
        self.packages.get(package).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_per_package_text() {
        let config = HostConfig::parse(
            "[components.\"zhongtai:auth\"]\nsigning-keys = \"k:abc\"\ntoken-ttl-seconds = 60\n",
        )
        .unwrap();
        let auth = config.package("zhongtai:auth");
        assert_eq!(
            auth.get("token-ttl-seconds").map(String::as_str),
            Some("60")
        );
        assert!(config.package("zhongtai:payment").is_empty());
    }

    #[test]
    fn unknown_tables_and_nested_values_are_refused() {
        let err = HostConfig::parse("[other]\nx = 1\n").unwrap_err();
        assert!(err.contains("unknown field `other`"), "{err}");
        let err = HostConfig::parse("[components.\"a:b\"]\nx = [1]\n").unwrap_err();
        assert!(
            err.contains("components.\"a:b\".x: expected a string"),
            "{err}"
        );
    }
}
