//! Component state: the durable key-value storage behind the
//! `wasi:keyvalue` import.
//!
//! [`KeyValueStore`] is the small trait the platform imports are written
//! against; [`SledStore`] is the implementation on sled. Every value is stored
//! with a CRC-32 of its bytes in front, so a value damaged on disk is reported
//! as [`StateError::Corrupt`] instead of being handed to a guest. sled's
//! background flush is not durability: callers [`flush`](KeyValueStore::flush)
//! before they acknowledge a write.

use std::path::Path;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The stored bytes do not match their checksum.
    #[error("stored value for key {key:?} in bucket {bucket:?} is corrupt (checksum mismatch)")]
    Corrupt {
        /// The bucket holding the value.
        bucket: String,
        /// The damaged key.
        key: String,
    },
    /// A counter held something other than a decimal `u64`.
    #[error("value for key {key:?} is not a counter (expected a decimal u64)")]
    NotACounter {
        /// The key that was incremented.
        key: String,
    },
    /// A counter would pass `u64::MAX`.
    #[error("counter {key:?} would overflow u64")]
    CounterOverflow {
        /// The key that was incremented.
        key: String,
    },
    /// The storage engine failed.
    #[error("storage engine: {0}")]
    Engine(#[from] sled::Error),
}

/// A page of keys from [`KeyValueStore::list_keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys in byte order.
    pub keys: Vec<String>,
    /// Pass back to get the next page; `None` on the last page.
    pub cursor: Option<u64>,
}

/// Buckets of byte values keyed by string, shared by all component instances.
pub trait KeyValueStore: Send + Sync + 'static {
    /// Returns the value of `key`, or `None` when it does not exist.
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Sets `key` to `value`, replacing any earlier value.
    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), StateError>;
    /// Sets several keys at once: all of them or none.
    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> Result<(), StateError>;
    /// Removes `key`; removing a missing key is not an error.
    fn delete(&self, bucket: &str, key: &str) -> Result<(), StateError>;
    /// Removes several keys at once: all of them or none.
    fn delete_many(&self, bucket: &str, keys: &[String]) -> Result<(), StateError>;
    /// Whether `key` exists.
    fn exists(&self, bucket: &str, key: &str) -> Result<bool, StateError>;
    /// Lists up to `limit` keys, starting at the position `cursor` names.
    fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError>;
    /// Atomically adds `delta` to a decimal counter (a missing key counts as 0)
    /// and returns the new value.
    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), StateError>;
}

/// [`KeyValueStore`] on a sled database: one sled tree per bucket.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
}

const TREE_PREFIX: &str = "kv/";

impl SledStore {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let db = sled::Config::new().path(path).open()?;
        Ok(Self { db })
    }

    /// Opens a store that lives in memory only; for tests and benchmarks.
    pub fn temporary() -> Result<Self, StateError> {
        let db = sled::Config::new().temporary(true).open()?;
        Ok(Self { db })
    }

    fn tree(&self, bucket: &str) -> Result<sled::Tree, StateError> {
        Ok(self.db.open_tree(format!("{TREE_PREFIX}{bucket}"))?)
    }
}

fn seal(value: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(value.len() + 4);
    sealed.extend_from_slice(&crc32fast::hash(value).to_le_bytes());
    sealed.extend_from_slice(value);
    sealed
}

fn unseal(bucket: &str, key: &str, sealed: &[u8]) -> Result<Vec<u8>, StateError> {
    let corrupt = || StateError::Corrupt {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    };
    let (sum, value) = sealed.split_at_checked(4).ok_or_else(corrupt)?;
    let expected = u32::from_le_bytes(sum.try_into().map_err(|_| corrupt())?);
    if crc32fast::hash(value) != expected {
        return Err(corrupt());
    }
    Ok(value.to_vec())
}

