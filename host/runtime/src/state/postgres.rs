//! [`PostgresStore`]: component state in PostgreSQL, shared by every host
//! that points at the same database.
//!
//! Keys live in one table, `zhongtai_kv(bucket, key, value)`; a call's
//! writes are one PostgreSQL transaction; counters are updated under a row
//! lock in a transaction of their own. A call's [`Session`] is one
//! connection from a pool of at most [`MAX_CONNECTIONS`] per host: its
//! reads, its commit, and its named locks, which are PostgreSQL session
//! advisory locks held until the call ends, so a lock taken on one host
//! excludes every other host. The schema is
//! created and upgraded by numbered migrations on connect, one host at a
//! time (under an advisory lock).
//!
//! PostgreSQL features used: `bytea`, `INSERT … ON CONFLICT … DO UPDATE`,
//! `SELECT … FOR UPDATE`, session advisory locks
//! (`pg_advisory_lock`/`pg_advisory_unlock`), `lock_timeout`, `BIGSERIAL`
//! and `LISTEN`/`NOTIFY` (for shared deployments). A
//! PostgreSQL-compatible database needs those.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use sha2::Digest;

use super::{
    KeyPage, KeyValueStore, Mark, Session, StateError, Write, add_to_counter, seal, unseal,
};

/// The schema, one step per version; applied in order, each once.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE zhongtai_kv (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (bucket, key)
    )",
    // Deploys and rollbacks made through any host, for every other host to
    // follow (`zhongtai-api`'s shared deployments).
    "CREATE TABLE zhongtai_deployments (
        revision BIGSERIAL PRIMARY KEY,
        department TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('deploy', 'rollback')),
        manifest TEXT,
        made_by TEXT NOT NULL,
        made_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )",
    // Every host's signed audit checkpoints, so an auditor sees each
    // host's head in one place (`zhongtai audit verify --state`).
    "CREATE TABLE zhongtai_audit_checkpoints (
        host TEXT NOT NULL,
        key TEXT NOT NULL,
        records BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        head TEXT NOT NULL,
        time TEXT NOT NULL,
        signature TEXT NOT NULL,
        PRIMARY KEY (key, records)
    )",
];

/// The advisory lock key under which migrations run.
const MIGRATION_LOCK: i64 = 0x7a68_6f6e_6774_6169;

impl From<postgres::Error> for StateError {
    fn from(error: postgres::Error) -> Self {
        let detail = error
            .as_db_error()
            .map(|db| format!("{}: {}", db.code().code(), db.message()));
        Self::Engine(detail.unwrap_or_else(|| error.to_string()))
    }
}

/// Most connections one host opens to the database.
pub const MAX_CONNECTIONS: usize = 16;

/// Connections: idle ones, and how many are open in all.
struct Pool {
    config: postgres::Config,
    state: Mutex<PoolState>,
    returned: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Client>,
    open: usize,
}

impl Pool {
    /// An idle connection, or a new one while fewer than
    /// [`MAX_CONNECTIONS`] are open; else waits for one until `deadline`.
    fn take(&self, deadline: Instant) -> Result<Client, StateError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            while let Some(client) = state.idle.pop() {
                if !client.is_closed() {
                    return Ok(client);
                }
                state.open -= 1;
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                return self.config.connect(NoTls).map_err(|error| {
                    self.closed();
                    error.into()
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StateError::Engine(format!(
                    "all {MAX_CONNECTIONS} connections to the database are busy"
                )));
            }
            state = self
                .returned
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Returns a connection; one that failed mid-transaction or closed is
    /// dropped instead.
    fn give_back(&self, client: Client, healthy: bool) {
        if healthy && !client.is_closed() {
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .idle
                .push(client);
            self.returned.notify_one();
        } else {
            drop(client);
            self.closed();
        }
    }

    fn closed(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).open -= 1;
        self.returned.notify_one();
    }
}

/// How long a store operation outside a call waits for a connection.
const WAIT: Duration = Duration::from_secs(30);

