//! Limits on what one call may use: memory, time, stack and CPU priority.
//!
//! Memory is enforced per store by `CallLimiter`, which fails the call with
//! [`MemoryLimitExceeded`] the moment a guest asks for more than its share;
//! time by epoch interruption (a ticker thread advances the engine's epoch
//! every 5 ms, and at each tick a running guest's store looks at
//! its wall-clock deadline); stack by wasmtime's `max_wasm_stack`. A call
//! still running after [`RuntimeLimits::demote_after`] goes on at idle CPU
//! priority (see `crate::runtime`), so that long calls — a looping guest
//! above all — use only the CPU that short calls leave; and `LongCalls`
//! remembers which services made such calls, so that their next calls
//! start at idle priority rather than each taking its first
//! `demote_after` at normal priority.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use std::time::Duration;

/// Limits the operator sets for every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLimits {
    /// Most linear memory one call may use, in bytes.
    pub memory_bytes: usize,
    /// Longest wall-clock time one call may run.
    pub deadline: Duration,
    /// Most wasm stack one call may use, in bytes.
    pub max_wasm_stack: usize,
    /// Most instances alive at once; calls beyond it are refused as busy.
    pub max_concurrent_instances: u32,
    /// A call that has used this much CPU time, counted from the first
    /// epoch tick it meets running wasm code (so one tick, 5 ms, more at
    /// most), goes on at idle CPU priority (Linux `SCHED_IDLE`): it runs
    /// only when no normal thread of the machine wants the CPU. When two
    /// of a service's calls do so within a second, or one runs until its
    /// deadline running rather than waiting, the service's calls start
    /// there for the next second.
    /// `None` keeps every call at normal priority.
    pub demote_after: Option<Duration>,
    /// How many requests' steps run at once on the runtime's
    /// [`StepPool`](crate::StepPool), not counting those waiting (for a
    /// lock, the store, a timer) or running long; more wait their turn.
    pub step_threads: usize,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 * 1024 * 1024,
            deadline: Duration::from_secs(5),
            max_wasm_stack: 512 * 1024,
            max_concurrent_instances: 256,
            demote_after: Some(Duration::from_millis(200)),
            step_threads: default_step_threads(),
        }
    }
}

/// Twice the CPUs the host may use: enough to keep them busy while some
/// steps wait on short things no place is given up for (a state read).
pub fn default_step_threads() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 2)
}

/// How often the epoch advances: a running guest is stopped at most this
/// long after its deadline, and demoted at most this long after
/// [`RuntimeLimits::demote_after`].
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The CPU time the calling thread has used.
pub(crate) fn thread_cpu_time() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let mut time = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `time` is a valid timespec to write into.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) } == 0 {
            return Duration::new(
                u64::try_from(time.tv_sec).unwrap_or(0),
                u32::try_from(time.tv_nsec).unwrap_or(0),
            );
        }
        Duration::ZERO
    }
    #[cfg(not(target_os = "linux"))]
    {
        Duration::ZERO
    }
}

/// How long a service whose calls ran long has its calls start at idle
/// priority, and how close together two calls that ran past
/// `demote_after` must be for that.
const LONG_CALL_MEMORY: Duration = Duration::from_secs(1);

/// The services (department and service) whose calls lately ran long,
/// with when.
///
/// One call that ran past `demote_after` is not enough: now and then a
/// short call does (a whoami call of some 30 µs was seen at 10 ms of CPU
/// time, 9 of them in user space, under load on the development machine),
/// and marking its service at once sent every whoami call to idle
/// priority for a second. So a call that ran past it is a strike, and a
/// second strike within [`LONG_CALL_MEMORY`] marks the service; a looping
/// department's calls, started many at once, strike twice within a few
/// milliseconds. A call that ran until its deadline running marks its
/// service at once.
#[derive(Default)]
pub(crate) struct LongCalls {
    /// By department, then service.
    marks: RwLock<HashMap<String, HashMap<String, Memory>>>,
    /// Calls that went on (or started) at idle priority.
    pub(crate) demoted: AtomicU64,
}

/// What is remembered of one service.
#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    /// When its calls were last found to run long.
    marked: Option<Instant>,
    /// When one of its calls last ran past `demote_after`.
    struck: Option<Instant>,
}

impl Memory {
    fn lately(at: Option<Instant>, now: Instant) -> bool {
        at.is_some_and(|at| now.saturating_duration_since(at) < LONG_CALL_MEMORY)
    }
}

