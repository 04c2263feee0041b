//! The fuzz targets' checks (`tests/fuzz/checks`) over their committed
//! corpora (`tests/fuzz/corpus`): every input the fuzzers kept, and every
//! crash they once found, replayed on each test run with stable Rust. The
//! fuzzing itself (`tests/fuzz/run.sh`, nightly) stays out of the test run.

use std::path::PathBuf;

use crate::support;

mod manifest {
    include!("../fuzz/checks/manifest.rs");
}
mod registry_names {
    include!("../fuzz/checks/registry_names.rs");
}
mod audit_trail {
    include!("../fuzz/checks/audit_trail.rs");
}
mod json_wit {
    include!("../fuzz/checks/json_wit.rs");
}

/// The inputs of `target`'s corpus, at least `at_least` of them.
fn corpus(target: &str, at_least: usize) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = support::root().join("tests/fuzz/corpus").join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= at_least,
        "{} holds {} inputs",
        dir.display(),
        inputs.len()
    );
    inputs
}

/// Runs `check` on every input, naming the one that fails.
fn replay(target: &str, at_least: usize, mut check: impl FnMut(&[u8])) {
    for (path, bytes) in corpus(target, at_least) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        if let Err(panic) = outcome {
            std::panic::resume_unwind(Box::new(format!(
                "{} fails: {}",
                path.display(),
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            )));
        }
    }
}

#[test]
fn the_manifest_corpus_passes() {
    replay("manifest", 20, manifest::check);
}

#[test]
fn the_registry_names_corpus_passes() {
    replay("registry_names", 10, registry_names::check);
}

#[test]
fn the_audit_trail_corpus_passes() {
    let dir = tempfile::tempdir().unwrap();
    replay("audit_trail", 2, |data| {
        audit_trail::check(data, dir.path())
    });
}

#[test]
fn the_json_wit_corpus_passes() {
    let (runtime, _dir) = support::runtime(
        zhongtai_runtime::RuntimeLimits::default(),
        zhongtai_runtime::HostConfig::default(),
    );
    let sampler = support::load(&runtime, "fixture-sampler");
    let types = json_wit::parameter_types(&sampler);
    assert!(types.len() > 10, "{} parameter types", types.len());
    replay("json_wit", 10, |data| json_wit::check(&types, data));
}
