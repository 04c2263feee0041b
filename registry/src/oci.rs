//! A [`Registry`] over any OCI distribution registry (`oci://host:port/namespace`),
//! in the wasm OCI artifact layout `wkg` and Spin use, through `oci-client`.
//!
//! - A package `ns:name` is the repository `<namespace>/<ns>/<name>`; each
//!   version is a tag (semver without build metadata, which tags cannot
//!   hold).
//! - A version's manifest has one layer, the component
//!   (`application/wasm`; its digest is the component's sha256, what lock
//!   files pin), and a config of media type
//!   `application/vnd.wasm.config.v0+json` holding the WIT world's imports
//!   and exports (`{"architecture": "wasm", "os": "wasip2", "layerDigests":
//!   […], "component": {"exports": […], "imports": […]}}`).
//! - The publisher's Ed25519 signature is an annotation of the manifest,
//!   `dev.zhongtai.signature` (the signature and key as JSON): it covers
//!   package, version and the component's digest, so it is checked the same
//!   way wherever the bytes came from, and it travels with the one manifest
//!   every client reads anyway — a referrer artifact would need a second
//!   request per version and the referrers API, which registries such as
//!   distribution 2.8 do not have.
//! - Yanking pushes the version's manifest again under its tag with the
//!   annotation `dev.zhongtai.yanked: "true"` (restoring, `"false"`): the
//!   layer and config are unchanged, so the component's digest, and every
//!   lock pinning it, stays valid; resolution skips yanked versions as the
//!   built-in registry does.
//! - Registries have no search: [`Registry::search`] finds a package only by
//!   its exact name.
//!
//! `oci-client` is asynchronous; each operation runs on a runtime of this
//! registry's own, on a thread of its own, so that callers may be
//! synchronous code or blocking tasks of another runtime alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::client::Registry;
use crate::error::RegistryError;
use crate::name::{Digest, PackageName};
use crate::signing::Signed;
use crate::store::{
    PackageInfo, PackageSummary, PublishOutcome, PublishRequest, VersionRecord, acceptable,
    verified,
};
use crate::validate::WorldSummary;

/// The media type of a component layer.
pub const WASM_LAYER: &str = "application/wasm";
/// The media type of the config of a wasm artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The manifest annotation holding the publisher's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.zhongtai.signature";
/// The manifest annotation saying whether a version is yanked.
pub const YANKED_ANNOTATION: &str = "dev.zhongtai.yanked";
const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
const VERSION_ANNOTATION: &str = "org.opencontainers.image.version";
const PUBLISHED_ANNOTATION: &str = "dev.zhongtai.published-at";

/// A registry at `oci://host:port/namespace`.
pub struct OciRegistry {
    url: String,
    host: String,
    namespace: String,
    client: Client,
    auth: RegistryAuth,
    runtime: tokio::runtime::Runtime,
    provided: Vec<String>,
    /// Where each component digest seen was found, for [`Registry::blob`].
    seen: Mutex<HashMap<String, Reference>>,
}

/// The wasm artifact config.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactConfig {
    architecture: String,
    os: String,
    layer_digests: Vec<String>,
    component: WorldSummary,
}

impl OciRegistry {
    /// The registry `location` (`oci://host[:port]/namespace`), spoken to
    /// over plain HTTP on a loopback host and HTTPS elsewhere; `token`, when
    /// given, is `user:password` for basic authentication.
    pub fn open(
        location: &str,
        token: Option<String>,
        provided: Vec<String>,
    ) -> Result<Self, RegistryError> {
        let transport = |message: String| RegistryError::Transport {
            url: location.to_owned(),
            message,
        };
        let rest = location
            .strip_prefix("oci://")
            .ok_or_else(|| transport("expected oci://host[:port]/namespace".into()))?;
        let (host, namespace) = rest.split_once('/').unwrap_or((rest, ""));
        let namespace = namespace.trim_matches('/').to_owned();
        if host.is_empty() || namespace.is_empty() {
            return Err(transport(
                "expected oci://host[:port]/namespace, e.g. oci://127.0.0.1:5000/zhongtai".into(),
            ));
        }
        let loopback = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|h| host == *h || host.starts_with(&format!("{h}:")));
        let client = Client::new(ClientConfig {
            protocol: if loopback {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            ..ClientConfig::default()
        });
        let auth = match token.as_deref().and_then(|t| t.split_once(':')) {
            Some((user, password)) => RegistryAuth::Basic(user.to_owned(), password.to_owned()),
            None => RegistryAuth::Anonymous,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| transport(e.to_string()))?;
        Ok(Self {
            url: location.to_owned(),
            host: host.to_owned(),
            namespace,
            client,
            auth,
            runtime,
            provided,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `work` to completion on this registry's runtime, on a thread
    /// of its own.
    fn run<T: Send>(&self, work: impl std::future::Future<Output = T> + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.runtime.block_on(work))
                .join()
                .expect("an OCI registry operation panicked")
        })
    }

