//! Component state: the durable key-value storage behind the
//! `wasi:keyvalue` import.
//!
//! [`KeyValueStore`] is the small trait the platform imports are written
//! against; [`SqliteStore`] is the embedded implementation on SQLite (WAL,
//! `synchronous=FULL`), the default, and [`PostgresStore`] the one several
//! hosts share, whose named locks hold across hosts. A call's writes reach the store as one
//! [`commit`](KeyValueStore::commit) when the call returns (see
//! `platform::transaction`): all of them or none, durable before the call's
//! answer is given, and the commits of concurrent calls share one flush.
//! A store may split a commit in two ([`apply`](KeyValueStore::apply),
//! then [`wait_durable`](KeyValueStore::wait_durable)): the embedded store
//! makes a call's writes visible first, so that the call can let go of its
//! locks, and flushes them afterwards, many calls' writes in one flush; the
//! call still answers only once they are on disk, and so does every call
//! that read them (see `platform::HostState::commit`). That keeps a lock
//! held for the time of a write, not of a disk flush, so calls that take
//! the same lock (every fee paid to one department) are not bound to one
//! flush each.
//! Counters ([`increment`](KeyValueStore::increment)) are the exception:
//! like a database sequence they advance at once, outside the call's
//! transaction, so a number taken by a call that fails is skipped, never
//! handed out twice.
//!
//! Every value is stored with a CRC-32 of its bytes in front, so a value
//! damaged on disk is reported as [`StateError::Corrupt`] instead of being
//! handed to a guest. A data directory written by an earlier version (a
//! sled store) is imported on first start ([`import_sled`]).

mod import;
mod postgres;
mod sqlite;

use std::sync::Arc;
use std::time::Instant;

pub use import::import_sled;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

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
    Engine(String),
}

impl From<rusqlite::Error> for StateError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Engine(error.to_string())
    }
}

/// How far a store's applied writes go: it counts the commits (and
/// counters) applied, so a higher mark covers every lower one.
pub type Mark = u64;

/// The package a stored bucket's name (`package/identifier`) belongs to.
pub(crate) fn bucket_package(bucket: &str) -> &str {
    bucket
        .rsplit_once('/')
        .map_or(bucket, |(package, _)| package)
}

/// A page of keys from [`KeyValueStore::list_keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys in byte order.
    pub keys: Vec<String>,
    /// Pass back to get the next page; `None` on the last page.
    pub cursor: Option<u64>,
}

impl KeyPage {
    /// The page of a listing that started at position `skip` and fetched
    /// up to `limit + 1` keys: the extra key, dropped, tells that there is
    /// a next page.
    pub(crate) fn from_overfetch(mut keys: Vec<String>, skip: u64, limit: usize) -> Self {
        let more = keys.len() > limit;
        keys.truncate(limit);
        let cursor = more.then(|| skip + keys.len() as u64);
        Self { keys, cursor }
    }
}

/// One change of a commit: `key` of `bucket` set to `value`, or deleted
/// when `value` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The new value; `None` deletes.
    pub value: Option<Vec<u8>>,
}

