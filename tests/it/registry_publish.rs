//! Publishing to and fetching from an embedded registry: immutability,
//! resolution and yanking, validation, damage on disk, and every signature
//! failure.

use crate::support;

use crate::support::guest_bytes;
use zhongtai_registry::name::{parse_requirement, parse_version};
use zhongtai_registry::{
    Digest, LocalRegistry, PackageName, PublishRequest, PublisherKey, Registry, RegistryError,
    TrustPolicy, fetch, resolve_version,
};
use zhongtai_runtime::{HostConfig, LoadError, RuntimeLimits};

fn registry() -> (LocalRegistry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let registry = LocalRegistry::open(
        dir.path(),
        zhongtai_runtime::platform::provided_interfaces(),
    )
    .unwrap();
    (registry, dir)
}

fn request(
    package: &str,
    version: &str,
    bytes: Vec<u8>,
    key: Option<&PublisherKey>,
) -> PublishRequest {
    let package = PackageName::parse(package).unwrap();
    let version = parse_version(version).unwrap();
    let signed = key.map(|k| k.sign(&package, &version, &Digest::of(&bytes)));
    PublishRequest {
        package,
        version,
        bytes,
        signed,
    }
}

fn resolve(
    registry: &LocalRegistry,
    package: &str,
    requirement: &str,
) -> Result<String, RegistryError> {
    resolve_version(
        registry,
        &PackageName::parse(package).unwrap(),
        &parse_requirement(requirement).unwrap(),
    )
    .map(|r| r.version.to_string())
}

#[test]
fn the_four_capabilities_publish_resolve_and_fetch() {
    let (registry, _dir) = registry();
    let key = PublisherKey::generate().unwrap();
    for name in ["auth", "payment", "credit", "license"] {
        let bytes = guest_bytes(&format!("zhongtai-{name}"));
        let outcome = registry
            .publish(request(
                &format!("zhongtai:{name}"),
                "1.0.0",
                bytes.clone(),
                Some(&key),
            ))
            .unwrap();
        assert!(outcome.created);
        assert!(
            outcome
                .record
                .world
                .exports
                .iter()
                .all(|e| e.starts_with(&format!("zhongtai:{name}/")))
        );
        let record = resolve_version(
            &registry,
            &outcome.record.package,
            &parse_requirement("^1").unwrap(),
        )
        .unwrap();
        let fetched = fetch(
            &registry,
            &record,
            &TrustPolicy::trusting(vec![key.public_key()]),
        )
        .unwrap();
        assert_eq!(fetched, bytes);
    }
    let names: Vec<String> = registry
        .search("zhongtai:")
        .unwrap()
        .into_iter()
        .map(|p| p.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "zhongtai:auth",
            "zhongtai:credit",
            "zhongtai:license",
            "zhongtai:payment"
        ]
    );
}

#[test]
fn a_version_never_changes() {
    let (registry, _dir) = registry();
    let auth = guest_bytes("zhongtai-auth");
    assert!(
        registry
            .publish(request("zhongtai:auth", "1.0.0", auth.clone(), None))
            .unwrap()
            .created
    );
    let again = registry
        .publish(request("zhongtai:auth", "1.0.0", auth, None))
        .unwrap();
    assert!(!again.created, "the same bytes again change nothing");
    let other = registry
        .publish(request(
            "zhongtai:auth",
            "1.0.0",
            guest_bytes("zhongtai-credit"),
            None,
        ))
        .unwrap_err();
    assert_eq!(other.code(), "version-exists");
    assert!(
        other
            .to_string()
            .contains("a published version never changes"),
        "{other}"
    );
}

