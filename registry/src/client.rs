//! One [`Registry`] trait over an embedded registry (a directory, opened in
//! process) and a remote one (a URL), used by the CLI and the host; and the
//! operations built on it: resolving a requirement, and fetching a version
//! with its digest and signature checked.

use std::io::Read;
use std::path::Path;

use crate::error::RegistryError;
use crate::name::{Digest, PackageName};
use crate::resolve::highest_match;
use crate::signing::TrustPolicy;
use crate::store::{
    PackageInfo, PackageSummary, PublishOutcome, PublishRequest, RegistryStore, VersionRecord,
    verified,
};

/// What every registry, embedded or remote, can do.
pub trait Registry: Send + Sync {
    /// Publishes a version.
    fn publish(&self, request: PublishRequest) -> Result<PublishOutcome, RegistryError>;
    /// A package with all its versions.
    fn package(&self, name: &PackageName) -> Result<PackageInfo, RegistryError>;
    /// Packages whose name contains `query`.
    fn search(&self, query: &str) -> Result<Vec<PackageSummary>, RegistryError>;
    /// A blob's bytes. Implementations check them against the digest.
    fn blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError>;
    /// Whether [`Registry::blob`] is known to check the bytes against the
    /// digest itself, so that [`fetch`] need not hash them again (a
    /// component is hashed several times per deployment, and a CPU
    /// without SHA extensions hashes about 200 MB/s). `false` unless the
    /// implementation is sure.
    fn checks_blobs(&self) -> bool {
        false
    }
    /// Yanks or restores a version.
    fn set_yanked(
        &self,
        name: &PackageName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<VersionRecord, RegistryError>;
}

/// The exact version an `=x.y.z` requirement names, if it is one.
fn exact(requirement: &semver::VersionReq) -> Option<semver::Version> {
    match requirement.comparators.as_slice() {
        [c] if c.op == semver::Op::Exact => Some(semver::Version {
            major: c.major,
            minor: c.minor?,
            patch: c.patch?,
            pre: c.pre.clone(),
            build: semver::BuildMetadata::EMPTY,
        }),
        _ => None,
    }
}

/// The version `requirement` resolves to: the highest non-yanked match. An
/// exact requirement (`=1.2.0`) also finds a yanked version, as a lock file
/// does, so that locked deployments keep working after a yank.
pub fn resolve(
    registry: &dyn Registry,
    name: &PackageName,
    requirement: &semver::VersionReq,
) -> Result<VersionRecord, RegistryError> {
    let info = registry.package(name)?;
    if let Some(pinned) = exact(requirement)
        && let Some(record) = info.versions.iter().find(|v| v.version == pinned)
    {
        return Ok(record.clone());
    }
    let chosen = highest_match(
        requirement,
        info.versions.iter().map(|v| (&v.version, v.yanked)),
    )
    .cloned();
    match chosen {
        Some(version) => Ok(info
            .versions
            .into_iter()
            .find(|v| v.version == version)
            .expect("chosen from these versions")),
        None => Err(RegistryError::NoMatch {
            package: name.to_string(),
            requirement: requirement.to_string(),
            published: if info.versions.is_empty() {
                "none".into()
            } else {
                info.versions
                    .iter()
                    .map(|v| format!("{}{}", v.version, if v.yanked { " (yanked)" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
    }
}

/// Fetches a version's bytes, checking that they hash to its digest and
/// that its signature holds under `trust`. Yanked versions are fetchable.
pub fn fetch(
    registry: &dyn Registry,
    record: &VersionRecord,
    trust: &TrustPolicy,
) -> Result<Vec<u8>, RegistryError> {
    trust.check(
        &record.package,
        &record.version,
        &record.digest,
        record.signed.as_ref(),
    )?;
    // Checked here as well as in `blob` unless the implementation says it
    // checks: not every implementation is ours.
    let bytes = registry.blob(&record.digest)?;
    if registry.checks_blobs() {
        return Ok(bytes);
    }
    verified(&record.digest, bytes)
}

/// A registry in a local directory, used in process.
pub struct LocalRegistry {
    store: RegistryStore,
}

impl LocalRegistry {
    /// Opens the registry in `dir`; see [`RegistryStore::open`].
    pub fn open(dir: &Path, provided: Vec<String>) -> Result<Self, RegistryError> {
        Ok(Self {
            store: RegistryStore::open(dir, provided)?,
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &RegistryStore {
        &self.store
    }
}

impl Registry for LocalRegistry {
    fn publish(&self, request: PublishRequest) -> Result<PublishOutcome, RegistryError> {
        self.store.publish(request)
    }
    fn package(&self, name: &PackageName) -> Result<PackageInfo, RegistryError> {
        self.store.package(name)
    }
    fn search(&self, query: &str) -> Result<Vec<PackageSummary>, RegistryError> {
        self.store.search(query)
    }
    fn blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        self.store.blob(digest)
    }
    fn checks_blobs(&self) -> bool {
        // `RegistryStore::blob` returns only bytes that hash to the digest.
        true
    }
    fn set_yanked(
        &self,
        name: &PackageName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<VersionRecord, RegistryError> {
        self.store.set_yanked(name, version, yanked)
    }
}

/// A registry served over HTTP (`zhongtai registry serve`).
pub struct RemoteRegistry {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

impl RemoteRegistry {
    /// A client for the registry at `url` (`http://host:port`), with the
    /// publisher token for publishing and yanking.
    pub fn new(url: &str, token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(120)))
            .build()
            .into();
        Self {
            base: url.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    fn transport(&self, message: impl std::fmt::Display) -> RegistryError {
        RegistryError::Transport {
            url: self.base.clone(),
            message: message.to_string(),
        }
    }

    fn answer(&self, response: ureq::http::Response<ureq::Body>) -> Result<Vec<u8>, RegistryError> {
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(crate::validate::MAX_COMPONENT_BYTES as u64 + 1024 * 1024)
            .read_to_end(&mut bytes)
            .map_err(|e| self.transport(e))?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(RegistryError::Remote {
                status,
                code: body.error.code,
                message: body.error.message,
            }),
            Err(_) => Err(self.transport(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ))),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(&self, bytes: Vec<u8>) -> Result<T, RegistryError> {
        serde_json::from_slice(&bytes)
            .map_err(|e| self.transport(format!("unexpected answer: {e}")))
    }

    fn get(&self, path: &str) -> Result<Vec<u8>, RegistryError> {
        let response = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .map_err(|e| self.transport(e))?;
        self.answer(response)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.as_deref().unwrap_or_default())
    }
}

impl Registry for RemoteRegistry {
    fn publish(&self, request: PublishRequest) -> Result<PublishOutcome, RegistryError> {
        let mut call = self
            .agent
            .put(&format!(
                "{}/api/v1/packages/{}/{}",
                self.base, request.package, request.version
            ))
            .header("Authorization", &self.bearer())
            .header("Content-Type", "application/wasm")
            // A refused token is answered before the body is sent.
            .header("Expect", "100-continue");
        if let Some(signed) = &request.signed {
            call = call
                .header("X-Zhongtai-Signature", &signed.signature)
                .header("X-Zhongtai-Public-Key", &signed.public_key.0);
        }
        let response = call
            .send(&request.bytes[..])
            .map_err(|e| self.transport(e))?;
        let bytes = self.answer(response)?;
        self.json(bytes)
    }

    fn package(&self, name: &PackageName) -> Result<PackageInfo, RegistryError> {
        let bytes = self.get(&format!("/api/v1/packages/{name}"))?;
        let info: PackageInfo = self.json(bytes)?;
        // A server must not pass off another package's (validly signed)
        // versions as the one asked for.
        let stray = std::iter::once(&info.name)
            .chain(info.versions.iter().map(|v| &v.package))
            .find(|answered| *answered != name);
        if let Some(stray) = stray {
            return Err(self.transport(format!(
                "asked for {name}, answered with a record of {stray}; refused"
            )));
        }
        Ok(info)
    }

    fn search(&self, query: &str) -> Result<Vec<PackageSummary>, RegistryError> {
        let query: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let bytes = self.get(&format!("/api/v1/packages?q={query}"))?;
        self.json(bytes)
    }

    fn blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let bytes = self.get(&format!("/api/v1/blobs/{digest}"))?;
        verified(digest, bytes)
    }

    fn checks_blobs(&self) -> bool {
        true
    }

    fn set_yanked(
        &self,
        name: &PackageName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<VersionRecord, RegistryError> {
        let url = format!("{}/api/v1/packages/{name}/{version}/yank", self.base);
        let response = if yanked {
            self.agent
                .put(&url)
                .header("Authorization", &self.bearer())
                .send_empty()
        } else {
            self.agent
                .delete(&url)
                .header("Authorization", &self.bearer())
                .call()
        }
        .map_err(|e| self.transport(e))?;
        let bytes = self.answer(response)?;
        self.json(bytes)
    }
}

/// Opens the registry at `location`: a URL (`http://…`) or a directory.
pub fn open(
    location: &str,
    token: Option<String>,
    provided: Vec<String>,
) -> Result<Box<dyn Registry>, RegistryError> {
    if location.starts_with("oci://") {
        Ok(Box::new(crate::oci::OciRegistry::open(
            location, token, provided,
        )?))
    } else if location.starts_with("http://") || location.starts_with("https://") {
        Ok(Box::new(RemoteRegistry::new(location, token)))
    } else {
        Ok(Box::new(LocalRegistry::open(
            Path::new(location),
            provided,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::WorldSummary;
    use std::io::{Read, Write};

    /// A server that answers every request with `body`.
    fn answering(body: String) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    fn record(package: &str) -> VersionRecord {
        VersionRecord {
            package: PackageName::parse(package).unwrap(),
            version: semver::Version::new(1, 0, 0),
            digest: Digest::of(b"component"),
            size: 9,
            yanked: false,
            published_at: 0,
            signed: None,
            world: WorldSummary {
                imports: Vec::new(),
                exports: Vec::new(),
            },
        }
    }

    #[test]
    fn a_server_cannot_pass_off_one_package_as_another() {
        let asked = PackageName::parse("example:b").unwrap();
        for info in [
            // Another package's record under the asked-for name…
            PackageInfo {
                name: asked.clone(),
                versions: vec![record("example:a")],
            },
            // …or another package altogether.
            PackageInfo {
                name: PackageName::parse("example:a").unwrap(),
                versions: vec![record("example:a")],
            },
        ] {
            let url = answering(serde_json::to_string(&info).unwrap());
            let error = RemoteRegistry::new(&url, None).package(&asked).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("answered with a record of example:a"),
                "{error}"
            );
        }
        let honest = PackageInfo {
            name: asked.clone(),
            versions: vec![record("example:b")],
        };
        let url = answering(serde_json::to_string(&honest).unwrap());
        assert_eq!(
            RemoteRegistry::new(&url, None).package(&asked).unwrap(),
            honest
        );
    }
}