/// What one call does with a store: its reads, counters, locks shared
/// with the other hosts on the store, and its commit. A call opens one
/// session when it first touches state and ends it when it returns; on
/// PostgreSQL a session is one connection, so a busy host uses a bounded
/// number of them whatever its calls do.
pub trait Session: Send {
    /// As [`KeyValueStore::get`].
    fn get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// As [`KeyValueStore::list_keys`].
    fn list_keys(
        &mut self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError>;
    /// As [`KeyValueStore::increment`].
    fn increment(&mut self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError>;
    /// Takes the lock `name` for every host sharing the store, waiting
    /// until `deadline`; `false` when the wait timed out. Held until
    /// [`Session::unlock_all`]. A store one host uses alone needs nothing
    /// beyond the host's own lock table and answers `true` at once.
    fn lock(&mut self, name: &str, deadline: Instant) -> Result<bool, StateError>;
    /// As [`KeyValueStore::commit`].
    fn commit(&mut self, writes: Vec<Write>) -> Result<(), StateError>;
    /// As [`KeyValueStore::apply`].
    fn apply(&mut self, writes: Vec<Write>) -> Result<Mark, StateError>;
    /// Releases every lock [`Session::lock`] took.
    fn unlock_all(&mut self);
}

/// A session that goes straight to its store: for stores one host uses.
struct Direct<S: ?Sized>(Arc<S>);

impl<S: KeyValueStore + ?Sized> Session for Direct<S> {
    fn get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.0.get(bucket, key)
    }

    fn list_keys(
        &mut self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError> {
        self.0.list_keys(bucket, cursor, limit)
    }

    fn increment(&mut self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError> {
        self.0.increment(bucket, key, delta)
    }

    fn lock(&mut self, _name: &str, _deadline: Instant) -> Result<bool, StateError> {
        Ok(true)
    }

    fn commit(&mut self, writes: Vec<Write>) -> Result<(), StateError> {
        self.0.commit(writes)
    }

    fn apply(&mut self, writes: Vec<Write>) -> Result<Mark, StateError> {
        self.0.apply(writes)
    }

    fn unlock_all(&mut self) {}
}

/// Buckets of byte values keyed by string, shared by all component instances.
pub trait KeyValueStore: Send + Sync + 'static {
    /// Returns the value of `key`, or `None` when it does not exist.
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Lists up to `limit` keys, starting at the position `cursor` names.
    fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError>;
    /// Atomically adds `delta` to a decimal counter (a missing key counts
    /// as 0) and returns the new value, at once, outside any commit; like
    /// an applied commit, it is durable once
    /// [`KeyValueStore::wait_durable`] of its package's
    /// [`applied_mark`](KeyValueStore::applied_mark) returns.
    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError>;
    /// Applies `writes` in order, all or none, durably before it returns.
    fn commit(&self, writes: Vec<Write>) -> Result<(), StateError>;

    /// Applies `writes` in order, all or none, so that every read from now
    /// on sees them, possibly before they are durable; they are durable
    /// once [`KeyValueStore::wait_durable`] of the returned mark returns.
    /// A store whose commits are durable at once returns mark 0. (Not
    /// defaulted, like the two below, so that a store wrapping another
    /// cannot forget to pass them on.)
    fn apply(&self, writes: Vec<Write>) -> Result<Mark, StateError>;

    /// The mark of the last writes (or counter) applied to a bucket of
    /// `package` (buckets are named `package/identifier`): a call of the
    /// package that read state waits until this is durable before it
    /// answers, since it may have read them. 0 when nothing waits to be
    /// made durable.
    fn applied_mark(&self, package: &str) -> Mark;

    /// Waits until everything applied up to `mark` is durable. Fails when
    /// the store could not flush, and from then on.
    fn wait_durable(&self, mark: Mark) -> Result<(), StateError>;

    /// A session for one call, which must be done with it by `deadline`
    /// (a store that hands out connections waits for one until then).
    fn session(self: Arc<Self>, deadline: Instant) -> Result<Box<dyn Session>, StateError> {
        let _ = deadline;
        Ok(Box::new(Direct(self)))
    }

    /// Sets one key, durably.
    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), StateError> {
        self.commit(vec![Write {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            value: Some(value.to_vec()),
        }])
    }

    /// Deletes one key, durably; deleting a missing key is not an error.
    fn delete(&self, bucket: &str, key: &str) -> Result<(), StateError> {
        self.commit(vec![Write {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            value: None,
        }])
    }
}

/// `value` with its CRC-32 in front, as stored.
pub(crate) fn seal(value: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(value.len() + 4);
    sealed.extend_from_slice(&crc32fast::hash(value).to_le_bytes());
    sealed.extend_from_slice(value);
    sealed
}

/// The value of stored bytes, checked against its CRC-32.
pub(crate) fn unseal(bucket: &str, key: &str, sealed: &[u8]) -> Result<Vec<u8>, StateError> {
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

/// The counter at `key` after adding `delta` to its value `current` (a
/// missing key counts as 0).
pub(crate) fn add_to_counter(
    key: &str,
    current: Option<&[u8]>,
    delta: u64,
) -> Result<u64, StateError> {
    let old = match current {
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| StateError::NotACounter {
                key: key.to_owned(),
            })?,
        None => 0,
    };
    old.checked_add(delta)
        .ok_or_else(|| StateError::CounterOverflow {
            key: key.to_owned(),
        })
}