#[test]
fn resolution_skips_yanked_versions_but_locks_still_fetch_them() {
    let (registry, _dir) = registry();
    let bytes = guest_bytes("fixture-sampler");
    for version in ["1.0.0", "1.1.0", "1.2.0-beta.1", "2.0.0"] {
        registry
            .publish(request("example:sampler", version, bytes.clone(), None))
            .unwrap();
    }
    assert_eq!(
        resolve(&registry, "example:sampler", "^1").unwrap(),
        "1.1.0"
    );
    assert_eq!(
        resolve(&registry, "example:sampler", "^1.2.0-beta").unwrap(),
        "1.2.0-beta.1"
    );
    let name = PackageName::parse("example:sampler").unwrap();
    let yanked = registry
        .set_yanked(&name, &parse_version("1.1.0").unwrap(), true)
        .unwrap();
    assert!(yanked.yanked);
    assert_eq!(
        resolve(&registry, "example:sampler", "^1").unwrap(),
        "1.0.0"
    );
    // A lock pins the exact version: still found, still fetchable.
    let locked = resolve_version(&registry, &name, &parse_requirement("=1.1.0").unwrap()).unwrap();
    assert!(locked.yanked);
    assert_eq!(
        fetch(&registry, &locked, &TrustPolicy::default()).unwrap(),
        bytes
    );
    registry
        .set_yanked(&name, &parse_version("1.0.0").unwrap(), true)
        .unwrap();
    let none = resolve(&registry, "example:sampler", "^1").unwrap_err();
    assert_eq!(none.code(), "no-matching-version");
    assert!(
        none.to_string().contains("1.0.0 (yanked), 1.1.0 (yanked)"),
        "{none}"
    );
    registry
        .set_yanked(&name, &parse_version("1.1.0").unwrap(), false)
        .unwrap();
    assert_eq!(
        resolve(&registry, "example:sampler", "^1").unwrap(),
        "1.1.0"
    );

    // Every change is in the registry's audit trail, in order.
    let trail = zhongtai_audit::Trail::read(registry.store().audit_dir()).unwrap();
    let key = zhongtai_audit::VerifyKey::from_file(&registry.store().audit_dir().join("host.pub"))
        .unwrap();
    zhongtai_audit::verify(&trail, &key).unwrap();
    let changes: Vec<String> = trail
        .select(&Default::default())
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.entry.action.as_deref().unwrap_or_default(),
                r.entry.version.as_deref().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            "publish 1.0.0",
            "publish 1.1.0",
            "publish 1.2.0-beta.1",
            "publish 2.0.0",
            "yank 1.1.0",
            "yank 1.0.0",
            "unyank 1.1.0"
        ]
    );
}

#[test]
fn what_is_not_a_runnable_component_is_refused() {
    let (registry, _dir) = registry();
    let core = registry
        .publish(request(
            "example:core",
            "1.0.0",
            b"\0asm\x01\0\0\0".to_vec(),
            None,
        ))
        .unwrap_err();
    assert_eq!(core.code(), "core-module");
    assert!(
        core.to_string()
            .contains("core WebAssembly module, not a component"),
        "{core}"
    );
    let stranger = registry
        .publish(request(
            "example:stranger",
            "0.1.0",
            guest_bytes("fixture-stranger"),
            None,
        ))
        .unwrap_err();
    assert_eq!(stranger.code(), "missing-imports");
    assert_eq!(
        stranger.to_string(),
        "the component imports what the platform does not provide: example:stranger/oracle@0.1.0"
    );
    let bad_name = PackageName::parse("Zhongtai:Auth").unwrap_err();
    assert!(
        bad_name.to_string().contains("namespace:name"),
        "{bad_name}"
    );
    assert!(parse_version("1.0").is_err());
}

#[test]
fn the_registry_accepts_exactly_what_the_runtime_links() {
    let (registry, _dir) = registry();
    let (runtime, _runtime_dir) = support::runtime(RuntimeLimits::default(), HostConfig::default());
    let packages = [
        "zhongtai-auth",
        "zhongtai-payment",
        "zhongtai-credit",
        "zhongtai-license",
        "fixture-sampler",
    ];
    for (index, package) in packages.into_iter().enumerate() {
        let bytes = guest_bytes(package);
        runtime
            .load(&bytes)
            .unwrap_or_else(|e| panic!("{package} does not link: {e}"));
        registry
            .publish(request(
                "example:check",
                &format!("0.0.{index}"),
                bytes,
                None,
            ))
            .unwrap_or_else(|e| panic!("{package} refused: {e}"));
    }
    let stranger = runtime.load(&guest_bytes("fixture-stranger")).unwrap_err();
    assert!(matches!(stranger, LoadError::Link(_)), "{stranger}");
}

/// A registry from elsewhere whose `blob` returns what it is given,
/// unchecked, over a local one.
struct Unchecked {
    inner: LocalRegistry,
    bytes: Vec<u8>,
}

