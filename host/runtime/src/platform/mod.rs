//! The imports the host gives every component (`zhongtai:platform/capability`):
//! `wasi:keyvalue` on the [`KeyValueStore`],
//! `wasi:config` from the [`HostConfig`](crate::config::HostConfig), the call
//! context, and `wasi:logging` into `tracing`; plus the WASI interfaces Rust's
//! std imports, with no filesystem, network, environment or arguments.
//!
//! All of it hangs off [`HostState`], the data of one store, which lives for
//! exactly one call.

mod config;
mod context;
mod keyvalue;
mod locks;
mod logging;
mod transaction;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::config::PackageConfig;
use crate::context::CallContext;
use crate::limits::CallLimiter;
use crate::state::KeyValueStore;

pub use keyvalue::{Bucket, KeyValueError};
pub use locks::{LockGuard, LockTable};

wasmtime::component::bindgen!({
    path: [
        "../../wit/deps/keyvalue",
        "../../wit/deps/config",
        "../../wit/deps/logging",
        "../../wit/platform",
    ],
    world: "zhongtai:platform/capability",
    imports: { default: trappable },
    trappable_error_type: {
        "wasi:keyvalue/store.error" => KeyValueError,
    },
    with: {
        "wasi:keyvalue/store.bucket": Bucket,
        "zhongtai:platform/locks.guard": LockGuard,
    },
});

/// Every interface the platform links for components, with its version: the
/// WASI 0.2 interfaces (from wasmtime-wasi, WASI 0.2.12) and the
/// `zhongtai:platform/capability` world. A registry refuses components that
/// import anything else, so that what it accepts is what this host can run.
pub const PROVIDED_INTERFACES: &[&str] = &[
    "wasi:cli/environment@0.2.12",
    "wasi:cli/exit@0.2.12",
    "wasi:cli/stdin@0.2.12",
    "wasi:cli/stdout@0.2.12",
    "wasi:cli/stderr@0.2.12",
    "wasi:cli/terminal-input@0.2.12",
    "wasi:cli/terminal-output@0.2.12",
    "wasi:cli/terminal-stdin@0.2.12",
    "wasi:cli/terminal-stdout@0.2.12",
    "wasi:cli/terminal-stderr@0.2.12",
    "wasi:clocks/monotonic-clock@0.2.12",
    "wasi:clocks/wall-clock@0.2.12",
    "wasi:filesystem/types@0.2.12",
    "wasi:filesystem/preopens@0.2.12",
    "wasi:io/error@0.2.12",
    "wasi:io/poll@0.2.12",
    "wasi:io/streams@0.2.12",
    "wasi:random/random@0.2.12",
    "wasi:random/insecure@0.2.12",
    "wasi:random/insecure-seed@0.2.12",
    "wasi:sockets/network@0.2.12",
    "wasi:sockets/instance-network@0.2.12",
    "wasi:sockets/ip-name-lookup@0.2.12",
    "wasi:sockets/tcp@0.2.12",
    "wasi:sockets/tcp-create-socket@0.2.12",
    "wasi:sockets/udp@0.2.12",
    "wasi:sockets/udp-create-socket@0.2.12",
    "wasi:keyvalue/store@0.2.0-draft",
    "wasi:keyvalue/atomics@0.2.0-draft",
    "wasi:keyvalue/batch@0.2.0-draft",
    "wasi:config/store@0.2.0-rc.1",
    "wasi:logging/logging@0.1.0-draft",
    "zhongtai:platform/context@1.0.0",
    "zhongtai:platform/locks@1.0.0",
];

/// [`PROVIDED_INTERFACES`] as owned strings, as a registry takes them.
pub fn provided_interfaces() -> Vec<String> {
    PROVIDED_INTERFACES.iter().map(|s| s.to_string()).collect()
}

/// How much of a guest's stderr is kept to explain a failed call.
pub(crate) const STDERR_CAPTURE_BYTES: usize = 16 * 1024;