    fn repository(&self, package: &PackageName) -> String {
        let (namespace, name) = package
            .as_str()
            .split_once(':')
            .expect("a package name has a namespace");
        format!("{}/{namespace}/{name}", self.namespace)
    }

    fn reference(&self, package: &PackageName, tag: &str) -> Reference {
        Reference::with_tag(self.host.clone(), self.repository(package), tag.to_owned())
    }

    fn failed(&self, error: impl std::fmt::Display) -> RegistryError {
        RegistryError::Transport {
            url: self.url.clone(),
            message: error.to_string(),
        }
    }

    /// The version record of `tag`, or `None` when there is no such tag.
    async fn record(
        &self,
        package: &PackageName,
        version: &semver::Version,
    ) -> Result<Option<(VersionRecord, OciImageManifest, String)>, RegistryError> {
        let reference = self.reference(package, &version.to_string());
        let (manifest, _, config) = match self
            .client
            .pull_manifest_and_config(&reference, &self.auth)
            .await
        {
            Ok(found) => found,
            Err(e) if unknown(&e) => return Ok(None),
            Err(e) => return Err(self.failed(e)),
        };
        let layer = manifest
            .layers
            .iter()
            .find(|l| l.media_type == WASM_LAYER)
            .ok_or_else(|| self.failed(format!("{reference} has no {WASM_LAYER} layer")))?;
        let digest = Digest::parse(&layer.digest)?;
        let annotations = manifest.annotations.clone().unwrap_or_default();
        let signed = annotations
            .get(SIGNATURE_ANNOTATION)
            .map(|text| serde_json::from_str::<Signed>(text))
            .transpose()
            .map_err(|e| self.failed(format!("{reference}: the signature annotation: {e}")))?;
        let world = serde_json::from_str::<ArtifactConfig>(&config)
            .map(|c| c.component)
            .unwrap_or(WorldSummary {
                imports: Vec::new(),
                exports: Vec::new(),
            });
        let record = VersionRecord {
            package: package.clone(),
            version: version.clone(),
            digest: digest.clone(),
            size: layer.size.max(0) as u64,
            yanked: annotations
                .get(YANKED_ANNOTATION)
                .is_some_and(|v| v == "true"),
            published_at: annotations
                .get(PUBLISHED_ANNOTATION)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            signed,
            world,
        };
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.to_string(), reference);
        Ok(Some((record, manifest, config)))
    }
}

/// Whether `error` says the repository or the manifest does not exist.
fn unknown(error: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode};
    match error {
        E::ImageManifestNotFoundError(_) => true,
        E::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
            )
        }),
        _ => false,
    }
}