impl Registry for Unchecked {
    fn publish(
        &self,
        request: PublishRequest,
    ) -> Result<zhongtai_registry::PublishOutcome, RegistryError> {
        self.inner.publish(request)
    }
    fn package(&self, name: &PackageName) -> Result<zhongtai_registry::PackageInfo, RegistryError> {
        self.inner.package(name)
    }
    fn search(&self, query: &str) -> Result<Vec<zhongtai_registry::PackageSummary>, RegistryError> {
        self.inner.search(query)
    }
    fn blob(&self, _digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        Ok(self.bytes.clone())
    }
    fn set_yanked(
        &self,
        name: &PackageName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<zhongtai_registry::VersionRecord, RegistryError> {
        self.inner.set_yanked(name, version, yanked)
    }
}

#[test]
fn fetch_checks_the_bytes_of_a_registry_that_does_not_say_it_does() {
    let (local, _dir) = registry();
    let good = guest_bytes("zhongtai-credit");
    let record = local
        .publish(request("zhongtai:credit", "1.0.0", good.clone(), None))
        .unwrap()
        .record;
    let mut damaged = good.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    let unchecked = Unchecked {
        inner: local,
        bytes: damaged,
    };
    assert!(!unchecked.checks_blobs());
    let refused = fetch(&unchecked, &record, &TrustPolicy::default()).unwrap_err();
    assert_eq!(refused.code(), "blob-corrupt");
    let unchecked = Unchecked {
        bytes: good.clone(),
        ..unchecked
    };
    assert_eq!(
        fetch(&unchecked, &record, &TrustPolicy::default()).unwrap(),
        good
    );
}

#[test]
fn a_blob_damaged_on_disk_is_refused_on_fetch() {
    let (registry, _dir) = registry();
    let record = registry
        .publish(request(
            "zhongtai:credit",
            "1.0.0",
            guest_bytes("zhongtai-credit"),
            None,
        ))
        .unwrap()
        .record;
    let path = registry.store().blob_file(&record.digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let refused = fetch(&registry, &record, &TrustPolicy::default()).unwrap_err();
    assert_eq!(refused.code(), "blob-corrupt");
    assert!(
        refused
            .to_string()
            .contains(&format!("blob {} is damaged", record.digest)),
        "{refused}"
    );
}

#[test]
fn every_signature_failure_is_caught() {
    let (registry, _dir) = registry();
    let publisher = PublisherKey::generate().unwrap();
    let stranger = PublisherKey::generate().unwrap();
    let trusted = TrustPolicy::trusting(vec![publisher.public_key()]);
    let bytes = guest_bytes("zhongtai-license");

    // Unsigned: fine for a permissive client, refused by one that trusts keys.
    let unsigned = registry
        .publish(request("zhongtai:license", "1.0.0", bytes.clone(), None))
        .unwrap()
        .record;
    assert!(fetch(&registry, &unsigned, &TrustPolicy::default()).is_ok());
    let refused = fetch(&registry, &unsigned, &trusted).unwrap_err();
    assert!(refused.to_string().contains("is not signed"), "{refused}");

    // Signed by a key nobody trusts.
    let foreign = registry
        .publish(request(
            "zhongtai:license",
            "1.0.1",
            bytes.clone(),
            Some(&stranger),
        ))
        .unwrap()
        .record;
    let refused = fetch(&registry, &foreign, &trusted).unwrap_err();
    assert!(
        refused.to_string().contains("not a trusted publisher key"),
        "{refused}"
    );

    // A signature over other bytes is refused at publish...
    let mut forged = request("zhongtai:license", "1.0.2", bytes.clone(), None);
    forged.signed = Some(publisher.sign(
        &forged.package,
        &forged.version,
        &Digest::of(b"other bytes"),
    ));
    let refused = registry.publish(forged).unwrap_err();
    assert_eq!(refused.code(), "bad-signature");

    // ...and caught on fetch when a compromised registry serves one anyway.
    let genuine = registry
        .publish(request(
            "zhongtai:license",
            "1.0.3",
            bytes,
            Some(&publisher),
        ))
        .unwrap()
        .record;
    assert!(fetch(&registry, &genuine, &trusted).is_ok());
    let other_version = parse_version("9.9.9").unwrap();
    let transplanted = publisher.sign(&genuine.package, &other_version, &genuine.digest);
    registry
        .store()
        .tamper_signature(&genuine.package, &genuine.version, Some(transplanted))
        .unwrap();
    let tampered = resolve_version(
        &registry,
        &genuine.package,
        &parse_requirement("=1.0.3").unwrap(),
    )
    .unwrap();
    let refused = fetch(&registry, &tampered, &trusted).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("does not match its package, version and bytes"),
        "{refused}"
    );
}
