//! How many requests of one department the host handles at once.
//!
//! Every department shares the host's instance pool and threads. Without a
//! cap, one department whose calls are slow — a looping guest held to its
//! deadline, a flood of heavy requests — could hold every instance, and the
//! other departments would be answered `busy`. [`DepartmentGates`] admits at
//! most `limit` requests per department at once; the next is answered `503
//! department-busy` with `Retry-After` at once, never queued, while other
//! departments are served as before. CPU is shared by priority instead: a
//! call still running after the runtime's `demote_after` goes on at idle
//! priority (see `zhongtai_runtime::RuntimeLimits`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::ApiError;

/// The most requests one department may have in progress unless the
/// operator says otherwise: a quarter of the runtime's default instance
/// pool.
pub const DEFAULT_LIMIT: usize = 64;

/// Requests in progress per department, each department held to a limit.
#[derive(Debug)]
pub struct DepartmentGates {
    limit: usize,
    in_progress: Mutex<HashMap<String, Arc<AtomicUsize>>>,
}

/// A request admitted for its department; it leaves when dropped.
#[derive(Debug)]
pub struct Admitted {
    count: Arc<AtomicUsize>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl DepartmentGates {
    /// Gates holding each department to `limit` requests at once (at
    /// least one).
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            in_progress: Mutex::new(HashMap::new()),
        }
    }

    /// The most requests one department may have in progress.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Admits a request of `department`, or refuses it with `503
    /// department-busy` when the department already has its limit in
    /// progress.
    pub fn admit(&self, department: &str) -> Result<Admitted, ApiError> {
        let count = {
            let mut counts = self.in_progress.lock().unwrap_or_else(|e| e.into_inner());
            match counts.get(department) {
                Some(count) => count.clone(),
                None => counts.entry(department.to_owned()).or_default().clone(),
            }
        };
        let admitted = count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return Err(ApiError::new(
                503,
                "department-busy",
                format!(
                    "{department} already has as many requests in progress as one department may have at once ({}); try again shortly",
                    self.limit
                ),
            ));
        }
        Ok(Admitted { count })
    }

    /// How many requests of `department` are in progress.
    pub fn in_progress(&self, department: &str) -> usize {
        self.in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(department)
            .map_or(0, |count| count.load(Ordering::Acquire))
    }
}

impl Default for DepartmentGates {
    /// [`DEFAULT_LIMIT`] per department.
    fn default() -> Self {
        Self::new(DEFAULT_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_department_at_its_limit_is_refused_and_others_are_not() {
        let gates = DepartmentGates::new(2);
        let first = gates.admit("taxation").unwrap();
        let _second = gates.admit("taxation").unwrap();
        let refused = gates.admit("taxation").unwrap_err();
        assert_eq!(refused.status.as_u16(), 503);
        assert_eq!(refused.code, "department-busy");
        assert_eq!(
            refused.message,
            "taxation already has as many requests in progress as one department may have at once (2); try again shortly"
        );
        let _other = gates.admit("public-security").unwrap();
        assert_eq!(gates.in_progress("taxation"), 2);
        drop(first);
        assert_eq!(gates.in_progress("taxation"), 1);
        let _again = gates.admit("taxation").unwrap();
    }

    #[test]
    fn many_threads_never_exceed_the_limit() {
        let gates = Arc::new(DepartmentGates::new(3));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gates, most) = (gates.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        if let Ok(_admitted) = gates.admit("d") {
                            most.fetch_max(gates.in_progress("d"), Ordering::AcqRel);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(most.load(Ordering::Acquire) <= 3);
        assert_eq!(gates.in_progress("d"), 0);
    }
}