/// What one call's store holds: WASI state, resources, limits and the
/// platform's own state.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    pub(crate) stderr: MemoryOutputPipe,
    /// How many log lines the call has written.
    pub(crate) log_lines: u32,
    kv: Arc<dyn KeyValueStore>,
    package: Arc<str>,
    config: PackageConfig,
    context: CallContext,
    /// The call's writes, committed when it returns.
    pub(crate) transaction: transaction::Transaction,
    /// The call's session with the store, opened on first use.
    session: Option<Box<dyn crate::state::Session>>,
    lock_table: Arc<LockTable>,
    held_locks: HashSet<String>,
    /// Locks the guest released, still held until the call's commit.
    pub(crate) released_locks: Vec<LockGuard>,
    /// When the call must end.
    pub(crate) deadline_at: Instant,
    /// When lock waits give up: a little before the deadline, so that a
    /// guest told "timeout" has time to return before the epoch ends it.
    pub(crate) lock_wait_until: Instant,
    /// The CPU time of the thread running the call (or instantiation) in
    /// progress when it began.
    pub(crate) started_cpu: std::time::Duration,
    /// The CPU time the call in progress has used since the first epoch
    /// tick it met running wasm code.
    pub(crate) ticked: TickedCpu,
    /// Whether the call in progress already runs at idle priority.
    pub(crate) demoted: bool,
    /// Whether the call in progress has run past `demote_after`.
    pub(crate) ran_long: bool,
    /// Whether that has been counted against its service already (see
    /// `LongCalls::strike`).
    pub(crate) struck: bool,
    /// The call in progress's `demote_after`, when it may be demoted.
    pub(crate) demote_after: Option<std::time::Duration>,
    /// The services whose calls lately ran long.
    pub(crate) long_calls: Arc<crate::limits::LongCalls>,
}

/// When the lock waits of a call ending at `deadline_at` give up: a fifth
/// of the time it has left earlier, at most 250 ms earlier.
fn lock_wait_until(deadline_at: Instant) -> Instant {
    let left = deadline_at.saturating_duration_since(Instant::now());
    deadline_at - (left / 5).min(std::time::Duration::from_millis(250))
}

/// The CPU time a call has used since the first epoch tick it met while
/// running wasm code: what decides whether it runs long.
///
/// Counted from its start, a short call could look long: on a virtual
/// machine the thread's CPU clock sometimes charges it milliseconds it
/// did not use (a verify call of some 30 µs was seen at 5–9 ms of thread
/// CPU time, without blocking, under load on the development machine), and
/// one such reading marked a short service as running long, sending its
/// calls to idle priority. A call meets its first tick at most one tick
/// after it starts running wasm code and, if short, ends before the next;
/// what it is charged before the first tick never counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TickedCpu {
    /// What the call had used when it met its first tick.
    at_first_tick: Option<std::time::Duration>,
}

impl TickedCpu {
    /// At an epoch tick, when the call has used `used` since it began:
    /// what it has used since its first tick (nothing, at the first).
    pub(crate) fn at_tick(&mut self, used: std::time::Duration) -> std::time::Duration {
        self.at_first_tick.get_or_insert(used);
        self.since_first_tick(used)
    }

    /// What a call that has used `used` since it began has used since its
    /// first tick; nothing if it met none.
    pub(crate) fn since_first_tick(&self, used: std::time::Duration) -> std::time::Duration {
        self.at_first_tick
            .map_or(std::time::Duration::ZERO, |first| {
                used.saturating_sub(first)
            })
    }
}

/// What a call's [`HostState`] is made from, besides the call's context.
pub(crate) struct Shared {
    pub(crate) kv: Arc<dyn KeyValueStore>,
    pub(crate) lock_table: Arc<LockTable>,
    pub(crate) long_calls: Arc<crate::limits::LongCalls>,
}