impl Registry for OciRegistry {
    fn publish(&self, request: PublishRequest) -> Result<PublishOutcome, RegistryError> {
        let (world, digest) = acceptable(&request, &self.provided)?;
        self.run(async {
            if let Some((existing, ..)) = self.record(&request.package, &request.version).await? {
                if existing.digest == digest {
                    return Ok(PublishOutcome {
                        record: existing,
                        created: false,
                    });
                }
                return Err(RegistryError::VersionExists {
                    package: request.package.to_string(),
                    version: request.version.to_string(),
                    existing: existing.digest.to_string(),
                });
            }
            let config = ArtifactConfig {
                architecture: "wasm".into(),
                os: "wasip2".into(),
                layer_digests: vec![digest.to_string()],
                component: world.clone(),
            };
            let config = Config::new(
                serde_json::to_vec(&config).expect("a config serialises"),
                WASM_CONFIG.to_owned(),
                None,
            );
            let layer = ImageLayer::new(request.bytes.clone(), WASM_LAYER.to_owned(), None);
            let now = std::time::SystemTime::now();
            let mut annotations = BTreeMap::from([
                (
                    CREATED_ANNOTATION.to_owned(),
                    zhongtai_audit::format_time(now),
                ),
                (
                    PUBLISHED_ANNOTATION.to_owned(),
                    now.duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs())
                        .to_string(),
                ),
                (VERSION_ANNOTATION.to_owned(), request.version.to_string()),
                (YANKED_ANNOTATION.to_owned(), "false".to_owned()),
            ]);
            if let Some(signed) = &request.signed {
                annotations.insert(
                    SIGNATURE_ANNOTATION.to_owned(),
                    serde_json::to_string(signed).expect("a signature serialises"),
                );
            }
            let manifest =
                OciImageManifest::build(std::slice::from_ref(&layer), &config, Some(annotations));
            let reference = self.reference(&request.package, &request.version.to_string());
            self.client
                .push(&reference, &[layer], config, &self.auth, Some(manifest))
                .await
                .map_err(|e| self.failed(e))?;
            let (record, ..) = self
                .record(&request.package, &request.version)
                .await?
                .ok_or_else(|| {
                    self.failed(format!("{reference} is missing right after its push"))
                })?;
            Ok(PublishOutcome {
                record,
                created: true,
            })
        })
    }

    fn package(&self, name: &PackageName) -> Result<PackageInfo, RegistryError> {
        self.run(async {
            let reference = self.reference(name, "latest");
            let tags = match self
                .client
                .list_tags(&reference, &self.auth, None, None)
                .await
            {
                Ok(tags) => tags.tags,
                Err(e) if unknown(&e) => {
                    return Err(RegistryError::NotFound(format!("package {name}")));
                }
                Err(e) => return Err(self.failed(e)),
            };
            let mut versions = Vec::new();
            for tag in tags {
                let Ok(version) = semver::Version::parse(&tag) else {
                    continue;
                };
                if let Some((record, ..)) = self.record(name, &version).await? {
                    versions.push(record);
                }
            }
            if versions.is_empty() {
                return Err(RegistryError::NotFound(format!("package {name}")));
            }
            versions.sort_by(|a, b| a.version.cmp(&b.version));
            Ok(PackageInfo {
                name: name.clone(),
                versions,
            })
        })
    }

    fn search(&self, query: &str) -> Result<Vec<PackageSummary>, RegistryError> {
        let Ok(name) = PackageName::parse(query) else {
            return Ok(Vec::new());
        };
        match self.package(&name) {
            Ok(info) => Ok(vec![PackageSummary::of(&info)]),
            Err(RegistryError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let reference = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest.as_str())
            .cloned()
            .ok_or_else(|| {
                RegistryError::NotFound(format!("blob {digest} (resolve its package first)"))
            })?;
        let bytes = self.run(async {
            let mut bytes = Vec::new();
            self.client
                .pull_blob(&reference, digest.as_str(), &mut bytes)
                .await
                .map(|()| bytes)
        });
        verified(digest, bytes.map_err(|e| self.failed(e))?)
    }

    fn set_yanked(
        &self,
        name: &PackageName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<VersionRecord, RegistryError> {
        self.run(async {
            let (_, mut manifest, _) = self
                .record(name, version)
                .await?
                .ok_or_else(|| RegistryError::NotFound(format!("{name}@{version}")))?;
            manifest
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(YANKED_ANNOTATION.to_owned(), yanked.to_string());
            let reference = self.reference(name, &version.to_string());
            self.client
                .push_manifest(&reference, &manifest.into())
                .await
                .map_err(|e| self.failed(e))?;
            self.record(name, version)
                .await?
                .map(|(record, ..)| record)
                .ok_or_else(|| RegistryError::NotFound(format!("{name}@{version}")))
        })
    }
}
