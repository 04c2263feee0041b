//! In-memory doubles of [`Storage`] and [`Platform`] for native tests.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use crate::{Platform, Storage};

/// A bucket in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore(pub RefCell<BTreeMap<String, Vec<u8>>>);

impl MemoryStore {
    /// A copy of everything stored, to compare before and after.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.0.borrow().clone()
    }
}

impl Storage for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.borrow().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.borrow_mut().insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        self.0.borrow_mut().remove(key);
        Ok(())
    }
    fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        self.0.borrow_mut().extend(entries);
        Ok(())
    }
    fn increment(&self, key: &str, delta: u64) -> Result<u64, String> {
        let mut map = self.0.borrow_mut();
        let current: u64 = match map.get(key) {
            Some(bytes) => String::from_utf8_lossy(bytes)
                .parse()
                .map_err(|_| format!("{key:?} is not a counter"))?,
            None => 0,
        };
        let new = current + delta;
        map.insert(key.to_owned(), new.to_string().into_bytes());
        Ok(new)
    }
}

/// A platform with a settable clock and caller, configuration in a map,
/// counting "randomness" and locks that are always free (native tests run
/// one call at a time).
pub struct FakePlatform {
    /// Unix seconds.
    pub now: Cell<u64>,
    /// The calling department.
    pub department: RefCell<String>,
    /// Configuration values.
    pub config: RefCell<HashMap<String, String>>,
    counter: Cell<u8>,
}

impl FakePlatform {
    /// A platform at 2023-11-14 22:13:20 UTC, called by `department`.
    pub fn new(department: &str) -> Self {
        Self {
            now: Cell::new(1_700_000_000),
            department: RefCell::new(department.to_owned()),
            config: RefCell::new(HashMap::new()),
            counter: Cell::new(0),
        }
    }

    /// Sets a configuration value.
    pub fn set_config(&self, key: &str, value: &str) {
        self.config
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
    }

    /// Changes the calling department.
    pub fn call_as(&self, department: &str) {
        *self.department.borrow_mut() = department.to_owned();
    }

    /// Moves the clock forward.
    pub fn advance(&self, seconds: u64) {
        self.now.set(self.now.get() + seconds);
    }
}

impl Platform for FakePlatform {
    type Guard = ();
    fn now(&self) -> u64 {
        self.now.get()
    }
    fn random(&self, buf: &mut [u8]) {
        for b in buf {
            self.counter.set(self.counter.get().wrapping_add(1));
            *b = self.counter.get();
        }
    }
    fn config(&self, key: &str) -> Option<String> {
        self.config.borrow().get(key).cloned()
    }
    fn caller_department(&self) -> String {
        self.department.borrow().clone()
    }
    fn lock(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }
}
