//! `wasi:keyvalue` on the host's [`KeyValueStore`].
//!
//! A component can only reach buckets of its own package: `open("x")` in a
//! component of `zhongtai:auth` opens `zhongtai:auth/x`, whichever department
//! calls and whichever version runs. Sizes a guest controls are bounded, and
//! storage failures reach the guest as `error.other`, never as a trap.

use wasmtime::component::Resource;

use super::HostState;
use super::wasi::keyvalue::{atomics, batch, store};
use crate::store::StoreError;

/// Longest key a guest may use, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value a guest may store, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most keys in one batch call.
pub const MAX_BATCH_KEYS: usize = 1000;
/// Keys returned by one `list-keys` page.
pub const LIST_PAGE_KEYS: usize = 1000;

/// An open bucket: the full name of the storage bucket it stands for.
pub struct Bucket {
    name: String,
}

type KvResult<T> = wasmtime::Result<Result<T, store::Error>>;

fn storage(error: StoreError) -> store::Error {
    tracing::error!(%error, "keyvalue storage failure");
    store::Error::Other(error.to_string())
}

fn check_key(key: &str) -> Result<(), store::Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(store::Error::Other(format!(
            "key must be 1 to {MAX_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), store::Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(store::Error::Other(format!(
            "value must be at most {MAX_VALUE_BYTES} bytes, got {}",
            value.len()
        )));
    }
    Ok(())
}

fn check_batch(count: usize) -> Result<(), store::Error> {
    if count > MAX_BATCH_KEYS {
        return Err(store::Error::Other(format!(
            "a batch holds at most {MAX_BATCH_KEYS} keys, got {count}"
        )));
    }
    Ok(())
}

impl HostState {
    fn bucket_name(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.name.clone())
    }
}

impl store::Host for HostState {
    fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        let valid = (1..=64).contains(&identifier.len())
            && identifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Ok(Err(store::Error::NoSuchStore));
        }
        let name = format!("{}/{identifier}", self.package);
        Ok(Ok(self.table.push(Bucket { name })?))
    }
}

impl store::HostBucket for HostState {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        let name = self.bucket_name(&bucket)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.kv.get(&name, &key).map_err(storage))
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        if let Err(e) = check_key(&key).and_then(|()| check_value(&value)) {
            return Ok(Err(e));
        }
        self.wrote = true;
        Ok(self.kv.set(&name, &key, &value).map_err(storage))
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        self.wrote = true;
        Ok(self.kv.delete(&name, &key).map_err(storage))
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<bool> {
        let name = self.bucket_name(&bucket)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.kv.exists(&name, &key).map_err(storage))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> KvResult<store::KeyResponse> {
        let name = self.bucket_name(&bucket)?;
        Ok(self
            .kv
            .list_keys(&name, cursor, LIST_PAGE_KEYS)
            .map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(storage))
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: u64) -> KvResult<u64> {
        let name = self.bucket_name(&bucket)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        self.wrote = true;
        Ok(self.kv.increment(&name, &key, delta).map_err(storage))
    }
}

impl batch::Host for HostState {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<Option<(String, Vec<u8>)>>> {
        let name = self.bucket_name(&bucket)?;
        if let Err(e) = check_batch(keys.len()) {
            return Ok(Err(e));
        }
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            if let Err(e) = check_key(&key) {
                return Ok(Err(e));
            }
            match self.kv.get(&name, &key) {
                Ok(value) => found.push(value.map(|v| (key, v))),
                Err(e) => return Ok(Err(storage(e))),
            }
        }
        Ok(Ok(found))
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        let checked = check_batch(key_values.len()).and_then(|()| {
            key_values
                .iter()
                .try_for_each(|(key, value)| check_key(key).and_then(|()| check_value(value)))
        });
        if let Err(e) = checked {
            return Ok(Err(e));
        }
        self.wrote = true;
        Ok(self.kv.set_many(&name, &key_values).map_err(storage))
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        let checked =
            check_batch(keys.len()).and_then(|()| keys.iter().try_for_each(|k| check_key(k)));
        if let Err(e) = checked {
            return Ok(Err(e));
        }
        self.wrote = true;
        Ok(self.kv.delete_many(&name, &keys).map_err(storage))
    }
}