/// [`KeyValueStore`] on PostgreSQL; see the module docs.
pub struct PostgresStore {
    pool: Arc<Pool>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/database`) and brings
    /// the schema up to date.
    pub fn connect(url: &str) -> Result<Self, StateError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StateError::Engine(format!("the state URL {url:?}: {e}")))?;
        let pool = Arc::new(Pool {
            config,
            state: Mutex::new(PoolState::default()),
            returned: Condvar::new(),
        });
        let mut client = pool.take(Instant::now() + WAIT)?;
        let migrated = migrate(&mut client);
        pool.give_back(client, migrated.is_ok());
        migrated?;
        Ok(Self { pool })
    }

    fn with_client<T>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        // A round trip to the database: the thread's place in the step
        // pool is given up for it.
        crate::pool::blocking(|| {
            let mut client = self.pool.take(Instant::now() + WAIT)?;
            let result = work(&mut client);
            // A connection left inside a failed transaction is not reused.
            self.pool.give_back(client, result.is_ok());
            result
        })
    }
}

/// Applies the migrations this database lacks.
fn migrate(client: &mut Client) -> Result<(), StateError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = (|| {
        client.batch_execute(
            "CREATE TABLE IF NOT EXISTS zhongtai_migrations (
                version INTEGER PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )?;
        let applied: i32 = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM zhongtai_migrations",
                &[],
            )?
            .get(0);
        for (index, step) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let version = index as i32 + 1;
            let mut transaction = client.transaction()?;
            transaction.batch_execute(step)?;
            transaction.execute(
                "INSERT INTO zhongtai_migrations (version) VALUES ($1)",
                &[&version],
            )?;
            transaction.commit()?;
        }
        if applied as usize > MIGRATIONS.len() {
            return Err(StateError::Engine(format!(
                "the database's schema is version {applied}, newer than this host's {}; upgrade the host",
                MIGRATIONS.len()
            )));
        }
        Ok(())
    })();
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])?;
    result
}

/// The advisory lock key of a lock name.
fn lock_key(name: &str) -> i64 {
    let digest = sha2::Sha256::digest(name.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

impl KeyValueStore for PostgresStore {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let sealed = self.with_client(|c| get(c, bucket, key))?;
        sealed.map(|s| unseal(bucket, key, &s)).transpose()
    }

    fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError> {
        self.with_client(|c| list_keys(c, bucket, cursor, limit))
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError> {
        self.with_client(|c| increment(c, bucket, key, delta))
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StateError> {
        self.with_client(|c| commit(c, &writes))
    }

    // A PostgreSQL commit is durable when it returns: nothing is left to
    // wait for. (Its locks are the database's and the other hosts' too, so
    // they are held through the commit's round trip.)
    fn apply(&self, writes: Vec<Write>) -> Result<Mark, StateError> {
        self.commit(writes).map(|()| 0)
    }

    fn applied_mark(&self, _package: &str) -> Mark {
        0
    }

    fn wait_durable(&self, _mark: Mark) -> Result<(), StateError> {
        Ok(())
    }

    fn session(self: Arc<Self>, deadline: Instant) -> Result<Box<dyn Session>, StateError> {
        // Waits for a connection, while all are in use.
        let client = crate::pool::blocking(|| self.pool.take(deadline))?;
        Ok(Box::new(PgSession {
            client: Some(client),
            pool: self.pool.clone(),
            locked: false,
            healthy: true,
        }))
    }
}

/// One call's connection: its reads, locks and commit.
struct PgSession {
    client: Option<Client>,
    pool: Arc<Pool>,
    /// Whether it holds advisory locks.
    locked: bool,
    /// False after an error that may have left the connection unusable.
    healthy: bool,
}

impl PgSession {
    fn client(&mut self) -> Result<&mut Client, StateError> {
        self.client
            .as_mut()
            .ok_or_else(|| StateError::Engine("the session has ended".into()))
    }

    /// Runs `work`, noting a failure so that the connection is not reused.
    fn run<T>(
        &mut self,
        work: impl FnOnce(&mut Client) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let result = crate::pool::blocking(|| work(self.client()?));
        if result.is_err() {
            self.healthy = false;
        }
        result
    }
}

impl Session for PgSession {
    fn get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let sealed = self.run(|c| get(c, bucket, key))?;
        sealed.map(|s| unseal(bucket, key, &s)).transpose()
    }

    fn list_keys(
        &mut self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError> {
        self.run(|c| list_keys(c, bucket, cursor, limit))
    }

    fn increment(&mut self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError> {
        self.run(|c| increment(c, bucket, key, delta))
    }

    fn lock(&mut self, name: &str, deadline: Instant) -> Result<bool, StateError> {
        crate::pool::blocking(|| self.lock_across_hosts(name, deadline))
    }

    fn commit(&mut self, writes: Vec<Write>) -> Result<(), StateError> {
        self.run(|c| commit(c, &writes))
    }

    fn apply(&mut self, writes: Vec<Write>) -> Result<Mark, StateError> {
        self.commit(writes).map(|()| 0)
    }

    fn unlock_all(&mut self) {
        crate::pool::blocking(|| self.unlock_all_now());
    }
}

impl PgSession {
    /// [`Session::lock`], waiting on this thread.
    fn lock_across_hosts(&mut self, name: &str, deadline: Instant) -> Result<bool, StateError> {
        let key = lock_key(name);
        let wait = deadline.saturating_duration_since(Instant::now());
        // lock_timeout 0 would mean "wait forever".
        let millis = wait.as_millis().clamp(1, i32::MAX as u128);
        let client = self.client()?;
        client.batch_execute(&format!("SET lock_timeout = {millis}"))?;
        let taken = client.execute("SELECT pg_advisory_lock($1)", &[&key]);
        client.batch_execute("SET lock_timeout = 0")?;
        match taken {
            Ok(_) => {
                self.locked = true;
                Ok(true)
            }
            Err(error) if error.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                Ok(false)
            }
            Err(error) => {
                self.healthy = false;
                Err(error.into())
            }
        }
    }

    /// [`Session::unlock_all`], waiting on this thread.
    fn unlock_all_now(&mut self) {
        if std::mem::take(&mut self.locked)
            && let Some(client) = self.client.as_mut()
            && let Err(error) = client.batch_execute("SELECT pg_advisory_unlock_all()")
        {
            // Closing the connection releases its locks as well.
            tracing::warn!(%error, "releasing advisory locks");
            self.healthy = false;
        }
    }
}

impl Drop for PgSession {
    fn drop(&mut self) {
        self.unlock_all();
        if let Some(client) = self.client.take() {
            self.pool.give_back(client, self.healthy);
        }
    }
}

fn get(client: &mut Client, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
    Ok(client
        .query_opt(
            "SELECT value FROM zhongtai_kv WHERE bucket = $1 AND key = $2",
            &[&bucket, &key],
        )?
        .map(|row| row.get(0)))
}

fn list_keys(
    client: &mut Client,
    bucket: &str,
    cursor: Option<u64>,
    limit: usize,
) -> Result<KeyPage, StateError> {
    let skip = i64::try_from(cursor.unwrap_or(0)).unwrap_or(i64::MAX);
    let take = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let keys: Vec<String> = client
        .query(
            "SELECT key FROM zhongtai_kv WHERE bucket = $1
             ORDER BY key COLLATE \"C\" LIMIT $2 OFFSET $3",
            &[&bucket, &take, &skip],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    Ok(KeyPage::from_overfetch(keys, skip as u64, limit))
}

fn increment(client: &mut Client, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError> {
    let mut transaction = client.transaction()?;
    // Make sure the row exists, so that it can be locked.
    transaction.execute(
        "INSERT INTO zhongtai_kv (bucket, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (bucket, key) DO NOTHING",
        &[&bucket, &key, &seal(b"0")],
    )?;
    let sealed: Vec<u8> = transaction
        .query_one(
            "SELECT value FROM zhongtai_kv WHERE bucket = $1 AND key = $2 FOR UPDATE",
            &[&bucket, &key],
        )?
        .get(0);
    let new = add_to_counter(key, Some(&unseal(bucket, key, &sealed)?), delta)?;
    transaction.execute(
        "UPDATE zhongtai_kv SET value = $3 WHERE bucket = $1 AND key = $2",
        &[&bucket, &key, &seal(new.to_string().as_bytes())],
    )?;
    transaction.commit()?;
    Ok(new)
}

fn commit(client: &mut Client, writes: &[Write]) -> Result<(), StateError> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut transaction = client.transaction()?;
    let set = transaction.prepare(
        "INSERT INTO zhongtai_kv (bucket, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
    )?;
    let delete = transaction.prepare("DELETE FROM zhongtai_kv WHERE bucket = $1 AND key = $2")?;
    for write in writes {
        match &write.value {
            Some(value) => transaction.execute(&set, &[&write.bucket, &write.key, &seal(value)])?,
            None => transaction.execute(&delete, &[&write.bucket, &write.key])?,
        };
    }
    transaction.commit()?;
    Ok(())
}
