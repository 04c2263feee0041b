//! A call's transaction: the writes a call makes, kept until it returns.
//!
//! Reads see the call's own writes first. When the call returns (with an
//! `ok` or an `err` alike) the runtime commits the writes in one
//! [`KeyValueStore::commit`]; when it traps, times out or runs out of
//! memory they are dropped with the call's store, and nothing changed.
//! Locks a call released stay held until its writes are applied (see
//! `platform::locks`), so the next holder reads what this call wrote; the
//! call answers only once they are durable (`HostState::commit`).

use std::collections::BTreeMap;

use crate::state::{KeyPage, Session, StateError, Write, add_to_counter};

/// Keys read per page when a listing must be merged with pending writes.
const MERGE_PAGE_KEYS: usize = 10_000;

/// The pending writes of one call, by bucket, then key; `None` deletes.
/// (Nested maps, so that a read looks its key up without building one.)
#[derive(Default)]
pub(crate) struct Transaction {
    writes: BTreeMap<String, BTreeMap<String, Option<Vec<u8>>>>,
}

impl Transaction {
    fn pending(&self, bucket: &str, key: &str) -> Option<&Option<Vec<u8>>> {
        self.writes.get(bucket)?.get(key)
    }

    /// The value of `key`: this call's write, else the store's.
    pub(crate) fn get(
        &self,
        kv: &mut dyn Session,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StateError> {
        match self.pending(bucket, key) {
            Some(value) => Ok(value.clone()),
            None => kv.get(bucket, key),
        }
    }

    /// Sets (`Some`) or deletes (`None`) `key` when the call commits.
    pub(crate) fn put(&mut self, bucket: &str, key: &str, value: Option<Vec<u8>>) {
        self.writes
            .entry(bucket.to_owned())
            .or_default()
            .insert(key.to_owned(), value);
    }

    /// A page of keys as the call sees them: the store's, with this call's
    /// writes applied.
    pub(crate) fn list_keys(
        &self,
        kv: &mut dyn Session,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError> {
        let Some(mine) = self.writes.get(bucket) else {
            return kv.list_keys(bucket, cursor, limit);
        };
        let mut keys = std::collections::BTreeSet::new();
        let mut page_cursor = None;
        loop {
            let page = kv.list_keys(bucket, page_cursor, MERGE_PAGE_KEYS)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => page_cursor = Some(next),
                None => break,
            }
        }
        for (key, value) in mine {
            match value {
                Some(_) => keys.insert(key.clone()),
                None => keys.remove(key),
            };
        }
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let page: Vec<String> = keys.iter().skip(skip).take(limit).cloned().collect();
        let next = skip.saturating_add(page.len());
        Ok(KeyPage {
            cursor: (next < keys.len()).then_some(next as u64),
            keys: page,
        })
    }

    /// Adds `delta` to a counter: at once in the store (a sequence, outside
    /// the transaction), unless this call wrote the key, in which case the
    /// call's own value counts.
    pub(crate) fn increment(
        &mut self,
        kv: &mut dyn Session,
        bucket: &str,
        key: &str,
        delta: u64,
    ) -> Result<u64, StateError> {
        let Some(pending) = self.pending(bucket, key) else {
            return kv.increment(bucket, key, delta);
        };
        let new = add_to_counter(key, pending.as_deref(), delta)?;
        self.put(bucket, key, Some(new.to_string().into_bytes()));
        Ok(new)
    }

    /// The writes to commit, leaving the transaction empty.
    pub(crate) fn take(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
            .into_iter()
            .flat_map(|(bucket, keys)| {
                keys.into_iter().map(move |(key, value)| Write {
                    bucket: bucket.clone(),
                    key,
                    value,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{KeyValueStore, SqliteStore};

    #[test]
    fn a_call_reads_its_own_writes_and_commits_them_at_once() {
        let store = std::sync::Arc::new(SqliteStore::temporary().unwrap());
        store.set("b", "kept", b"old").unwrap();
        store.set("b", "gone", b"old").unwrap();
        let mut session = store.clone().session(std::time::Instant::now()).unwrap();
        let kv = session.as_mut();
        let mut call = Transaction::default();
        call.put("b", "new", Some(b"1".to_vec()));
        call.put("b", "gone", None);
        assert_eq!(
            call.get(&mut *kv, "b", "new").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(call.get(&mut *kv, "b", "gone").unwrap(), None);
        assert_eq!(
            kv.get("b", "new").unwrap(),
            None,
            "nothing before the commit"
        );
        let listed = call.list_keys(&mut *kv, "b", None, 1).unwrap();
        assert_eq!(listed.keys, ["kept"]);
        let rest = call.list_keys(&mut *kv, "b", listed.cursor, 10).unwrap();
        assert_eq!((rest.keys, rest.cursor), (vec!["new".to_owned()], None));
        assert_eq!(call.increment(&mut *kv, "b", "new", 2).unwrap(), 3);
        kv.commit(call.take()).unwrap();
        assert_eq!(kv.get("b", "new").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(kv.get("b", "gone").unwrap(), None);
    }
}
