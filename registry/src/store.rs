//! The registry's storage: package records in SQLite (`index.db`, WAL,
//! `synchronous=FULL`), blobs as files named by their sha256
//! (`blobs/sha256/<hex>`), the layout of OCI and cargo registries. Blobs
//! live outside the database so that large components do not bloat it and
//! so that damage on disk is caught by re-hashing on every fetch. An index
//! written by an earlier version (a sled directory, `index/`) is imported
//! on first open and kept as `index.imported`.
//!
//! Every publish, yank and unyank is appended to the registry's own audit
//! trail in `<dir>/audit` (see `zhongtai-audit`) before it is reported
//! done; `zhongtai audit verify --dir <registry>/audit` checks it.
//!
//! Crash safety comes from ordering: a blob is written to a temporary file,
//! synced and renamed into place (and its directory synced) *before* the
//! version record that names it is written and flushed. A crash in between
//! leaves at most an unreferenced blob, never a version pointing at a
//! missing or partial one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;
use crate::name::{Digest, PackageName};
use crate::signing::Signed;
use crate::validate::{self, WorldSummary};

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The package.
    pub package: PackageName,
    /// The version.
    pub version: semver::Version,
    /// The sha256 of its bytes.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Yanked versions are skipped by resolution but stay fetchable.
    pub yanked: bool,
    /// Unix seconds.
    pub published_at: u64,
    /// The publisher's signature, if the version was signed.
    pub signed: Option<Signed>,
    /// What the component imports and exports.
    pub world: WorldSummary,
}

/// A package and all its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    /// The package.
    pub name: PackageName,
    /// Versions, lowest first.
    pub versions: Vec<VersionRecord>,
}

/// One line of a search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageSummary {
    /// The package.
    pub name: PackageName,
    /// Its highest non-yanked version, if any.
    pub latest: Option<semver::Version>,
    /// How many versions exist, yanked included.
    pub versions: usize,
}

impl PackageSummary {
    /// The search line of `info`: its highest non-yanked version and how
    /// many there are.
    pub fn of(info: &PackageInfo) -> Self {
        Self {
            name: info.name.clone(),
            latest: info
                .versions
                .iter()
                .filter(|v| !v.yanked)
                .map(|v| v.version.clone())
                .max(),
            versions: info.versions.len(),
        }
    }
}

/// A publish request.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The package.
    pub package: PackageName,
    /// The version.
    pub version: semver::Version,
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// The publisher's signature of (package, version, digest), if any.
    pub signed: Option<Signed>,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishOutcome {
    /// The version as stored.
    pub record: VersionRecord,
    /// False when the same bytes were already published as this version.
    pub created: bool,
}

#[derive(Serialize, Deserialize)]
struct StoredPackage {
    versions: BTreeMap<String, VersionRecord>,
}

