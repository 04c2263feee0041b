//! [`PostgresStore`]: component state in PostgreSQL, shared by every host
//! that points at the same database.
//!
//! Keys live in one table, `zhongtai_kv(bucket, key, value)`; a call's
//! writes are one PostgreSQL transaction; counters are updated under a row
//! lock in a transaction of their own. Named locks are PostgreSQL session
//! advisory locks, each held on a connection of its own until released, so
//! a lock taken on one host excludes every other host. The schema is
//! created and upgraded by numbered migrations on connect, one host at a
//! time (under an advisory lock).
//!
//! PostgreSQL features used: `bytea`, `INSERT … ON CONFLICT … DO UPDATE`,
//! `SELECT … FOR UPDATE`, session advisory locks
//! (`pg_advisory_lock`/`pg_advisory_unlock`), `lock_timeout`, `BIGSERIAL`
//! and `LISTEN`/`NOTIFY` (for shared deployments). A
//! PostgreSQL-compatible database needs those.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use postgres::{Client, NoTls};
use sha2::Digest;

use super::{HostsLock, KeyPage, KeyValueStore, StateError, Write, counter_value, seal, unseal};

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

/// Idle connections, shared with the locks that return theirs.
struct Pool {
    config: postgres::Config,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    fn take(&self) -> Result<Client, StateError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(client) if !client.is_closed() => Ok(client),
            _ => Ok(self.config.connect(NoTls)?),
        }
    }

    fn give_back(&self, client: Client) {
        if !client.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(client);
        }
    }
}

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
            idle: Mutex::new(Vec::new()),
        });
        let mut client = pool.take()?;
        migrate(&mut client)?;
        pool.give_back(client);
        Ok(Self { pool })
    }

    fn with_client<T>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut client = self.pool.take()?;
        let result = work(&mut client);
        // A connection left inside a failed transaction is not reused.
        if result.is_ok() {
            self.pool.give_back(client);
        }
        result
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

/// A held advisory lock and the connection holding it.
struct AdvisoryLock {
    client: Option<Client>,
    key: i64,
    pool: Arc<Pool>,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let Some(mut client) = self.client.take() {
            match client.execute("SELECT pg_advisory_unlock($1)", &[&self.key]) {
                Ok(_) => self.pool.give_back(client),
                // Closing the connection releases the lock as well.
                Err(error) => tracing::warn!(%error, "releasing an advisory lock"),
            }
        }
    }
}

impl KeyValueStore for PostgresStore {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let sealed: Option<Vec<u8>> = self.with_client(|c| {
            Ok(c.query_opt(
                "SELECT value FROM zhongtai_kv WHERE bucket = $1 AND key = $2",
                &[&bucket, &key],
            )?
            .map(|row| row.get(0)))
        })?;
        sealed.map(|s| unseal(bucket, key, &s)).transpose()
    }

    fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError> {
        let skip = i64::try_from(cursor.unwrap_or(0)).unwrap_or(i64::MAX);
        let take = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let mut keys: Vec<String> = self.with_client(|c| {
            Ok(c.query(
                "SELECT key FROM zhongtai_kv WHERE bucket = $1
                 ORDER BY key COLLATE \"C\" LIMIT $2 OFFSET $3",
                &[&bucket, &take, &skip],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect())
        })?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let cursor = more.then(|| skip as u64 + keys.len() as u64);
        Ok(KeyPage { keys, cursor })
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError> {
        self.with_client(|c| {
            let mut transaction = c.transaction()?;
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
            let old = counter_value(key, &unseal(bucket, key, &sealed)?)?;
            let new = old
                .checked_add(delta)
                .ok_or_else(|| StateError::CounterOverflow {
                    key: key.to_owned(),
                })?;
            transaction.execute(
                "UPDATE zhongtai_kv SET value = $3 WHERE bucket = $1 AND key = $2",
                &[&bucket, &key, &seal(new.to_string().as_bytes())],
            )?;
            transaction.commit()?;
            Ok(new)
        })
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StateError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.with_client(|c| {
            let mut transaction = c.transaction()?;
            let set = transaction.prepare(
                "INSERT INTO zhongtai_kv (bucket, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
            )?;
            let delete =
                transaction.prepare("DELETE FROM zhongtai_kv WHERE bucket = $1 AND key = $2")?;
            for write in &writes {
                match &write.value {
                    Some(value) => {
                        transaction.execute(&set, &[&write.bucket, &write.key, &seal(value)])?
                    }
                    None => transaction.execute(&delete, &[&write.bucket, &write.key])?,
                };
            }
            transaction.commit()?;
            Ok(())
        })
    }

    fn lock_across_hosts(
        &self,
        name: &str,
        deadline: Instant,
    ) -> Result<Option<HostsLock>, StateError> {
        let mut client = self.pool.take()?;
        let key = lock_key(name);
        let wait = deadline.saturating_duration_since(Instant::now());
        // lock_timeout 0 would mean "wait forever".
        let millis = wait.as_millis().clamp(1, i32::MAX as u128);
        client.batch_execute(&format!("SET lock_timeout = {millis}"))?;
        let taken = client.execute("SELECT pg_advisory_lock($1)", &[&key]);
        client.batch_execute("SET lock_timeout = 0")?;
        match taken {
            Ok(_) => Ok(Some(HostsLock::holding(AdvisoryLock {
                client: Some(client),
                key,
                pool: self.pool.clone(),
            }))),
            Err(error) if error.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                self.pool.give_back(client);
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }
}
