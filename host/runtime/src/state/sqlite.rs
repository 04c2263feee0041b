//! [`SqliteStore`]: component state in one SQLite database file.
//!
//! One table, `kv(bucket, key, value)`, in WAL mode. Readers use their own
//! connections and run beside the writer. A commit is in two steps: the
//! writer connection applies it to the log (`synchronous=NORMAL`: written,
//! not flushed), from when on every read sees it; then
//! [`wait_durable`](KeyValueStore::wait_durable) flushes the log with
//! `fdatasync`. One flush covers every commit applied before it began, so
//! commits that wait together share it, and a call releases its locks
//! between the two steps (early lock release): the next holder works on
//! the applied state while the flush runs, and the log's order makes its
//! own commit durable only after the one it built on. A crash at any moment
//! leaves the state as of some flush (SQLite's guarantee, the most tested
//! of any storage engine); nobody has been answered about a commit the
//! crash took, since answers wait for the flush. A flush that fails leaves
//! the store refusing every later wait: what is on disk is then unknown,
//! and the host must be restarted (as PostgreSQL does).
//!
//! Checkpoints (copying the log's pages into the database file, so that the
//! log can start over) run on their own thread and connection, beside the
//! writer, every [`CHECKPOINT_EVERY`] writes. Left to SQLite, the writer
//! checkpoints inside a commit once the log reaches 1,000 pages, and every
//! commit behind it waited the 10 ms or so that took, with its locks held.
//! Under load a passive checkpoint never catches the log up (the writer
//! and the readers are always ahead of it), so the log starts over only
//! when the writer checkpoints itself, at [`WRITER_CHECKPOINT_PAGES`]: by
//! then the thread has copied all but the last few hundred pages, and the
//! log stays at about 16 MB.
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
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    KeyPage, KeyValueStore, Mark, StateError, Write, add_to_counter, bucket_package, seal, unseal,
};

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

/// Reader connections kept open between reads; a read that finds none
/// idle opens another, and it is closed after its read if this many are
/// idle already. Under the business-license load about forty reads were
/// open at once, each connection with its own page cache.
pub const IDLE_READERS: usize = 8;

/// The page cache of a reader connection, in KiB (SQLite's default is
/// 2,000). Every commit of the writer invalidates what a reader cached, so
/// under writes a reader's cache holds little more than one read's pages.
pub const READER_CACHE_KIB: i64 = 256;

/// How many writes (commits and counters) apart the checkpoint thread is
/// woken.
pub const CHECKPOINT_EVERY: u64 = 128;
/// The log's length, in pages, at which the writer checkpoints itself.
pub const WRITER_CHECKPOINT_PAGES: u32 = 4_096;

/// The checkpoint thread's orders.
#[derive(Default)]
struct CheckpointOrders {
    /// Writes were made since it last looked.
    wanted: bool,
    /// The store is closing.
    stop: bool,
    /// How many checkpoints it ran.
    count: u64,
}

