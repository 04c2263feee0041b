//! Limits on what one call may use: memory, time, stack and CPU priority.
//!
//! Memory is enforced per store by `CallLimiter`, which fails the call with
//! [`MemoryLimitExceeded`] the moment a guest asks for more than its share;
//! time by epoch interruption (a ticker thread advances the engine's epoch
//! every [`EPOCH_TICK`], and at each tick a running guest's store looks at
//! its wall-clock deadline); stack by wasmtime's `max_wasm_stack`. A call
//! still running after [`RuntimeLimits::demote_after`] goes on at idle CPU
//! priority (see `crate::runtime`), so that long calls — a looping guest
//! above all — use only the CPU that short calls leave.

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
    /// A call still running after this long goes on at idle CPU priority
    /// (Linux `SCHED_IDLE`): it runs only when no normal thread of the
    /// machine wants the CPU. `None` keeps every call at normal priority.
    pub demote_after: Option<Duration>,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 * 1024 * 1024,
            deadline: Duration::from_secs(5),
            max_wasm_stack: 512 * 1024,
            max_concurrent_instances: 256,
            demote_after: Some(Duration::from_millis(20)),
        }
    }
}

/// How often the epoch advances: a running guest is stopped at most this
/// long after its deadline, and demoted at most this long after
/// [`RuntimeLimits::demote_after`].
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

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
