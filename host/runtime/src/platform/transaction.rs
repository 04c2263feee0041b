//! A call's transaction: the writes a call makes, kept until it returns.
//!
//! Reads see the call's own writes first. When the call returns (with an
//! `ok` or an `err` alike) the runtime commits the writes in one
//! [`KeyValueStore::commit`]; when it traps, times out or runs out of
//! memory they are dropped with the call's store, and nothing changed.
//! Locks a call released stay held until its commit is done (see
//! `platform::locks`), so the next holder reads what this call wrote.

use std::collections::BTreeMap;

use crate::state::{KeyPage, Session, StateError, Write, counter_value};

/// Keys read per page when a listing must be merged with pending writes.
const MERGE_PAGE_KEYS: usize = 10_000;

/// The pending writes of one call, by bucket and key; `None` deletes.
#[derive(Default)]
pub(crate) struct Transaction {
    writes: BTreeMap<(String, String), Option<Vec<u8>>>,
}

impl Transaction {
    fn pending(&self, bucket: &str, key: &str) -> Option<&Option<Vec<u8>>> {
        self.writes.get(&(bucket.to_owned(), key.to_owned()))
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
            .insert((bucket.to_owned(), key.to_owned()), value);
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
        let range = (bucket.to_owned(), String::new())..;
        let mut mine = self
            .writes
            .range(range)
            .take_while(|((b, _), _)| b == bucket)
            .peekable();
        if mine.peek().is_none() {
            return kv.list_keys(bucket, cursor, limit);
        }
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
        for ((_, key), value) in mine {
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
        let old = match pending {
            Some(bytes) => counter_value(key, bytes)?,
            None => 0,
        };
        let new = old
            .checked_add(delta)
            .ok_or_else(|| StateError::CounterOverflow {
                key: key.to_owned(),
            })?;
        self.put(bucket, key, Some(new.to_string().into_bytes()));
        Ok(new)
    }

    /// The writes to commit, leaving the transaction empty.
    pub(crate) fn take(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
            .into_iter()
            .map(|((bucket, key), value)| Write { bucket, key, value })
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