/// The thread that checkpoints the log beside the writer.
struct Checkpointer {
    orders: Arc<(Mutex<CheckpointOrders>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread, with its own connection to `path`.
    fn start(path: &Path) -> Result<Self, StateError> {
        let connection = connect(Some(path), false)?;
        let orders = Arc::new((Mutex::new(CheckpointOrders::default()), Condvar::new()));
        let theirs = Arc::clone(&orders);
        let thread = std::thread::Builder::new()
            .name("zhongtai-checkpoint".into())
            .spawn(move || checkpoint_loop(&connection, &theirs))
            .map_err(|e| StateError::Engine(format!("starting the checkpoint thread: {e}")))?;
        Ok(Self {
            orders,
            thread: Some(thread),
        })
    }

    /// Wakes the thread to checkpoint what has been written.
    fn wake(&self) {
        let (orders, wake) = &*self.orders;
        orders.lock().unwrap_or_else(|e| e.into_inner()).wanted = true;
        wake.notify_one();
    }

    fn count(&self) -> u64 {
        self.orders
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (orders, wake) = &*self.orders;
        orders.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Checkpoints whenever woken, until told to stop. A passive checkpoint
/// copies what it can without waiting for the writer or any reader; what
/// it could not copy, the next one does.
fn checkpoint_loop(connection: &Connection, orders: &(Mutex<CheckpointOrders>, Condvar)) {
    let (orders, wake) = orders;
    loop {
        {
            let mut state = orders.lock().unwrap_or_else(|e| e.into_inner());
            while !state.wanted && !state.stop {
                state = wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.stop {
                return;
            }
            state.wanted = false;
        }
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            // The writer checkpoints itself should this go on failing.
            tracing::warn!("checkpointing the state log failed: {error}");
        }
        orders.lock().unwrap_or_else(|e| e.into_inner()).count += 1;
    }
}

/// How far the log is flushed.
#[derive(Default)]
struct Flushed {
    /// Everything applied up to this mark is on disk.
    upto: Mark,
    /// A thread is flushing now.
    flushing: bool,
    /// Why a flush failed; the store is then refused.
    failed: Option<String>,
    /// The log file, opened at the first flush.
    log: Option<File>,
    /// How many flushes there were.
    count: u64,
}

/// [`KeyValueStore`] on SQLite; see the module docs.
pub struct SqliteStore {
    path: Option<PathBuf>,
    writer: Mutex<Connection>,
    /// Commits and counters applied so far: the mark of the last one.
    /// Written under the writer's lock, read without it.
    applied: std::sync::atomic::AtomicU64,
    /// The mark of the last write applied to each package's buckets.
    packages: Mutex<HashMap<Box<str>, Mark>>,
    readers: Mutex<Vec<Connection>>,
    flushed: Mutex<Flushed>,
    flush_done: Condvar,
    /// For a file; an in-memory store's writer checkpoints nothing.
    checkpointer: Option<Checkpointer>,
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
        // The writer's commits are flushed by `wait_durable`, not by SQLite.
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        // The checkpoint thread copies the log; the writer only restarts it
        // (see the module docs).
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        let checkpointer = path.as_deref().map(Checkpointer::start).transpose()?;
        Ok(Self {
            path,
            writer: Mutex::new(writer),
            packages: Mutex::new(HashMap::new()),
            applied: std::sync::atomic::AtomicU64::new(0),
            readers: Mutex::new(Vec::new()),
            flushed: Mutex::new(Flushed::default()),
            flush_done: Condvar::new(),
            checkpointer,
        })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `write` on the writer as the commit with the next mark, for
    /// writes to `buckets`, and returns the mark. The mark counts as
    /// applied whether or not `write` succeeds (a failed one changed
    /// nothing, and flushing past it is harmless).
    fn write<T>(
        &self,
        buckets: &mut dyn Iterator<Item = &str>,
        write: impl FnOnce(&mut Connection) -> Result<T, StateError>,
    ) -> Result<(T, Mark), StateError> {
        let mut writer = self.writer();
        let mark = self.applied.load(std::sync::atomic::Ordering::Acquire) + 1;
        // Before the writes are applied: a reader that sees them finds
        // their package's mark at least this high.
        {
            let mut packages = self.packages.lock().unwrap_or_else(|e| e.into_inner());
            for bucket in buckets {
                let package = bucket_package(bucket);
                match packages.get_mut(package) {
                    Some(last) => *last = mark,
                    None => {
                        packages.insert(package.into(), mark);
                    }
                }
            }
        }
        let result = write(&mut writer);
        self.applied
            .store(mark, std::sync::atomic::Ordering::Release);
        drop(writer);
        if mark.is_multiple_of(CHECKPOINT_EVERY)
            && let Some(checkpointer) = &self.checkpointer
        {
            checkpointer.wake();
        }
        result.map(|value| (value, mark))
    }

    /// Flushes the log to disk; `log` is the file, opened on first use.
    fn flush_log(path: &Path, log: &mut Option<File>) -> std::io::Result<()> {
        if log.is_none() {
            let mut name = path.as_os_str().to_owned();
            name.push("-wal");
            let file = std::fs::OpenOptions::new().write(true).open(&name)?;
            // The log's name in its directory must survive a crash too.
            if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(directory)?.sync_all()?;
            }
            *log = Some(file);
        }
        log.as_ref().map_or(Ok(()), File::sync_data)
    }

    /// Runs `read` on a reader connection (the writer's, for an in-memory
    /// store, which other connections cannot see).
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let Some(path) = &self.path else {
            return read(&self.writer());
        };
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let connection = connect(Some(path), false)?;
                connection.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
                connection
            }
        };
        let result = read(&connection);
        let mut idle = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
        result
    }

    /// Applies `writes` in one transaction on `connection`.
    fn apply_writes(connection: &mut Connection, writes: &[Write]) -> Result<(), StateError> {
        in_transaction(connection, |transaction| {
            let mut set = transaction.prepare_cached(UPSERT)?;
            let mut delete =
                transaction.prepare_cached("DELETE FROM kv WHERE bucket = ?1 AND key = ?2")?;
            for write in writes {
                match &write.value {
                    Some(value) => set.execute(params![write.bucket, write.key, seal(value)])?,
                    None => delete.execute(params![write.bucket, write.key])?,
                };
            }
            Ok(())
        })
    }

    /// How many checkpoints the checkpoint thread has run; for tests.
    #[doc(hidden)]
    pub fn checkpoints(&self) -> u64 {
        self.checkpointer.as_ref().map_or(0, Checkpointer::count)
    }

    /// How many times the log has been flushed; for tests.
    #[doc(hidden)]
    pub fn flushes(&self) -> u64 {
        self.flushed.lock().unwrap_or_else(|e| e.into_inner()).count
    }

    /// Overwrites the stored bytes of a key, checksum and all; for tests
    /// that play a damaged disk.
    #[doc(hidden)]
    pub fn damage(&self, bucket: &str, key: &str) -> Result<(), StateError> {
        let writer = self.writer();
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
        let sealed = self.read(|c| stored_value(c, bucket, key))?;
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
        // Flushed by whatever waits for the package's writes next: a call
        // that took the number, or the commit that keeps it. A crash before
        // then loses only a number nobody was told, which may then be
        // handed out again.
        self.write(&mut std::iter::once(bucket), |writer| {
            increment_unsynced(writer, bucket, key, delta)
        })
        .map(|(counted, _)| counted)
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StateError> {
        let mark = self.apply(writes)?;
        self.wait_durable(mark)
    }

    fn apply(&self, writes: Vec<Write>) -> Result<Mark, StateError> {
        // Nothing applied: nothing to wait for.
        if writes.is_empty() {
            return Ok(0);
        }
        self.write(&mut writes.iter().map(|w| w.bucket.as_str()), |writer| {
            Self::apply_writes(writer, &writes)
        })
        .map(|((), mark)| mark)
    }

    fn applied_mark(&self, package: &str) -> Mark {
        let packages = self.packages.lock().unwrap_or_else(|e| e.into_inner());
        packages.get(package).copied().unwrap_or(0)
    }

    fn wait_durable(&self, mark: Mark) -> Result<(), StateError> {
        // An in-memory store has nothing to flush.
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut flushed = self.flushed.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(failed) = &flushed.failed {
                return Err(StateError::Engine(failed.clone()));
            }
            if flushed.upto >= mark {
                return Ok(());
            }
            if flushed.flushing {
                flushed = self
                    .flush_done
                    .wait(flushed)
                    .unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Flush everything applied so far, for every waiter at once.
            flushed.flushing = true;
            let upto = self.applied.load(std::sync::atomic::Ordering::Acquire);
            let mut log = flushed.log.take();
            drop(flushed);
            let result = Self::flush_log(path, &mut log);
            flushed = self.flushed.lock().unwrap_or_else(|e| e.into_inner());
            flushed.flushing = false;
            flushed.log = log;
            match result {
                Ok(()) => {
                    flushed.upto = flushed.upto.max(upto);
                    flushed.count += 1;
                }
                Err(error) => {
                    flushed.failed = Some(format!(
                        "flushing {}-wal failed ({error}); what is on disk is unknown: \
                         restart the host",
                        path.display()
                    ));
                }
            }
            self.flush_done.notify_all();
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
    in_transaction(writer, |transaction| {
        let current = stored_value(transaction, bucket, key)?
            .map(|sealed| unseal(bucket, key, &sealed))
            .transpose()?;
        let new = add_to_counter(key, current.as_deref(), delta)?;
        transaction.prepare_cached(UPSERT)?.execute(params![
            bucket,
            key,
            seal(new.to_string().as_bytes())
        ])?;
        Ok(new)
    })
}

/// A key's stored (sealed) value, if it is there.
fn stored_value(
    connection: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, StateError> {
    Ok(connection
        .prepare_cached("SELECT value FROM kv WHERE bucket = ?1 AND key = ?2")?
        .query_row(params![bucket, key], |row| row.get(0))
        .optional()?)
}

/// Sets a key's value, whether or not it is there.
const UPSERT: &str = "INSERT INTO kv (bucket, key, value) VALUES (?1, ?2, ?3)
    ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value";

/// Runs `body` in one write transaction on `connection`: committed when
/// it succeeds, rolled back when it or the commit fails. The transaction
/// takes the write lock as it begins (`BEGIN IMMEDIATE`): one that read
/// first and then asked to write while another connection held the lock a
/// moment would fail at once with "database is locked", since SQLite runs
/// no busy handler for that. `BEGIN`, `COMMIT` and `ROLLBACK` are prepared
/// once per connection and kept, like every other statement here, rather
/// than parsed again for every commit.
fn in_transaction<T>(
    connection: &mut Connection,
    body: impl FnOnce(&Connection) -> Result<T, StateError>,
) -> Result<T, StateError> {
    connection.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let result = body(connection).and_then(|value| {
        connection.prepare_cached("COMMIT")?.execute([])?;
        Ok(value)
    });
    if result.is_err() && !connection.is_autocommit() {
        // The error said is the one that stopped the commit.
        let _ = connection
            .prepare_cached("ROLLBACK")
            .and_then(|mut rollback| rollback.execute([]));
    }
    result
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
    fn reads_at_once_leave_at_most_the_idle_readers_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        store.set("b", "k", b"v").unwrap();
        let opened = std::sync::atomic::AtomicUsize::new(0);
        let all_in = std::sync::Barrier::new(3 * IDLE_READERS);
        std::thread::scope(|scope| {
            for _ in 0..3 * IDLE_READERS {
                scope.spawn(|| {
                    // Every thread holds its reader until all have one.
                    store
                        .read(|connection| {
                            opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            all_in.wait();
                            let cache: i64 =
                                connection
                                    .pragma_query_value(None, "cache_size", |row| row.get(0))?;
                            assert_eq!(cache, -READER_CACHE_KIB);
                            Ok(())
                        })
                        .unwrap();
                });
            }
        });
        assert_eq!(
            opened.load(std::sync::atomic::Ordering::Relaxed),
            3 * IDLE_READERS
        );
        assert_eq!(store.readers.lock().unwrap().len(), IDLE_READERS);
        assert_eq!(store.get("b", "k").unwrap().as_deref(), Some(&b"v"[..]));
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
        // The refused increment's transaction was rolled back: the writer
        // takes the next commit and counter as if nothing had happened.
        assert_eq!(
            store.get("b", "text").unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        store.commit(vec![write("after", Some(b"1"))]).unwrap();
        assert_eq!(store.increment("b", "n", 1).unwrap(), 8);
        assert_eq!(store.get("b", "after").unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn a_counter_waits_for_a_write_lock_held_elsewhere_rather_than_failing() {
        // Another connection to the file holding the log's write lock a
        // moment: a counter read and then written in one deferred
        // transaction would fail at once with "database is locked" (SQLite
        // runs no busy handler when a read transaction asks to write); the
        // writer's transactions take the write lock as they begin, where
        // the busy handler waits.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.increment("b", "n", 1).unwrap(), 1);
        let other = connect(Some(&path), false).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        std::thread::scope(|scope| {
            let counted = scope.spawn(|| store.increment("b", "n", 1));
            std::thread::sleep(std::time::Duration::from_millis(200));
            other.execute_batch("COMMIT").unwrap();
            assert_eq!(counted.join().unwrap().unwrap(), 2);
        });
        store.commit(vec![write("after", Some(b"1"))]).unwrap();
        assert_eq!(store.increment("b", "n", 1).unwrap(), 3);
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

    fn package_write(bucket: &str, key: &str) -> Write {
        Write {
            bucket: bucket.into(),
            key: key.into(),
            value: Some(b"v".to_vec()),
        }
    }

    #[test]
    fn the_log_is_checkpointed_beside_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        // Until a checkpoint, every page written is in the log and the
        // database file keeps its size; the writer alone would not
        // checkpoint for thousands of pages yet.
        let before = std::fs::metadata(&path).unwrap().len();
        let value = vec![7u8; 1000];
        for n in 0..CHECKPOINT_EVERY * 2 {
            store
                .commit(vec![Write {
                    bucket: "b".into(),
                    key: format!("k{n}"),
                    value: Some(value.clone()),
                }])
                .unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while store.checkpoints() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint after {} writes",
                CHECKPOINT_EVERY * 2
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // 256 values of 1 KB: at least 64 pages copied into the file.
        assert!(std::fs::metadata(&path).unwrap().len() >= before + 64 * 4096);
        assert_eq!(store.get("b", "k0").unwrap(), Some(value.clone()));
        drop(store);
        let reopened = SqliteStore::open(&path).unwrap();
        let last = format!("k{}", CHECKPOINT_EVERY * 2 - 1);
        assert_eq!(reopened.get("b", &last).unwrap(), Some(value));
    }

    #[test]
    fn applied_writes_are_read_at_once_and_one_flush_covers_all_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let first = store.apply(vec![package_write("pay/orders", "1")]).unwrap();
        let second = store.apply(vec![package_write("pay/ledger", "2")]).unwrap();
        let other = store.apply(vec![package_write("auth/keys", "k")]).unwrap();
        assert!(first < second && second < other, "{first} {second} {other}");
        // Visible before any flush.
        assert!(store.get("pay/orders", "1").unwrap().is_some());
        assert_eq!(store.flushes(), 0);
        // A package's mark is its last write's; a package never written has
        // nothing to wait for.
        assert_eq!(store.applied_mark("pay"), second);
        assert_eq!(store.applied_mark("auth"), other);
        assert_eq!(store.applied_mark("license"), 0);
        store.wait_durable(first).unwrap();
        assert_eq!(
            store.flushes(),
            1,
            "the first wait flushes everything applied"
        );
        store.wait_durable(other).unwrap();
        store.wait_durable(0).unwrap();
        assert_eq!(store.flushes(), 1, "later marks were covered by that flush");
        // A counter is a write of its package too.
        store.increment("pay/counters", "n", 1).unwrap();
        assert!(store.applied_mark("pay") > other);
    }

    #[test]
    fn a_failed_flush_refuses_every_later_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        let mark = store.apply(vec![package_write("pay/orders", "1")]).unwrap();
        // The log vanishes before its first flush: the flush cannot happen.
        std::fs::remove_file(dir.path().join("state.db-wal")).unwrap();
        let error = store.wait_durable(mark).unwrap_err().to_string();
        assert!(
            error.contains("state.db-wal failed") && error.contains("restart the host"),
            "{error}"
        );
        let again = store.wait_durable(mark).unwrap_err().to_string();
        assert_eq!(again, error);
        assert!(
            store
                .commit(vec![package_write("pay/orders", "2")])
                .is_err()
        );
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
