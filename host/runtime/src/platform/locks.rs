//! `zhongtai:platform/locks`: named locks shared by every instance of a
//! package, so that concurrent calls can take turns.
//!
//! A [`LockTable`] belongs to the runtime; on a store several hosts share,
//! the call's session also takes the lock for every other host, until the
//! call ends. A guest's [`LockGuard`] lives in its store's resource table. When the guest drops it, the lock stays held
//! until the call's writes are applied (so the next holder reads them; on
//! the embedded store their flush to disk may still be running),
//! and it is released at the latest when the store of the call is dropped —
//! including after a trap or a timeout. Waiting is bounded by the call's deadline: a host call cannot
//! be interrupted by the epoch, so it must give up on its own.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use wasmtime::component::Resource;

use super::HostState;
use super::zhongtai::platform::locks;

/// Longest lock name, in bytes.
pub const MAX_LOCK_NAME_BYTES: usize = 256;

#[derive(Default)]
struct NamedLock {
    held: Mutex<bool>,
    released: Condvar,
}

impl NamedLock {
    /// Waits until the lock is free and takes it; `false` when `deadline`
    /// came first.
    fn wait_until_free(&self, deadline: Instant) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            held = self
                .released
                .wait_timeout(held, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *held = true;
        true
    }
}

/// Every named lock of every package, keyed by `package/name`.
#[derive(Default)]
pub struct LockTable {
    locks: Mutex<HashMap<String, Arc<NamedLock>>>,
}

impl LockTable {
    fn entry(&self, key: &str) -> Arc<NamedLock> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(key.to_owned()).or_default().clone()
    }

    /// Takes the lock `key`, waiting until `deadline` at most.
    fn acquire(self: &Arc<Self>, key: &str, deadline: Instant) -> Option<LockGuard> {
        let lock = self.entry(key);
        let taken = {
            let mut held = lock.held.lock().unwrap_or_else(|e| e.into_inner());
            !std::mem::replace(&mut *held, true)
        };
        // Held by another call: wait, with this thread's place in the step
        // pool given up meanwhile.
        if !taken && !crate::pool::blocking(|| lock.wait_until_free(deadline)) {
            self.forget_if_unused(key, lock);
            return None;
        }
        Some(LockGuard {
            table: self.clone(),
            key: key.to_owned(),
            lock: Some(lock),
        })
    }

    /// Drops the table's entry for `key` when nobody else holds or awaits it,
    /// so that locks named after ever-new things (order ids) do not pile up.
    fn forget_if_unused(&self, key: &str, lock: Arc<NamedLock>) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // One reference is the table's, one is `lock`.
        let idle = !*lock.held.lock().unwrap_or_else(|e| e.into_inner());
        if idle && Arc::strong_count(&lock) == 2 {
            locks.remove(key);
        }
    }

    /// How many names the table tracks; for tests.
    pub fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the table tracks no names.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A held lock; releases it when dropped.
pub struct LockGuard {
    table: Arc<LockTable>,
    key: String,
    lock: Option<Arc<NamedLock>>,
}

impl LockGuard {
    /// The lock's name, `package/name`.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            *lock.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
            lock.released.notify_one();
            self.table.forget_if_unused(&self.key, lock);
        }
    }
}

impl locks::Host for HostState {
    fn acquire(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<LockGuard>, locks::Error>> {
        if name.is_empty() || name.len() > MAX_LOCK_NAME_BYTES {
            return Ok(Err(locks::Error::InvalidName));
        }
        let key = format!("{}/{name}", self.package);
        // Released by the guest but held until the commit: taken again.
        if let Some(at) = self.released_locks.iter().position(|g| g.key() == key) {
            let guard = self.released_locks.swap_remove(at);
            return Ok(Ok(self.table.push(guard)?));
        }
        if self.held_locks.contains(&key) {
            return Ok(Err(locks::Error::AlreadyHeld));
        }
        // This host's lock table first, then, for a shared store, the
        // other hosts: a wait across hosts is one connection per waiter.
        // The session first: a call holding a lock of this host never
        // waits for a connection (which calls waiting for that lock hold).
        if let Err(error) = self.state() {
            return Err(wasmtime::Error::msg(format!(
                "taking the lock {key:?}: no session with the store: {error}"
            )));
        }
        let deadline = self.lock_wait_until;
        let Some(guard) = self.lock_table.acquire(&key, deadline) else {
            return Ok(Err(locks::Error::Timeout));
        };
        let across_hosts = self
            .state()
            .and_then(|(_, session)| session.lock(&key, deadline));
        match across_hosts {
            Ok(true) => {}
            Ok(false) => return Ok(Err(locks::Error::Timeout)),
            Err(error) => {
                return Err(wasmtime::Error::msg(format!(
                    "taking the lock {key:?} across hosts: {error}"
                )));
            }
        }
        self.held_locks.insert(key);
        Ok(Ok(self.table.push(guard)?))
    }
}

impl locks::HostGuard for HostState {
    fn drop(&mut self, guard: Resource<LockGuard>) -> wasmtime::Result<()> {
        let guard = self.table.delete(guard)?;
        self.released_locks.push(guard);
        Ok(())
    }
}