impl LongCalls {
    /// Remembers that `department`'s `service` has calls that run long.
    pub(crate) fn mark(&self, department: &str, service: &str) {
        self.remember(department, service, Instant::now(), |memory, now| {
            memory.marked = Some(now);
        });
    }

    /// Counts a call of `department`'s `service` that ran past
    /// `demote_after`: the second within [`LONG_CALL_MEMORY`] marks it.
    pub(crate) fn strike(&self, department: &str, service: &str) {
        self.strike_at(department, service, Instant::now());
    }

    fn strike_at(&self, department: &str, service: &str, now: Instant) {
        self.remember(department, service, now, |memory, now| {
            if Memory::lately(memory.struck, now) {
                memory.marked = Some(now);
            }
            memory.struck = Some(now);
        });
    }

    fn remember(
        &self,
        department: &str,
        service: &str,
        now: Instant,
        change: impl FnOnce(&mut Memory, Instant),
    ) {
        let mut marks = self.marks.write().unwrap_or_else(|e| e.into_inner());
        if marks.values().map(HashMap::len).sum::<usize>() >= 4096 {
            for services in marks.values_mut() {
                services.retain(|_, memory| {
                    Memory::lately(memory.marked, now) || Memory::lately(memory.struck, now)
                });
            }
            marks.retain(|_, services| !services.is_empty());
        }
        let memory = marks
            .entry(department.to_owned())
            .or_default()
            .entry(service.to_owned())
            .or_default();
        change(memory, now);
    }

    /// Whether `department`'s `service` was found to have calls that run
    /// long within the last [`LONG_CALL_MEMORY`].
    pub(crate) fn lately(&self, department: &str, service: &str) -> bool {
        self.lately_at(department, service, Instant::now())
    }

    fn lately_at(&self, department: &str, service: &str, now: Instant) -> bool {
        let marks = self.marks.read().unwrap_or_else(|e| e.into_inner());
        marks
            .get(department)
            .and_then(|services| services.get(service))
            .is_some_and(|memory| Memory::lately(memory.marked, now))
    }
}

/// The error a call fails with when its guest asks for too much memory.
#[derive(Debug, thiserror::Error)]
#[error("guest asked for {desired} bytes of linear memory; the limit is {limit}")]
pub struct MemoryLimitExceeded {
    /// What the guest asked for.
    pub desired: usize,
    /// What it may have.
    pub limit: usize,
}

/// Per-store resource limiter.
pub(crate) struct CallLimiter {
    memory_bytes: usize,
}

impl CallLimiter {
    pub(crate) fn new(memory_bytes: usize) -> Self {
        Self { memory_bytes }
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired,
                limit: self.memory_bytes,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn one_call_that_ran_long_leaves_its_service_at_normal_priority() {
        let calls = LongCalls::default();
        let start = Instant::now();
        calls.strike_at("public-security", "whoami", start);
        assert!(!calls.lately_at("public-security", "whoami", start + MS));
        // Another, over a second later, is again the only one lately.
        calls.strike_at("public-security", "whoami", start + 1500 * MS);
        assert!(!calls.lately_at("public-security", "whoami", start + 1501 * MS));
    }

    #[test]
    fn two_within_a_second_mark_their_service_for_a_second() {
        let calls = LongCalls::default();
        let start = Instant::now();
        calls.strike_at("civil-affairs", "looping", start);
        calls.strike_at("civil-affairs", "looping", start + 5 * MS);
        assert!(calls.lately_at("civil-affairs", "looping", start + 6 * MS));
        assert!(calls.lately_at("civil-affairs", "looping", start + 1004 * MS));
        assert!(!calls.lately_at("civil-affairs", "looping", start + 1006 * MS));
        // Strikes of one service do not count against another.
        calls.strike_at("civil-affairs", "counted", start + 7 * MS);
        assert!(!calls.lately_at("civil-affairs", "counted", start + 8 * MS));
        assert!(!calls.lately_at("public-security", "looping", start + 8 * MS));
    }

    #[test]
    fn a_call_that_ran_until_its_deadline_marks_its_service_at_once() {
        let calls = LongCalls::default();
        calls.mark("civil-affairs", "looping");
        assert!(calls.lately("civil-affairs", "looping"));
        assert!(!calls.lately("civil-affairs", "napping"));
    }
}
