//! Deploy-time checks against the components' WIT signatures, as golden
//! files: every manifest under `tests/manifests/deploy-bad/` is refused with
//! exactly the text in the `.err` beside it; and a lock file's digest must
//! match what the registry serves.

use crate::support;

use std::path::Path;

use zhongtai_manifest::lock::{Lock, LockedComponent};
use zhongtai_registry::name::parse_version;
use zhongtai_registry::{
    Digest, LocalRegistry, PackageName, PublishRequest, Registry, TrustPolicy,
};
use zhongtai_runtime::{HostConfig, RuntimeLimits};

/// Publishes the built guest `guest` as `package@version`, unsigned.
fn publish(registry: &LocalRegistry, package: &str, version: &str, guest: &str) {
    registry
        .publish(PublishRequest {
            package: PackageName::parse(package).unwrap(),
            version: parse_version(version).unwrap(),
            bytes: support::guest_bytes(guest),
            signed: None,
        })
        .unwrap();
}

fn registry_with_capabilities(dir: &Path) -> LocalRegistry {
    let registry =
        LocalRegistry::open(dir, zhongtai_runtime::platform::provided_interfaces()).unwrap();
    for name in ["auth", "payment"] {
        publish(
            &registry,
            &format!("zhongtai:{name}"),
            "1.0.0",
            &format!("zhongtai-{name}"),
        );
    }
    registry
}

#[test]
fn manifests_that_do_not_fit_their_components_are_refused_at_deploy() {
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = registry_with_capabilities(registry_dir.path());
    let (runtime, _dir) = support::runtime(RuntimeLimits::default(), HostConfig::default());
    support::assert_golden_dir("manifests/deploy-bad", 10, |file, text| {
        let checked = zhongtai_manifest::parse(text, file)
            .unwrap_or_else(|e| panic!("{file} should pass structural checks: {e}"));
        match zhongtai_api::deploy(
            checked,
            file,
            None,
            &registry,
            &TrustPolicy::default(),
            &runtime,
        ) {
            Ok(_) => "(deployed)\n".to_owned(),
            Err(e) => format!("{e}\n"),
        }
    });
}

#[test]
fn a_lock_pins_versions_and_refuses_a_different_digest() {
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = registry_with_capabilities(registry_dir.path());
    let (runtime, _dir) = support::runtime(RuntimeLimits::default(), HostConfig::default());
    let manifest = support::root().join("examples/taxation/zhongtai.toml");
    let checked = zhongtai_manifest::load(&manifest).unwrap();
    // taxation also needs credit.
    publish(&registry, "zhongtai:credit", "1.0.0", "zhongtai-credit");
    let lock = zhongtai_api::lock(&checked, "taxation", &registry).unwrap();
    assert_eq!(lock.components.len(), 3);
    assert_eq!(Lock::parse(&lock.to_text()).unwrap(), lock);
    let deploy = |lock: &Lock| {
        zhongtai_api::deploy(
            checked.clone(),
            "taxation",
            Some(lock),
            &registry,
            &TrustPolicy::default(),
            &runtime,
        )
    };
    assert!(deploy(&lock).is_ok());

    // A newer version appears: the lock keeps the old one.
    publish(&registry, "zhongtai:payment", "1.1.0", "zhongtai-payment");
    let deployed = deploy(&lock).unwrap();
    assert_eq!(deployed.components["payment"].version.to_string(), "1.0.0");

    // A lock whose digest differs from the registry's blob is refused.
    let mut tampered = lock.clone();
    let pinned: &mut LockedComponent = tampered
        .components
        .iter_mut()
        .find(|c| c.alias == "payment")
        .unwrap();
    pinned.digest = Digest::of(b"something else").to_string();
    let error = deploy(&tampered).err().expect("refused");
    assert!(
        error.to_string().contains("but zhongtai.lock pins sha256:"),
        "{error}"
    );
}
