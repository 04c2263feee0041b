//! [`SqliteStore`]: component state in one SQLite database file.
//!
//! One table, `kv(bucket, key, value)`, in WAL mode with
//! `synchronous=FULL`: a commit is on disk when it returns, and a crash at
//! any moment leaves the last committed state (SQLite's own guarantee, the
//! most tested of any storage engine). Readers use their own connections
//! and run beside the writer. Commits go through one writer connection in
//! groups: a committer that finds the writer busy queues its writes, and
//! whoever holds the writer next applies every queued commit in one
//! transaction — one flush for all of them — and tells each its result.
//!
//! The file belongs to one process: it is opened through SQLite's
//! `unix-excl` VFS, which takes one lock on the file for the process and
//! keeps the WAL index in the process's memory, so that the connections
//! inside it coordinate without a system call (with shared-memory WAL
//! locks, every read took and released a POSIX lock: about 5 % of the
//! host's CPU under load, BENCHMARKS.md). A second process opening the
//! same file is told at once that it is in use, as it is for the audit
//! trail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::{KeyPage, KeyValueStore, StateError, Write, add_to_counter, seal, unseal};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS kv (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (bucket, key)
    ) WITHOUT ROWID;
";

/// Opens `path` (or an in-memory database) with the pragmas every
/// connection needs.
/// The first connection of the process (`first`) takes the process's lock
/// on the file.
fn connect(path: Option<&Path>, first: bool) -> Result<Connection, StateError> {
    let connection = match path {
        #[cfg(unix)]
        Some(path) => {
            Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), c"unix-excl")?
        }
        #[cfg(not(unix))]
        Some(path) => Connection::open(path)?,
        None => Connection::open_in_memory()?,
    };
    // The first access takes the process's lock on the file: without
    // waiting, so that a file another process holds is said so at once.
    let patience = std::time::Duration::from_secs(30);
    connection.busy_timeout(if first {
        std::time::Duration::ZERO
    } else {
        patience
    })?;
    match connection.pragma_update(None, "journal_mode", "WAL") {
        Err(rusqlite::Error::SqliteFailure(error, _))
            if first && error.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            return Err(StateError::Engine(format!(
                "{} is open in another zhongtai process; stop it or use another data directory",
                path.map_or_else(|| "the store".to_owned(), |p| p.display().to_string())
            )));
        }
        other => other?,
    }
    connection.busy_timeout(patience)?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(connection)
}

/// Commits waiting for the writer, and the results of those applied.
#[derive(Default)]
struct Queue {
    waiting: Vec<(u64, Vec<Write>)>,
    next_ticket: u64,
    /// Someone is applying a group now.
    busy: bool,
    results: HashMap<u64, Result<(), String>>,
}

/// [`KeyValueStore`] on SQLite; see the module docs.
pub struct SqliteStore {
    path: Option<PathBuf>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    queue: Mutex<Queue>,
    applied: Condvar,
}

impl SqliteStore {
    /// Opens (or creates) the store in the file `path`; a new file is
    /// created readable by its owner only.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        if !path.exists() {
            create_private(path)
                .map_err(|e| StateError::Engine(format!("creating {}: {e}", path.display())))?;
        }
        Self::with_writer(Some(path.to_path_buf()), connect(Some(path), true)?)
    }

    /// A store that lives in memory only; for tests and benchmarks.
    pub fn temporary() -> Result<Self, StateError> {
        Self::with_writer(None, connect(None, true)?)
    }

    fn with_writer(path: Option<PathBuf>, writer: Connection) -> Result<Self, StateError> {
        writer.execute_batch(SCHEMA)?;
        Ok(Self {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            queue: Mutex::new(Queue::default()),
            applied: Condvar::new(),
        })
    }

    /// Runs `read` on a reader connection (the writer's, for an in-memory
    /// store, which other connections cannot see).
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let Some(path) = &self.path else {
            let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            return read(&writer);
        };
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => connect(Some(path), false)?,
        };
        let result = read(&connection);
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(connection);
        result
    }

    /// Applies every queued commit in one transaction.
    fn apply(&self, group: &[(u64, Vec<Write>)]) -> Result<(), StateError> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let transaction = writer.transaction()?;
        {
            let mut set = transaction.prepare_cached(
                "INSERT INTO kv (bucket, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
            )?;
            let mut delete =
                transaction.prepare_cached("DELETE FROM kv WHERE bucket = ?1 AND key = ?2")?;
            for write in group.iter().flat_map(|(_, writes)| writes) {
                match &write.value {
                    Some(value) => set.execute(params![write.bucket, write.key, seal(value)])?,
                    None => delete.execute(params![write.bucket, write.key])?,
                };
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Overwrites the stored bytes of a key, checksum and all; for tests
    /// that play a damaged disk.
    #[doc(hidden)]
    pub fn damage(&self, bucket: &str, key: &str) -> Result<(), StateError> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut stored: Vec<u8> = writer.query_row(
            "SELECT value FROM kv WHERE bucket = ?1 AND key = ?2",
            params![bucket, key],
            |row| row.get(0),
        )?;
        if let Some(last) = stored.last_mut() {
            *last ^= 0xff;
        }
        writer.execute(
            "UPDATE kv SET value = ?3 WHERE bucket = ?1 AND key = ?2",
            params![bucket, key, stored],
        )?;
        Ok(())
    }
}

