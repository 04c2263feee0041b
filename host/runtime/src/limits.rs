//! Limits on what one call may use: memory, time and stack.
//!
//! Memory is enforced per store by `CallLimiter`, which fails the call with
//! [`MemoryLimitExceeded`] the moment a guest asks for more than its share;
//! time by epoch interruption (a ticker thread advances the engine's epoch,
//! and each store gets a deadline in ticks); stack by wasmtime's
//! `max_wasm_stack`.

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
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 * 1024 * 1024,
            deadline: Duration::from_secs(5),
            max_wasm_stack: 512 * 1024,
            max_concurrent_instances: 256,
        }
    }
}

/// How often the epoch advances; deadlines are rounded up to whole ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

impl RuntimeLimits {
    /// The deadline in epoch ticks, at least one.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let ticks = self.deadline.as_micros().div_ceil(EPOCH_TICK.as_micros());
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
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