/// The registry's storage in a directory.
pub struct RegistryStore {
    dir: PathBuf,
    /// The index; one connection, taken in turn (publishes are serialised
    /// anyway, and reads are short).
    index: Mutex<rusqlite::Connection>,
    publishing: Mutex<()>,
    provided: Vec<String>,
    audit: zhongtai_audit::AuditLog,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// What every registry checks before it takes a version: no build
/// metadata (which semver ranks with the version without it), a component
/// this platform can run (its world, when it is), and a signature, when
/// there is one, over this package, version and digest.
pub(crate) fn acceptable(
    request: &PublishRequest,
    provided: &[String],
) -> Result<(validate::WorldSummary, Digest), RegistryError> {
    if !request.version.build.is_empty() {
        return Err(crate::name::NameError(format!(
            "version {} has build metadata; publish it as a version of its own",
            request.version
        ))
        .into());
    }
    let world = validate::validate(&request.bytes, provided)?;
    let digest = Digest::of(&request.bytes);
    if let Some(signed) = &request.signed {
        signed.verify(&request.package, &request.version, &digest)?;
    }
    Ok((world, digest))
}

/// `bytes` if they hash to `digest`, else [`RegistryError::BlobCorrupt`].
pub fn verified(digest: &Digest, bytes: Vec<u8>) -> Result<Vec<u8>, RegistryError> {
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(RegistryError::BlobCorrupt {
            digest: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

/// Opens `<dir>/index.db`, importing an earlier sled index (`<dir>/index`)
/// the first time.
fn open_index(dir: &Path) -> Result<rusqlite::Connection, RegistryError> {
    let path = dir.join("index.db");
    let earlier = dir.join("index");
    let import = !path.exists() && earlier.join("db").is_file();
    let index = rusqlite::Connection::open(&path)?;
    index.busy_timeout(std::time::Duration::from_secs(30))?;
    index.pragma_update(None, "journal_mode", "WAL")?;
    index.pragma_update(None, "synchronous", "FULL")?;
    index.execute_batch(
        "CREATE TABLE IF NOT EXISTS packages (name TEXT PRIMARY KEY, record BLOB NOT NULL)",
    )?;
    if import {
        import_sled_index(&earlier, &index)?;
    }
    Ok(index)
}

/// Copies the package records of a sled index into `index`, in one
/// transaction, then keeps the old directory as `index.imported`.
fn import_sled_index(earlier: &Path, index: &rusqlite::Connection) -> Result<(), RegistryError> {
    let failed = |e: sled::Error| {
        RegistryError::Storage(format!(
            "importing the earlier index {}: {e}; move it away to start empty",
            earlier.display()
        ))
    };
    let db = sled::Config::new().path(earlier).open().map_err(failed)?;
    let packages = db.open_tree("packages").map_err(failed)?;
    let transaction = index.unchecked_transaction()?;
    for entry in packages.iter() {
        let (name, record) = entry.map_err(failed)?;
        transaction.execute(
            "INSERT OR REPLACE INTO packages (name, record) VALUES (?1, ?2)",
            rusqlite::params![String::from_utf8_lossy(&name), record.to_vec()],
        )?;
    }
    transaction.commit()?;
    drop(packages);
    drop(db);
    fs::rename(earlier, earlier.with_file_name("index.imported"))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

impl RegistryStore {
    /// Opens (or creates) a registry in `dir`. `provided` lists the
    /// interfaces the platform gives components (`wasi:io/streams@0.2.12`, …);
    /// a component importing anything else is refused.
    pub fn open(dir: &Path, provided: Vec<String>) -> Result<Self, RegistryError> {
        fs::create_dir_all(dir.join("blobs/sha256"))?;
        let index = open_index(dir)?;
        let audit = zhongtai_audit::AuditLog::open(
            &dir.join("audit"),
            None,
            zhongtai_audit::AuditOptions::default(),
        )
        .map_err(|e| RegistryError::Storage(e.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            index: Mutex::new(index),
            publishing: Mutex::new(()),
            provided,
            audit,
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    fn index(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load(&self, name: &PackageName) -> Result<Option<StoredPackage>, RegistryError> {
        let stored: Option<Vec<u8>> = self
            .index()
            .query_row(
                "SELECT record FROM packages WHERE name = ?1",
                [name.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        match stored {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                RegistryError::Storage(format!("record of {name} is unreadable: {e}"))
            }),
            None => Ok(None),
        }
    }

    fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), RegistryError> {
        let path = self.blob_path(digest);
        if path.exists() && fs::read(&path).is_ok_and(|stored| Digest::of(&stored) == *digest) {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.dir);
        let temp = dir.join(format!(".partial-{}-{}", digest.hex(), std::process::id()));
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, &path)?;
        sync_dir(dir)?;
        Ok(())
    }

    /// Validates and stores a version; see the module docs for the order of
    /// writes. Publishing the same bytes again changes nothing; other bytes
    /// under a published version are refused.
    pub fn publish(&self, request: PublishRequest) -> Result<PublishOutcome, RegistryError> {
        let (world, digest) = acceptable(&request, &self.provided)?;
        let _one_at_a_time = self.publishing.lock().unwrap_or_else(|e| e.into_inner());
        let mut stored = self.load(&request.package)?.unwrap_or(StoredPackage {
            versions: BTreeMap::new(),
        });
        let key = request.version.to_string();
        if let Some(existing) = stored.versions.get(&key) {
            if existing.digest == digest {
                return Ok(PublishOutcome {
                    record: existing.clone(),
                    created: false,
                });
            }
            return Err(RegistryError::VersionExists {
                package: request.package.to_string(),
                version: key,
                existing: existing.digest.to_string(),
            });
        }
        self.write_blob(&digest, &request.bytes)?;
        let record = VersionRecord {
            package: request.package.clone(),
            version: request.version,
            digest,
            size: request.bytes.len() as u64,
            yanked: false,
            published_at: now(),
            signed: request.signed,
            world,
        };
        stored.versions.insert(key, record.clone());
        self.record("publish", &record)?;
        self.save(&request.package, &stored)?;
        Ok(PublishOutcome {
            record,
            created: true,
        })
    }

    fn save(&self, name: &PackageName, stored: &StoredPackage) -> Result<(), RegistryError> {
        let bytes =
            serde_json::to_vec(stored).map_err(|e| RegistryError::Storage(e.to_string()))?;
        self.index().execute(
            "INSERT INTO packages (name, record) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET record = excluded.record",
            rusqlite::params![name.as_str(), bytes],
        )?;
        Ok(())
    }

    /// A package with all its versions.
    pub fn package(&self, name: &PackageName) -> Result<PackageInfo, RegistryError> {
        let stored = self
            .load(name)?
            .ok_or_else(|| RegistryError::NotFound(format!("package {name}")))?;
        let mut versions: Vec<VersionRecord> = stored.versions.into_values().collect();
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(PackageInfo {
            name: name.clone(),
            versions,
        })
    }

    /// Packages whose name contains `query` (all when empty), by name.
    pub fn search(&self, query: &str) -> Result<Vec<PackageSummary>, RegistryError> {
        let names: Vec<String> = {
            let index = self.index();
            let mut statement = index.prepare("SELECT name FROM packages ORDER BY name")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut found = Vec::new();
        for name in names {
            let name = PackageName::parse(&name)?;
            if !name.as_str().contains(query) {
                continue;
            }
            found.push(PackageSummary::of(&self.package(&name)?));
        }
        Ok(found)
    }

    /// The bytes of a blob, checked against its digest.
    pub fn blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let bytes = match fs::read(self.blob_path(digest)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RegistryError::NotFound(format!("blob {digest}")));
            }
            Err(e) => return Err(e.into()),
        };
        verified(digest, bytes)
    }

    /// Yanks (or, with `yanked = false`, restores) a version.
    pub fn set_yanked(
        &self,
        name: &PackageName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<VersionRecord, RegistryError> {
        let _one_at_a_time = self.publishing.lock().unwrap_or_else(|e| e.into_inner());
        let mut stored = self
            .load(name)?
            .ok_or_else(|| RegistryError::NotFound(format!("package {name}")))?;
        let record = stored
            .versions
            .get_mut(&version.to_string())
            .ok_or_else(|| RegistryError::NotFound(format!("{name}@{version}")))?;
        record.yanked = yanked;
        let record = record.clone();
        self.record(if yanked { "yank" } else { "unyank" }, &record)?;
        self.save(name, &stored)?;
        Ok(record)
    }

    /// Appends a change of `record` to the registry's audit trail
    /// (`<dir>/audit`), durably, before the change is made: a crash in
    /// between leaves a record of a change that did not happen, never a
    /// change without a record. The subject is the publisher's key when the
    /// version is signed.
    fn record(&self, action: &str, record: &VersionRecord) -> Result<(), RegistryError> {
        let mut entry = zhongtai_audit::Entry::new(zhongtai_audit::Kind::Registry);
        entry.action = Some(action.to_owned());
        entry.package = Some(record.package.to_string());
        entry.version = Some(record.version.to_string());
        entry.digest = Some(record.digest.to_string());
        entry.subject = record.signed.as_ref().map(|s| s.public_key.0.clone());
        self.audit.append(entry).map(|_| ()).map_err(|e| {
            RegistryError::Storage(format!(
                "refused: the change could not be recorded in the audit trail: {e}"
            ))
        })
    }

    /// The registry's audit trail directory.
    pub fn audit_dir(&self) -> &Path {
        self.audit.dir()
    }

    /// Replaces a version's signature as stored, bypassing every check; for
    /// tests that play a compromised registry.
    #[doc(hidden)]
    pub fn tamper_signature(
        &self,
        name: &PackageName,
        version: &semver::Version,
        signed: Option<Signed>,
    ) -> Result<(), RegistryError> {
        let mut stored = self
            .load(name)?
            .ok_or_else(|| RegistryError::NotFound(format!("package {name}")))?;
        if let Some(record) = stored.versions.get_mut(&version.to_string()) {
            record.signed = signed;
        }
        self.save(name, &stored)
    }

    /// Where a blob's file is; for tests that damage it.
    #[doc(hidden)]
    pub fn blob_file(&self, digest: &Digest) -> PathBuf {
        self.blob_path(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_sled_index_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new()
                .path(dir.path().join("index"))
                .open()
                .unwrap();
            let packages = db.open_tree("packages").unwrap();
            packages
                .insert("example:kept", &br#"{"versions":{}}"#[..])
                .unwrap();
            db.flush().unwrap();
        }
        let store = RegistryStore::open(dir.path(), Vec::new()).unwrap();
        let found = store.search("").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name.as_str(), "example:kept");
        assert!(dir.path().join("index.imported").is_dir());
        assert!(!dir.path().join("index").exists());
        drop(store);
        // Opened again, it is not imported twice.
        let again = RegistryStore::open(dir.path(), Vec::new()).unwrap();
        assert_eq!(again.search("").unwrap().len(), 1);
    }
}
