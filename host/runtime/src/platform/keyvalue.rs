//! `wasi:keyvalue` on the host's [`KeyValueStore`].
//!
//! Reads and writes go through the call's transaction
//! (`platform::transaction`): a call sees its own writes, and they reach the
//! store together when it returns. A component can only reach buckets of
//! its own package: `open("x")` in a
//! component of `zhongtai:auth` opens `zhongtai:auth/x`, whichever department
//! calls and whichever version runs. Sizes a guest controls are bounded, and
//! storage failures reach the guest as `error.other`, never as a trap;
//! only a handle the guest does not hold traps.

use wasmtime::component::Resource;

use super::HostState;
use super::wasi::keyvalue::{atomics, batch, store};
use crate::state::StateError;

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

/// Why a keyvalue call failed: an error the guest is given
/// (`wasi:keyvalue/store.error`), or a trap, for a handle the guest does not
/// hold. Bindgen maps it with `trappable_error_type`, so the functions below
/// use `?` for both.
pub enum KeyValueError {
    /// Returned to the guest.
    Guest(store::Error),
    /// Ends the call.
    Trap(wasmtime::Error),
}

type KvResult<T> = Result<T, KeyValueError>;

impl From<StateError> for KeyValueError {
    fn from(error: StateError) -> Self {
        tracing::error!(%error, "keyvalue storage failure");
        Self::Guest(store::Error::Other(error.to_string()))
    }
}

impl From<wasmtime::component::ResourceTableError> for KeyValueError {
    fn from(error: wasmtime::component::ResourceTableError) -> Self {
        Self::Trap(error.into())
    }
}

fn refuse(message: String) -> KeyValueError {
    KeyValueError::Guest(store::Error::Other(message))
}

fn check_key(key: &str) -> KvResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(refuse(format!(
            "key must be 1 to {MAX_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> KvResult<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(refuse(format!(
            "value must be at most {MAX_VALUE_BYTES} bytes, got {}",
            value.len()
        )));
    }
    Ok(())
}

fn check_batch(count: usize) -> KvResult<()> {
    if count > MAX_BATCH_KEYS {
        return Err(refuse(format!(
            "a batch holds at most {MAX_BATCH_KEYS} keys, got {count}"
        )));
    }
    Ok(())
}

/// Whether `identifier` names a bucket: 1 to 64 ASCII letters, digits, `-`
/// or `_` (it becomes part of the stored bucket's name).
fn is_bucket_identifier(identifier: &str) -> bool {
    (1..=64).contains(&identifier.len())
        && identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl HostState {
    fn bucket_name(&self, bucket: &Resource<Bucket>) -> KvResult<String> {
        Ok(self.table.get(bucket)?.name.clone())
    }
}

impl store::Host for HostState {
    fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        if !is_bucket_identifier(&identifier) {
            return Err(KeyValueError::Guest(store::Error::NoSuchStore));
        }
        let name = format!("{}/{identifier}", self.package);
        Ok(self.table.push(Bucket { name })?)
    }

    fn convert_error(&mut self, error: KeyValueError) -> wasmtime::Result<store::Error> {
        match error {
            KeyValueError::Guest(error) => Ok(error),
            KeyValueError::Trap(trap) => Err(trap),
        }
    }
}

impl store::HostBucket for HostState {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        let name = self.bucket_name(&bucket)?;
        check_key(&key)?;
        let (transaction, session) = self.state()?;
        Ok(transaction.get(session, &name, &key)?)
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        check_key(&key)?;
        check_value(&value)?;
        self.transaction.put(&name, &key, Some(value));
        Ok(())
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        check_key(&key)?;
        self.transaction.put(&name, &key, None);
        Ok(())
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<bool> {
        let name = self.bucket_name(&bucket)?;
        check_key(&key)?;
        let (transaction, session) = self.state()?;
        Ok(transaction.get(session, &name, &key)?.is_some())
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> KvResult<store::KeyResponse> {
        let name = self.bucket_name(&bucket)?;
        let (transaction, session) = self.state()?;
        let page = transaction.list_keys(session, &name, cursor, LIST_PAGE_KEYS)?;
        Ok(store::KeyResponse {
            keys: page.keys,
            cursor: page.cursor,
        })
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: u64) -> KvResult<u64> {
        let name = self.bucket_name(&bucket)?;
        check_key(&key)?;
        let (transaction, session) = self.state()?;
        Ok(transaction.increment(session, &name, &key, delta)?)
    }
}

impl batch::Host for HostState {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<Option<(String, Vec<u8>)>>> {
        let name = self.bucket_name(&bucket)?;
        check_batch(keys.len())?;
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            check_key(&key)?;
            let (transaction, session) = self.state()?;
            let value = transaction.get(session, &name, &key)?;
            found.push(value.map(|v| (key, v)));
        }
        Ok(found)
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        check_batch(key_values.len())?;
        for (key, value) in &key_values {
            check_key(key)?;
            check_value(value)?;
        }
        for (key, value) in key_values {
            self.transaction.put(&name, &key, Some(value));
        }
        Ok(())
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        check_batch(keys.len())?;
        for key in &keys {
            check_key(key)?;
        }
        for key in &keys {
            self.transaction.put(&name, key, None);
        }
        Ok(())
    }
}
