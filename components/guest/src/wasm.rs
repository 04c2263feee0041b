//! [`Storage`] and [`Platform`] on the platform imports.

use std::cell::OnceCell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Platform, Storage};

/// Bindings of `zhongtai:platform/capability`, for components to reuse with
/// `wit_bindgen::generate!({ with: { … } })`.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: [
            "../../wit/deps/keyvalue",
            "../../wit/deps/config",
            "../../wit/deps/logging",
            "../../wit/platform",
        ],
        world: "zhongtai:platform/capability",
        generate_all,
    });
}

/// Generates a capability component's bindings for its world, reusing the
/// platform bindings above:
/// `capability_bindings!("../../wit/auth", "zhongtai:auth/component");`
/// (wit-bindgen needs both as literals).
#[macro_export]
macro_rules! capability_bindings {
    ($wit:literal, $world:literal) => {
        wit_bindgen::generate!({
            path: [
                "../../wit/deps/keyvalue",
                "../../wit/deps/config",
                "../../wit/deps/logging",
                "../../wit/platform",
                $wit,
            ],
            world: $world,
            with: {
                "wasi:keyvalue/store@0.2.0-draft": ::zhongtai_guest::wasm::bindings::wasi::keyvalue::store,
                "wasi:keyvalue/atomics@0.2.0-draft": ::zhongtai_guest::wasm::bindings::wasi::keyvalue::atomics,
                "wasi:keyvalue/batch@0.2.0-draft": ::zhongtai_guest::wasm::bindings::wasi::keyvalue::batch,
                "wasi:config/store@0.2.0-rc.1": ::zhongtai_guest::wasm::bindings::wasi::config::store,
                "wasi:logging/logging@0.1.0-draft": ::zhongtai_guest::wasm::bindings::wasi::logging::logging,
                "zhongtai:platform/context@1.0.0": ::zhongtai_guest::wasm::bindings::zhongtai::platform::context,
                "zhongtai:platform/locks@1.0.0": ::zhongtai_guest::wasm::bindings::zhongtai::platform::locks,
            },
            generate_all,
        });
    };
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use bindings::zhongtai::platform::{context, locks};

/// The package's `default` bucket, opened on first use within a call.
#[derive(Default)]
pub struct Bucket(OnceCell<store::Bucket>);

impl Bucket {
    fn open(&self) -> Result<&store::Bucket, String> {
        if self.0.get().is_none() {
            let bucket = store::open("default").map_err(|e| format!("keyvalue open: {e:?}"))?;
            let _ = self.0.set(bucket);
        }
        self.0
            .get()
            .ok_or_else(|| "keyvalue bucket unavailable".to_owned())
    }
}

impl Storage for Bucket {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.open()?
            .get(key)
            .map_err(|e| format!("keyvalue get: {e:?}"))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.open()?
            .set(key, value)
            .map_err(|e| format!("keyvalue set: {e:?}"))
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        self.open()?
            .delete(key)
            .map_err(|e| format!("keyvalue delete: {e:?}"))
    }
    fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        batch::set_many(self.open()?, &entries).map_err(|e| format!("keyvalue set-many: {e:?}"))
    }
    fn increment(&self, key: &str, delta: u64) -> Result<u64, String> {
        atomics::increment(self.open()?, key, delta)
            .map_err(|e| format!("keyvalue increment: {e:?}"))
    }
}

/// The host, as the platform imports present it.
pub struct Host;

impl Platform for Host {
    type Guard = locks::Guard;

    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    fn random(&self, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            // Without randomness no salt, key or id is safe to hand out.
            panic!("wasi:random is unavailable");
        }
    }

    fn config(&self, key: &str) -> Option<String> {
        bindings::wasi::config::store::get(key).ok().flatten()
    }

    fn caller_department(&self) -> String {
        context::current().department
    }

    fn lock(&self, name: &str) -> Result<locks::Guard, String> {
        locks::acquire(name).map_err(|e| format!("lock {name:?}: {e:?}"))
    }
}
