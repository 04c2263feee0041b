//! Deploy-time checks against the components' WIT signatures, as golden
//! files: every manifest under `tests/manifests/deploy-bad/` is refused with
//! exactly the text in the `.err` beside it; and a lock file's digest must
//! match what the registry serves.

mod support;

use std::path::Path;

use zhongtai_manifest::lock::{Lock, LockedComponent};
use zhongtai_registry::name::parse_version;
use zhongtai_registry::{
    Digest, LocalRegistry, PackageName, PublishRequest, Registry, TrustPolicy,
};
use zhongtai_runtime::{HostConfig, RuntimeLimits};

fn registry_with_capabilities(dir: &Path) -> LocalRegistry {
    let registry =
        LocalRegistry::open(dir, zhongtai_runtime::platform::provided_interfaces()).unwrap();
    for name in ["auth", "payment"] {
        registry
            .publish(PublishRequest {
                package: PackageName::parse(&format!("zhongtai:{name}")).unwrap(),
                version: parse_version("1.0.0").unwrap(),
                bytes: support::guest_bytes(&format!("zhongtai-{name}")),
                signed: None,
            })
            .unwrap();
    }
    registry
}

#[test]
fn manifests_that_do_not_fit_their_components_are_refused_at_deploy() {
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = registry_with_capabilities(registry_dir.path());
    let (runtime, _dir) = support::runtime(RuntimeLimits::default(), HostConfig::default());
    let dir = support::root().join("tests/manifests/deploy-bad");
    let mut manifests: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 7, "the golden set shrank");
    let mut failures = Vec::new();
    for path in manifests {
        let file = format!("deploy-bad/{}", path.file_name().unwrap().to_string_lossy());
        let checked = zhongtai_manifest::parse(&std::fs::read_to_string(&path).unwrap(), &file)
            .unwrap_or_else(|e| panic!("{file} should pass structural checks: {e}"));
        let actual = match zhongtai_api::deploy(
            checked,
            &file,
            None,
            &registry,
            &TrustPolicy::default(),
            &runtime,
        ) {
            Ok(_) => "(deployed)\n".to_owned(),
            Err(e) => format!("{e}\n"),
        };
        let expected_path = path.with_extension("err");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{file}\n  expected: {expected}  actual:   {actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_lock_pins_versions_and_refuses_a_different_digest() {
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = registry_with_capabilities(registry_dir.path());
    let (runtime, _dir) = support::runtime(RuntimeLimits::default(), HostConfig::default());
    let manifest = support::root().join("examples/taxation/zhongtai.toml");
    let checked = zhongtai_manifest::load(&manifest).unwrap();
    // taxation also needs credit.
    registry
        .publish(PublishRequest {
            package: PackageName::parse("zhongtai:credit").unwrap(),
            version: parse_version("1.0.0").unwrap(),
            bytes: support::guest_bytes("zhongtai-credit"),
            signed: None,
        })
        .unwrap();
    let lock = zhongtai_api::lock(&checked, &registry).unwrap();
    assert_eq!(lock.components.len(), 2);
    assert_eq!(Lock::parse(&lock.to_text()).unwrap(), lock);
    let deployed = zhongtai_api::deploy(
        checked.clone(),
        "taxation",
        Some(&lock),
        &registry,
        &TrustPolicy::default(),
        &runtime,
    );
    assert!(deployed.is_ok());

    // A newer version appears: the lock keeps the old one.
    registry
        .publish(PublishRequest {
            package: PackageName::parse("zhongtai:payment").unwrap(),
            version: parse_version("1.1.0").unwrap(),
            bytes: support::guest_bytes("zhongtai-payment"),
            signed: None,
        })
        .unwrap();
    let deployed = zhongtai_api::deploy(
        checked.clone(),
        "taxation",
        Some(&lock),
        &registry,
        &TrustPolicy::default(),
        &runtime,
    )
    .unwrap();
    assert_eq!(deployed.components["payment"].version.to_string(), "1.0.0");

    // A lock whose digest differs from the registry's blob is refused.
    let mut tampered = lock.clone();
    let pinned: &mut LockedComponent = tampered
        .components
        .iter_mut()
        .find(|c| c.alias == "payment")
        .unwrap();
    pinned.digest = Digest::of(b"something else").to_string();
    let error = zhongtai_api::deploy(
        checked,
        "taxation",
        Some(&tampered),
        &registry,
        &TrustPolicy::default(),
        &runtime,
    )
    .err()
    .expect("refused");
    assert!(
        error.to_string().contains("but zhongtai.lock pins sha256:"),
        "{error}"
    );
}