impl KeyValueStore for SledStore {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match self.tree(bucket)?.get(key)? {
            Some(sealed) => unseal(bucket, key, &sealed).map(Some),
            None => Ok(None),
        }
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), StateError> {
        self.tree(bucket)?.insert(key, seal(value))?;
        Ok(())
    }

    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        for (key, value) in entries {
            batch.insert(key.as_bytes(), seal(value));
        }
        self.tree(bucket)?.apply_batch(batch)?;
        Ok(())
    }

    fn delete(&self, bucket: &str, key: &str) -> Result<(), StateError> {
        self.tree(bucket)?.remove(key)?;
        Ok(())
    }

    fn delete_many(&self, bucket: &str, keys: &[String]) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        for key in keys {
            batch.remove(key.as_bytes());
        }
        self.tree(bucket)?.apply_batch(batch)?;
        Ok(())
    }

    fn exists(&self, bucket: &str, key: &str) -> Result<bool, StateError> {
        Ok(self.tree(bucket)?.contains_key(key)?)
    }

    fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError> {
        let skip = cursor.unwrap_or(0);
        let mut keys = Vec::new();
        let mut position = skip;
        let tree = self.tree(bucket)?;
        let mut iter = tree
            .iter()
            .keys()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX));
        for key in iter.by_ref().take(limit) {
            keys.push(String::from_utf8_lossy(&key?).into_owned());
            position += 1;
        }
        let more = iter.next().is_some();
        Ok(KeyPage {
            keys,
            cursor: more.then_some(position),
        })
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError> {
        let tree = self.tree(bucket)?;
        loop {
            let current = tree.get(key)?;
            let old = match &current {
                Some(sealed) => {
                    let bytes = unseal(bucket, key, sealed)?;
                    std::str::from_utf8(&bytes)
                        .ok()
                        .and_then(|text| text.parse::<u64>().ok())
                        .ok_or_else(|| StateError::NotACounter {
                            key: key.to_owned(),
                        })?
                }
                None => 0,
            };
            let new = old
                .checked_add(delta)
                .ok_or_else(|| StateError::CounterOverflow {
                    key: key.to_owned(),
                })?;
            let swapped =
                tree.compare_and_swap(key, current, Some(seal(new.to_string().as_bytes())))?;
            if swapped.is_ok() {
                return Ok(new);
            }
        }
    }

    fn flush(&self) -> Result<(), StateError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_corruption_is_detected() {
        let store = SledStore::temporary().unwrap();
        store.set("b", "k", b"hello").unwrap();
        assert_eq!(store.get("b", "k").unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(store.get("other", "k").unwrap(), None);

        // Damage the stored bytes behind the trait's back.
        let tree = store.tree("b").unwrap();
        let mut raw = tree.get("k").unwrap().unwrap().to_vec();
        raw[5] ^= 0xff;
        tree.insert("k", raw).unwrap();
        let err = store.get("b", "k").unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn list_keys_pages_through_every_key_once() {
        let store = SledStore::temporary().unwrap();
        for i in 0..25 {
            store.set("b", &format!("key-{i:02}"), b"v").unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.list_keys("b", cursor, 10).unwrap();
            seen.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        assert_eq!(seen[0], "key-00");
        assert_eq!(seen[24], "key-24");
    }

    #[test]
    fn increment_counts_from_zero_and_rejects_non_counters() {
        let store = SledStore::temporary().unwrap();
        assert_eq!(store.increment("b", "n", 3).unwrap(), 3);
        assert_eq!(store.increment("b", "n", 4).unwrap(), 7);
        store.set("b", "text", b"abc").unwrap();
        assert!(matches!(
            store.increment("b", "text", 1),
            Err(StateError::NotACounter { .. })
        ));
    }

    #[test]
    fn batches_apply_whole() {
        let store = SledStore::temporary().unwrap();
        store
            .set_many(
                "b",
                &[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())],
            )
            .unwrap();
        assert!(store.exists("b", "a").unwrap());
        store.delete_many("b", &["a".into(), "b".into()]).unwrap();
        assert!(!store.exists("b", "a").unwrap() && !store.exists("b", "b").unwrap());
    }
}