impl HostState {
    /// State for one call of a component of `package`.
    pub(crate) fn new(
        shared: &Shared,
        package: Arc<str>,
        config: PackageConfig,
        context: CallContext,
        limiter: CallLimiter,
        deadline_at: Instant,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter,
            stderr,
            log_lines: 0,
            kv: shared.kv.clone(),
            package,
            config,
            context,
            transaction: transaction::Transaction::default(),
            session: None,
            lock_table: shared.lock_table.clone(),
            held_locks: HashSet::new(),
            released_locks: Vec::new(),
            deadline_at,
            lock_wait_until: lock_wait_until(deadline_at),
            started_cpu: std::time::Duration::ZERO,
            ticked: TickedCpu::default(),
            demoted: false,
            ran_long: false,
            struck: false,
            demote_after: None,
            long_calls: shared.long_calls.clone(),
        }
    }

    /// Starts a call (or the instantiation) that must end at `deadline_at`,
    /// and so sets when its lock waits give up. Returns whether it should
    /// start at idle priority: when calls may be demoted (`demote_after`),
    /// it is a call (`is_call`; an instantiation is short unless its guest
    /// misbehaves, and is then demoted like any call) and one of its
    /// service's lately ran long.
    pub(crate) fn begin(
        &mut self,
        deadline_at: Instant,
        demote_after: Option<std::time::Duration>,
        is_call: bool,
    ) -> bool {
        self.deadline_at = deadline_at;
        self.lock_wait_until = lock_wait_until(deadline_at);
        self.ran_long = false;
        self.struck = false;
        self.ticked = TickedCpu::default();
        self.demote_after = demote_after;
        if demote_after.is_none() {
            self.demoted = false;
            return false;
        }
        self.started_cpu = crate::limits::thread_cpu_time();
        self.demoted = is_call
            && self.long_calls.lately(
                self.context.department.as_str(),
                self.context.service.as_str(),
            );
        if self.demoted {
            self.long_calls.demoted.fetch_add(1, Ordering::Relaxed);
        }
        self.demoted
    }

    /// Ends what [`HostState::begin`] began, on the thread that began it
    /// (at normal priority, so that no lock other calls need is taken at
    /// idle priority): a call that ran long counts against its service
    /// (`LongCalls::strike`: two such calls within a second, and its
    /// service is remembered as one whose calls run long), and a call that
    /// ran until its deadline (`timed_out`) when it was running rather than
    /// waiting has its service remembered at once — it had already been
    /// demoted, or it used at least a quarter of
    /// `demote_after` in CPU time after its first epoch tick (a guest
    /// looping among many on a busy machine may not reach `demote_after`
    /// itself before its deadline; see [`TickedCpu`] for why not from its
    /// start).
    /// A short call that timed out because it waited for the CPU (or a
    /// lock) says nothing about its service: marking it would send the
    /// service's next calls to idle priority, where beside looping guests
    /// they would time out again, and keep it there.
    pub(crate) fn end(&mut self, timed_out: bool) {
        let running = || {
            self.demoted
                || self.demote_after.is_some_and(|after| {
                    let used = crate::limits::thread_cpu_time().saturating_sub(self.started_cpu);
                    self.ticked.since_first_tick(used) >= after / 4
                })
        };
        let (department, service) = (
            self.context.department.as_str(),
            self.context.service.as_str(),
        );
        if timed_out && running() {
            self.long_calls.mark(department, service);
        } else if self.ran_long && !self.struck {
            self.long_calls.strike(department, service);
        }
    }

    /// At an epoch tick of a call that may be demoted after `after` of
    /// CPU time (not wall-clock time: a short call waiting for a busy CPU
    /// is not a long call), counted from the first tick it met (see
    /// [`TickedCpu`]): notes whether it has now used that much, and
    /// returns whether it should now go on at idle priority (it does not
    /// already; the call then counts against its service at once, see
    /// `LongCalls::strike`).
    pub(crate) fn ran_past(&mut self, after: std::time::Duration) -> bool {
        if self.ran_long {
            return false;
        }
        // A call demoted from its start runs on an idle thread's job.
        let used = if self.demoted {
            crate::idle::job_cpu_time()
        } else {
            crate::limits::thread_cpu_time().saturating_sub(self.started_cpu)
        };
        if self.ticked.at_tick(used) < after {
            return false;
        }
        self.ran_long = true;
        if !self.demoted {
            // Still on the thread that began the call, at normal priority.
            self.long_calls.strike(
                self.context.department.as_str(),
                self.context.service.as_str(),
            );
            self.struck = true;
        }
        let demote = !std::mem::replace(&mut self.demoted, true);
        if demote {
            self.long_calls.demoted.fetch_add(1, Ordering::Relaxed);
        }
        demote
    }

    /// The call's pending writes and its session with the store, which is
    /// opened on first use.
    pub(crate) fn state(
        &mut self,
    ) -> Result<
        (
            &mut transaction::Transaction,
            &mut dyn crate::state::Session,
        ),
        crate::state::StateError,
    > {
        if self.session.is_none() {
            self.session = Some(self.kv.clone().session(self.deadline_at)?);
        }
        let session = self
            .session
            .as_deref_mut()
            .expect("the session was just opened");
        Ok((&mut self.transaction, session))
    }

    /// Commits the call's writes: applies them, lets go of the locks the
    /// guest released (the next holder of a lock reads what this call
    /// wrote under it), then waits until they — and whatever else of its
    /// package the call may have read — are durable, so that nobody is
    /// answered about state a crash could still take. The session ends
    /// here (locks a guest still holds end with its store).
    pub(crate) fn commit(&mut self) -> Result<(), crate::state::StateError> {
        let writes = self.transaction.take();
        let touched_state = self.session.is_some() || !writes.is_empty();
        let applied = match (&mut self.session, writes.is_empty()) {
            (_, true) => Ok(0),
            // Waits for the writer (or the store's round trip).
            (Some(session), false) => crate::pool::blocking(|| session.apply(writes)),
            (None, false) => crate::pool::blocking(|| self.kv.apply(writes)),
        };
        self.end_session();
        let applied = applied?;
        if !touched_state {
            return Ok(());
        }
        let mark = applied.max(self.kv.applied_mark(&self.package));
        if mark == 0 {
            return Ok(());
        }
        crate::pool::blocking(|| self.kv.wait_durable(mark))
    }

    /// Drops the call's writes and lets go of the locks it released; after
    /// a trap.
    pub(crate) fn abandon(&mut self) {
        drop(self.transaction.take());
        self.end_session();
    }

    fn end_session(&mut self) {
        if let Some(mut session) = self.session.take() {
            session.unlock_all();
        }
        for guard in self.released_locks.drain(..) {
            self.held_locks.remove(guard.key());
        }
    }

    /// What the guest wrote to stderr (a panic message, for one), lossily.
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Adds every platform import to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    Capability::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TickedCpu;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn what_a_short_call_was_charged_before_its_first_tick_does_not_make_it_long() {
        let mut ticked = TickedCpu::default();
        // Charged 9 ms it did not use by the time it met its first tick.
        assert_eq!(ticked.at_tick(9 * MS), Duration::ZERO);
        // It ends at once: nothing since that tick.
        assert_eq!(ticked.since_first_tick(9 * MS + MS / 20), MS / 20);
    }

    #[test]
    fn a_looping_call_is_counted_from_its_first_tick_on() {
        let mut ticked = TickedCpu::default();
        let used: Vec<_> = [2, 7, 12, 17]
            .into_iter()
            .map(|ms| ticked.at_tick(ms * MS))
            .collect();
        assert_eq!(used, [Duration::ZERO, 5 * MS, 10 * MS, 15 * MS]);
        assert_eq!(ticked.since_first_tick(20 * MS), 18 * MS);
    }

    #[test]
    fn a_call_that_met_no_tick_used_nothing_that_counts() {
        assert_eq!(
            TickedCpu::default().since_first_tick(300 * MS),
            Duration::ZERO
        );
    }
}
