//! JSON ⇄ WIT conversion against the types of the sampler fixture (every
//! kind of WIT value): see `check`.
#![no_main]

use std::sync::{Arc, OnceLock};

use wasmtime::component::types::Type;
use zhongtai_runtime::{HostConfig, Runtime, RuntimeLimits, RuntimeOptions, SqliteStore};

include!("../checks/json_wit.rs");

/// The runtime that loaded the sampler, and every parameter type the
/// sampler's functions take (the types need the runtime's engine: both are
/// kept for the life of the process).
fn types() -> &'static Vec<Type> {
    static LOADED: OnceLock<(Runtime, Vec<Type>)> = OnceLock::new();
    &LOADED
        .get_or_init(|| {
            let path = std::env::var("SAMPLER_WASM").unwrap_or_else(|_| {
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../target/wasm32-wasip2/guest/fixture_sampler.wasm"
                )
                .to_owned()
            });
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{path}: {e}; build the fixture first (tests/fuzz/run.sh does)")
            });
            let runtime = Runtime::new(RuntimeOptions {
                limits: RuntimeLimits {
                    max_concurrent_instances: 1,
                    ..RuntimeLimits::default()
                },
                cache_dir: None,
                config: HostConfig::default(),
                store: Arc::new(SqliteStore::temporary().unwrap()),
                compiler: Default::default(),
            })
            .unwrap();
            let types = parameter_types(&runtime.load(&bytes).unwrap());
            (runtime, types)
        })
        .1
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(types(), data));
