//! JSON ⇄ WIT conversion against the types of the sampler fixture (every
//! kind of WIT value): any JSON is converted to each parameter type or
//! refused with a path, never a panic; and what converts, converted back
//! to JSON and again to WIT, gives the same JSON (the mapping is stable).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use wasmtime::component::types::Type;
use zhongtai_runtime::values::{json_to_val, val_to_json};
use zhongtai_runtime::{HostConfig, Runtime, RuntimeLimits, RuntimeOptions, SqliteStore};

/// Every parameter type the sampler's functions take.
fn types() -> &'static Vec<Type> {
    static TYPES: OnceLock<Vec<Type>> = OnceLock::new();
    TYPES.get_or_init(|| {
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
        })
        .unwrap();
        let sampler = runtime.load(&bytes).unwrap();
        let types = sampler
            .interfaces()
            .values()
            .flat_map(|exported| exported.functions.values())
            .flat_map(|function| function.params.iter().map(|(_, ty)| ty.clone()))
            .collect();
        // The runtime goes, the types stay valid on their own.
        std::mem::forget(runtime);
        types
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for ty in types() {
        let Ok(val) = json_to_val(ty, &json) else {
            continue;
        };
        let Ok(back) = val_to_json(&val) else {
            continue;
        };
        let again = json_to_val(ty, &back).expect("JSON made from a value converts back");
        assert_eq!(val_to_json(&again).expect("converts again"), back);
    }
});
