//! What every capability component shares.
//!
//! A component's domain logic is written against two ports: [`Storage`] (its
//! package's key-value bucket) and [`Platform`] (clock, randomness,
//! configuration, the calling department, locks). Built for wasm, `wasm`
//! implements them on the platform imports (`wasi:keyvalue`, `wasi:config`,
//! `wasi:random`, `zhongtai:platform/context` and `locks`), and its
//! `wasm::bindings` are reused by each component's own `wit_bindgen::generate!`
//! through `with`, so the imports are bound once. Natively, [`testing`] gives
//! in-memory doubles for unit and property tests.

/// A component's key-value bucket.
pub trait Storage {
    /// The value of `key`, or `None`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Sets `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Removes `key`; a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), String>;
    /// Writes every entry at once, or none.
    fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), String>;
    /// Atomically adds `delta` to a counter (missing counts as 0) and returns
    /// the new value.
    fn increment(&self, key: &str, delta: u64) -> Result<u64, String>;
}

/// Everything else a component needs from where it runs.
pub trait Platform {
    /// A held lock; dropping it releases it.
    type Guard;
    /// Unix seconds now.
    fn now(&self) -> u64;
    /// Fills `buf` with cryptographically secure random bytes.
    fn random(&self, buf: &mut [u8]);
    /// A configuration value of the component's package.
    fn config(&self, key: &str) -> Option<String>;
    /// The department making the call.
    fn caller_department(&self) -> String;
    /// Waits for the named lock and takes it.
    fn lock(&self, name: &str) -> Result<Self::Guard, String>;
}

/// Reads the JSON record at `key`; one that does not parse is an error
/// naming its key.
pub fn load_json<T: serde::de::DeserializeOwned>(
    store: &impl Storage,
    key: &str,
) -> Result<Option<T>, String> {
    match store.get(key)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("stored record {key:?} is unreadable: {e}")),
        None => Ok(None),
    }
}

/// The JSON form of a record, for [`Storage::set`] and [`Storage::set_many`].
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("cannot encode record: {e}"))
}

#[cfg(target_arch = "wasm32")]
pub mod wasm;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