/// Creates `path` empty, with mode 0600 where that exists.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

impl KeyValueStore for SqliteStore {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let sealed: Option<Vec<u8>> = self.read(|c| {
            Ok(
                c.prepare_cached("SELECT value FROM kv WHERE bucket = ?1 AND key = ?2")?
                    .query_row(params![bucket, key], |row| row.get(0))
                    .optional()?,
            )
        })?;
        sealed.map(|s| unseal(bucket, key, &s)).transpose()
    }

    fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError> {
        let skip = cursor.unwrap_or(0);
        // One more than asked for tells whether there is a next page.
        let keys: Vec<String> = self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT key FROM kv WHERE bucket = ?1 ORDER BY key LIMIT ?2 OFFSET ?3",
            )?;
            let rows = statement.query_map(
                params![
                    bucket,
                    i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
                    i64::try_from(skip).unwrap_or(i64::MAX)
                ],
                |row| row.get(0),
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        Ok(KeyPage::from_overfetch(keys, skip, limit))
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        // A counter is committed without a flush of its own: the commit of
        // whatever uses the number flushes the log, and with it this
        // earlier entry. A crash before then loses only a number nobody
        // kept, which may then be handed out again.
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        let counted = increment_unsynced(&mut writer, bucket, key, delta);
        writer.pragma_update(None, "synchronous", "FULL")?;
        counted
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StateError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push((ticket, writes));
        loop {
            if let Some(result) = queue.results.remove(&ticket) {
                return result.map_err(StateError::Engine);
            }
            if queue.busy {
                queue = self.applied.wait(queue).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Lead: apply everything queued so far, this commit included.
            queue.busy = true;
            let group = std::mem::take(&mut queue.waiting);
            drop(queue);
            let result = self.apply(&group).map_err(|e| e.to_string());
            queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.busy = false;
            for (done, _) in &group {
                queue.results.insert(*done, result.clone());
            }
            self.applied.notify_all();
        }
    }
}

/// Adds `delta` to a counter in one transaction on `writer`.
fn increment_unsynced(
    writer: &mut Connection,
    bucket: &str,
    key: &str,
    delta: u64,
) -> Result<u64, StateError> {
    let transaction = writer.transaction()?;
    let stored: Option<Vec<u8>> = transaction
        .prepare_cached("SELECT value FROM kv WHERE bucket = ?1 AND key = ?2")?
        .query_row(params![bucket, key], |row| row.get(0))
        .optional()?;
    let current = stored
        .map(|sealed| unseal(bucket, key, &sealed))
        .transpose()?;
    let new = add_to_counter(key, current.as_deref(), delta)?;
    transaction.execute(
        "INSERT INTO kv (bucket, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
        params![bucket, key, seal(new.to_string().as_bytes())],
    )?;
    transaction.commit()?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, value: Option<&[u8]>) -> Write {
        Write {
            bucket: "b".into(),
            key: key.into(),
            value: value.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn values_round_trip_and_corruption_is_detected() {
        let store = SqliteStore::temporary().unwrap();
        store.set("b", "k", b"hello").unwrap();
        assert_eq!(store.get("b", "k").unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(store.get("other", "k").unwrap(), None);
        store.damage("b", "k").unwrap();
        let err = store.get("b", "k").unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn list_keys_pages_through_every_key_once() {
        let store = SqliteStore::temporary().unwrap();
        let writes = (0..25)
            .map(|i| write(&format!("key-{i:02}"), Some(b"v")))
            .collect();
        store.commit(writes).unwrap();
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
        let store = SqliteStore::temporary().unwrap();
        assert_eq!(store.increment("b", "n", 3).unwrap(), 3);
        assert_eq!(store.increment("b", "n", 4).unwrap(), 7);
        store.set("b", "text", b"abc").unwrap();
        assert!(matches!(
            store.increment("b", "text", 1),
            Err(StateError::NotACounter { .. })
        ));
    }

    #[test]
    fn commits_apply_in_order_and_whole() {
        let store = SqliteStore::temporary().unwrap();
        store
            .commit(vec![
                write("a", Some(b"1")),
                write("b", Some(b"2")),
                write("a", None),
            ])
            .unwrap();
        assert_eq!(store.get("b", "a").unwrap(), None);
        assert_eq!(store.get("b", "b").unwrap().as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn concurrent_commits_all_land_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let store = store.clone();
                scope.spawn(move || {
                    for n in 0..25 {
                        store
                            .set("b", &format!("{thread}-{n}"), n.to_string().as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        drop(store);
        let reopened = SqliteStore::open(&path).unwrap();
        let page = reopened.list_keys("b", None, 1000).unwrap();
        assert_eq!(page.keys.len(), 200);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
