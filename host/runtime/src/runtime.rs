//! The [`Runtime`]: one wasmtime engine with the pooling allocator and epoch
//! deadlines, one linker with the platform imports, and the generic call path
//! — JSON arguments in, a fresh instance per call, JSON result out.
//!
//! A call runs on a fiber (`call_async`) under a timer as well as the epoch
//! deadline: the epoch interrupts wasm code, the timer a guest that waits
//! in `wasi:io/poll` (a sleep, a clock subscription). Either way the call
//! ends at its deadline, its writes are dropped and its locks released.
//!
//! At every epoch tick a running guest's store looks at the clock: past its
//! deadline the guest is interrupted; past [`RuntimeLimits::demote_after`]
//! of CPU time since the first tick it met (what a thread is charged
//! before that is not counted: see `platform::TickedCpu`) it yields once,
//! and the thread driving the call hands the rest of it to a thread at
//! idle CPU priority (`SCHED_IDLE` on Linux; the threads are kept for
//! reuse, see `crate::idle`) and waits for it. When another call of its
//! service did so within the last second (one such call is not enough: a
//! short call now and then runs a little long; see `LongCalls`), its
//! service's next calls start there for a second, as after a call that ran
//! until its deadline running (not one that timed out waiting for the CPU
//! or a lock; see `HostState::end`). Short calls rarely meet a tick, and a
//! looping guest takes only the CPU nobody else wants until its deadline
//! ends it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use wasmtime::component::{Func, Instance, Linker, Val};
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

use crate::cache::CompileCache;
use crate::compiler::Compiler;
use crate::component::{self, ExportedFunction, LoadedComponent, LoadedInner};
use crate::config::HostConfig;
use crate::context::CallContext;
use crate::error::{ArgumentProblem, CallError, LoadError, ValueErrorInArgument};
use crate::limits::{CallLimiter, EPOCH_TICK, MemoryLimitExceeded, RuntimeLimits};
use crate::outcome::Returned;
use crate::platform::{self, HostState, LockTable, Shared};
use crate::state::KeyValueStore;
use crate::values::{describe_json, describe_type, json_to_val};

/// How to build a [`Runtime`].
pub struct RuntimeOptions {
    /// Limits for every call.
    pub limits: RuntimeLimits,
    /// Where compiled components are cached; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Configuration handed to components through `wasi:config`.
    pub config: HostConfig,
    /// State behind `wasi:keyvalue`.
    pub store: Arc<dyn KeyValueStore>,
    /// Where components missing from the cache are compiled.
    pub compiler: Compiler,
}

/// Runs components: loads them once, instantiates them afresh for each call.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    shared: Shared,
    config: HostConfig,
    limits: RuntimeLimits,
    cache: CompileCache,
    compiler: Compiler,
    steps: crate::pool::StepPool,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine, the linker and the epoch ticker.
    pub fn new(options: RuntimeOptions) -> anyhow::Result<Self> {
        let limits = options.limits;
        let mut config = engine_config(&limits);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(&limits)));
        // `ZHONGTAI_PROFILE=perfmap` writes /tmp/perf-<pid>.map, so that
        // `perf report` names the guests' functions, as `wasmtime run
        // --profile=perfmap` does.
        if std::env::var_os("ZHONGTAI_PROFILE").is_some_and(|v| v == "perfmap") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        let mut linker = Linker::new(&engine);
        platform::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
        let cache = CompileCache::new(&engine, options.cache_dir);
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            shared: Shared {
                kv: options.store,
                lock_table: Arc::new(LockTable::default()),
                long_calls: Arc::default(),
            },
            config: options.config,
            steps: crate::pool::StepPool::new(limits.step_threads, "zhongtai-steps"),
            limits,
            cache,
            compiler: options.compiler,
            _ticker: ticker,
        })
    }

    /// The named locks components hold; for tests and diagnostics.
    pub fn lock_table(&self) -> &LockTable {
        &self.shared.lock_table
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &RuntimeLimits {
        &self.limits
    }

    /// The threads services' steps run on, [`RuntimeLimits::step_threads`]
    /// at once.
    pub fn steps(&self) -> &crate::pool::StepPool {
        &self.steps
    }

    /// How many calls (or instantiations) have gone on, or started, at
    /// idle priority since the runtime was built.
    pub fn demoted_calls(&self) -> u64 {
        self.shared.long_calls.demoted.load(Ordering::Relaxed)
    }

    /// Component instances alive now (each call's fresh instance, and any
    /// [`LiveInstance`]), out of [`RuntimeLimits::max_concurrent_instances`].
    pub fn instances_in_use(&self) -> u64 {
        self.engine
            .pooling_allocator_metrics()
            .map_or(0, |metrics| metrics.component_instances())
    }

    /// Bytes that idle instance slots keep resident for the next instance:
    /// the zeroed pages of linear memories, tables and fiber stacks (see
    /// `KEEP_RESIDENT`).
    pub fn pool_resident_bytes(&self) -> u64 {
        self.engine
            .pooling_allocator_metrics()
            .map_or(0, |metrics| {
                let bytes = metrics.unused_memory_bytes_resident()
                    + metrics.unused_table_bytes_resident()
                    + metrics.unused_stack_bytes_resident().unwrap_or(0);
                bytes as u64
            })
    }

    /// Whether loading `bytes` will take its compiled form from the cache
    /// (and so be quick) rather than compile it.
    pub fn is_compiled(&self, bytes: &[u8]) -> bool {
        self.is_compiled_digest(&hex::encode(Sha256::digest(bytes)))
    }

    /// [`Runtime::is_compiled`] for the component whose sha256 is `digest`
    /// (lowercase hex), without hashing it again.
    pub fn is_compiled_digest(&self, digest: &str) -> bool {
        self.cache.contains(digest)
    }

    /// Loads a component whose state belongs to the package of its first
    /// exported interface.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedComponent, LoadError> {
        self.load_as(bytes, None)
    }

    /// Loads a component; its state belongs to `package` when given (the
    /// registry's name for it), else to its first exported interface's.
    pub fn load_as(
        &self,
        bytes: &[u8],
        package: Option<&str>,
    ) -> Result<LoadedComponent, LoadError> {
        self.load_digested(bytes, hex::encode(Sha256::digest(bytes)), package)
    }

    /// [`Runtime::load_as`] for bytes whose sha256 the caller has already
    /// checked, as the registry's `fetch` does: `digest` (lowercase hex)
    /// must be theirs, or the compile cache would file their compiled form
    /// under another component's name. (On a CPU without SHA extensions,
    /// hashing a 300 KB component takes one to two milliseconds.)
    pub fn load_verified(
        &self,
        bytes: &[u8],
        digest: &str,
        package: &str,
    ) -> Result<LoadedComponent, LoadError> {
        debug_assert_eq!(digest, hex::encode(Sha256::digest(bytes)));
        self.load_digested(bytes, digest.to_owned(), Some(package))
    }

    fn load_digested(
        &self,
        bytes: &[u8],
        digest: String,
        package: Option<&str>,
    ) -> Result<LoadedComponent, LoadError> {
        check_header(bytes)?;
        let (component, from_cache) = self
            .cache
            .load_or_compile(&self.engine, &digest, || {
                crate::compiler::compile(
                    &self.compiler,
                    &self.engine,
                    &self.limits,
                    self.cache.engine_key(),
                    bytes,
                )
            })
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let interfaces = component::catalog(&self.engine, &component);
        let package = match package {
            Some(package) => package.to_owned(),
            None => component::package_of(&interfaces).ok_or(LoadError::NoPackage)?,
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        Ok(LoadedComponent {
            inner: Arc::new(LoadedInner {
                digest,
                package: package.into(),
                pre,
                interfaces,
                from_cache,
            }),
        })
    }

    /// Calls `interface.function` of `component` in a fresh instance with
    /// JSON `args` (an object by parameter name, or an array in order) and
    /// returns what it returned: the JSON result (`null` for a function with
    /// no result) and how the call ended, read from the function's WIT
    /// result type.
    pub fn call(
        &self,
        component: &LoadedComponent,
        context: CallContext,
        interface: &str,
        function: &str,
        args: &Json,
    ) -> Result<Returned, CallError> {
        let (name, export) = component.function(interface, function)?;
        let params = arguments(&name, export, args)?;
        let mut live = self.instantiate(component, context)?;
        live.call_resolved(&name, export, &params)
    }

    /// Instantiates `component` for `context` and keeps the instance for
    /// several calls. Services use a fresh instance per call ([`Runtime::call`]);
    /// this is for measuring what that isolation costs, and for tests.
    pub fn instantiate(
        &self,
        component: &LoadedComponent,
        context: CallContext,
    ) -> Result<LiveInstance, CallError> {
        let state = HostState::new(
            &self.shared,
            component.inner.package.clone(),
            self.config.package(&component.inner.package),
            context,
            CallLimiter::new(self.limits.memory_bytes),
            Instant::now() + self.limits.deadline,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        watch_epochs(&mut store, self.limits.demote_after);
        let demoted = store.data_mut().begin(
            Instant::now() + self.limits.deadline,
            self.limits.demote_after,
            false,
        );
        let pre = &component.inner.pre;
        let instance = within_deadline(
            self.limits.deadline,
            demoted,
            pre.instantiate_async(&mut store),
        );
        store.data_mut().end(timed_out(&instance));
        let instance = instance.map_err(|e| classify_instantiate(e, &self.limits))?;
        Ok(LiveInstance {
            store,
            instance,
            component: component.clone(),
            limits: self.limits.clone(),
        })
    }
}

/// An instance kept alive across calls; see [`Runtime::instantiate`].
pub struct LiveInstance {
    store: Store<HostState>,
    instance: Instance,
    component: LoadedComponent,
    limits: RuntimeLimits,
}

impl LiveInstance {
    /// Calls a function of this instance; see [`Runtime::call`].
    pub fn call(
        &mut self,
        interface: &str,
        function: &str,
        args: &Json,
    ) -> Result<Json, CallError> {
        let component = self.component.clone();
        let (name, export) = component.function(interface, function)?;
        let params = arguments(&name, export, args)?;
        self.call_resolved(&name, export, &params)
            .map(|returned| returned.json)
    }

    fn call_resolved(
        &mut self,
        name: &str,
        export: &ExportedFunction,
        params: &[Val],
    ) -> Result<Returned, CallError> {
        let func: Func = self
            .instance
            .get_func(&mut self.store, export.index)
            .ok_or_else(|| CallError::Instantiate(format!("export {name} is not a function")))?;
        let mut results = vec![Val::Bool(false); export.results.len()];
        self.store.set_epoch_deadline(1);
        let demoted = self.store.data_mut().begin(
            Instant::now() + self.limits.deadline,
            self.limits.demote_after,
            true,
        );
        let outcome = within_deadline(
            self.limits.deadline,
            demoted,
            func.call_async(&mut self.store, params, &mut results),
        );
        self.store.data_mut().end(timed_out(&outcome));
        // A call that returned commits its writes, durably, before anyone
        // is told anything; one that trapped leaves nothing behind.
        match &outcome {
            Ok(()) => self.store.data_mut().commit()?,
            Err(_) => self.store.data_mut().abandon(),
        }
        if let Err(error) = outcome {
            return Err(classify_trap(
                error,
                name,
                &self.limits,
                self.store.data().stderr_text(),
            ));
        }
        Returned::from_val(results.first()).map_err(|source| CallError::Result {
            function: name.to_owned(),
            source,
        })
    }
}

/// Has `store` look at the clock at every epoch tick while a guest runs:
/// past the call's deadline the guest is interrupted (and the call ends as
/// a timeout); past `demote_after` of CPU time its service is remembered as
/// one whose calls run long and, unless it already runs at idle priority,
/// it yields once, asking [`block_on`] to go on there.
fn watch_epochs(store: &mut Store<HostState>, demote_after: Option<Duration>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut context| {
        // A call this long gives its thread's place in the step pool up.
        crate::pool::tick();
        let state = context.data_mut();
        let now = Instant::now();
        if now >= state.deadline_at {
            return Ok(wasmtime::UpdateDeadline::Interrupt);
        }
        if let Some(after) = demote_after
            && state.ran_past(after)
        {
            DEMOTE.set(true);
            return Ok(wasmtime::UpdateDeadline::Yield(1));
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
}

thread_local! {
    /// Set by a guest's epoch callback on the thread driving it: the call
    /// has run past `demote_after` and should go on at idle priority.
    static DEMOTE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `call` (an instantiation or a call on a fiber) to completion, or
/// stops it at `deadline` wherever it waits: a timer for a guest blocked in
/// `wasi:io/poll`, where the epoch (which interrupts wasm code) cannot reach
/// it. A call stopped so ends as an epoch interrupt does.
/// With `demoted`, the call runs at idle priority from its start.
fn within_deadline<T: Send>(
    deadline: Duration,
    demoted: bool,
    call: impl Future<Output = wasmtime::Result<T>> + Send,
) -> wasmtime::Result<T> {
    // A little later than the epoch, so that wasm code still ends by the
    // epoch and only a waiting guest by the timer.
    let limit = deadline + EPOCH_TICK * 2;
    // WASI's timers and pollables need a Tokio runtime to register with;
    // the future itself is driven on this thread, not inside the runtime,
    // so that host functions may block (a PostgreSQL client does).
    let handle = tokio::runtime::Handle::try_current()
        .unwrap_or_else(|_| fallback_runtime().handle().clone());
    let _entered = handle.enter();
    let until = tokio::time::Instant::now() + limit;
    let mut call = std::pin::pin!(call);
    // Most calls never wait: they end in their first poll, and need no
    // timer (arming one and disarming it took the Tokio runtime's timer
    // lock twice per call).
    DEMOTE.set(false);
    if !demoted {
        let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        if let std::task::Poll::Ready(outcome) = call
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker))
        {
            return outcome;
        }
    }
    // The timer is registered here, at normal priority: registering takes
    // a lock of the Tokio runtime every request needs, which a thread at
    // idle priority must never hold.
    let mut timer = std::pin::pin!(tokio::time::sleep_until(until));
    let _ = timer
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    // A guest that yielded in its first poll asked to be demoted.
    DEMOTE.set(demoted || DEMOTE.get());
    block_on(
        std::future::poll_fn(move |context| {
            if let std::task::Poll::Ready(outcome) = call.as_mut().poll(context) {
                return std::task::Poll::Ready(outcome);
            }
            timer
                .as_mut()
                .poll(context)
                .map(|()| Err(wasmtime::Error::from(Trap::Interrupt)))
        }),
        &handle,
    )
}

/// The Tokio runtime for calls made outside one (the CLI, tests).
fn fallback_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zhongtai-wasi")
            .enable_all()
            .build()
            .expect("a Tokio runtime for WASI timers")
    })
}

/// Wakes a thread parked in [`block_on`].
struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is ready, parking in between.
/// When the guest it drives asks to be demoted (or [`DEMOTE`] is set
/// before it starts), the rest of it runs on a thread of idle priority
/// (entered into `handle`, the Tokio runtime its timers use) while this
/// one waits.
fn block_on<F: Future + Send>(future: F, handle: &tokio::runtime::Handle) -> F::Output
where
    F::Output: Send,
{
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    loop {
        if DEMOTE.replace(false) {
            let mut rest = future.as_mut();
            // The guest's log lines go where they went on this thread.
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            let span = tracing::Span::current();
            let finished = crate::pool::blocking(|| {
                crate::idle::run(move || {
                    let _entered = handle.enter();
                    tracing::dispatcher::with_default(&dispatch, || {
                        span.in_scope(|| drive(rest.as_mut()))
                    })
                })
            });
            match finished {
                Some(Ok(output)) => return output,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                // Without a thread to spare, the call goes on here.
                None => {}
            }
        }
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        // A guest that yielded to be demoted goes on at once; one that
        // waits (on a timer, a pollable) gives its place in the step pool
        // up while it does.
        if !DEMOTE.get() {
            crate::pool::blocking(std::thread::park);
        }
    }
}

/// Polls `future` on this thread until it is ready, parking in between.
fn drive<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(LoadError::CoreModule),
        Some([0, b'a', b's', b'm', ..]) => Ok(()),
        _ => Err(LoadError::NotWasm),
    }
}

fn arguments(name: &str, export: &ExportedFunction, args: &Json) -> Result<Vec<Val>, CallError> {
    let problem = |problem| CallError::Arguments {
        function: name.to_owned(),
        problem,
    };
    let convert = |param: &str, ty, value: &Json| {
        json_to_val(ty, value).map_err(|mut e| {
            e.path.insert_str(0, param);
            problem(ArgumentProblem::Type(ValueErrorInArgument(e)))
        })
    };
    match args {
        Json::Object(object) => {
            if let Some(unknown) = object
                .keys()
                .find(|k| !export.params.iter().any(|(p, _)| p == *k))
            {
                return Err(problem(ArgumentProblem::Unknown {
                    name: unknown.clone(),
                    expected: export.signature(),
                }));
            }
            export
                .params
                .iter()
                .map(|(param, ty)| match object.get(param) {
                    Some(value) => convert(param, ty, value),
                    None if matches!(ty, wasmtime::component::types::Type::Option(_)) => {
                        Ok(Val::Option(None))
                    }
                    None => Err(problem(ArgumentProblem::Missing {
                        name: param.clone(),
                        ty: describe_type(ty),
                    })),
                })
                .collect()
        }
        Json::Array(items) => {
            if items.len() != export.params.len() {
                return Err(problem(ArgumentProblem::Count {
                    expected: export.params.len(),
                    found: items.len(),
                }));
            }
            export
                .params
                .iter()
                .zip(items)
                .map(|((param, ty), value)| convert(param, ty, value))
                .collect()
        }
        Json::Null if export.params.is_empty() => Ok(Vec::new()),
        other => Err(problem(ArgumentProblem::NotAnObject {
            expected: export.signature(),
            found: describe_json(other),
        })),
    }
}

/// Whether a call or instantiation ended at its deadline.
fn timed_out<T>(outcome: &wasmtime::Result<T>) -> bool {
    outcome
        .as_ref()
        .err()
        .and_then(|error| error.downcast_ref::<Trap>())
        .is_some_and(|trap| *trap == Trap::Interrupt)
}

fn classify_instantiate(error: wasmtime::Error, limits: &RuntimeLimits) -> CallError {
    if error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return CallError::Busy {
            limit: limits.max_concurrent_instances,
        };
    }
    if let Some(memory) = error.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::MemoryLimit {
            function: "instantiation".into(),
            detail: memory.to_string(),
        };
    }
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return CallError::Timeout {
            function: "instantiation".into(),
            deadline: limits.deadline,
        };
    }
    CallError::Instantiate(format!("{error:#}"))
}

fn classify_trap(
    error: wasmtime::Error,
    function: &str,
    limits: &RuntimeLimits,
    stderr: String,
) -> CallError {
    let function = function.to_owned();
    if let Some(memory) = error.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::MemoryLimit {
            function,
            detail: memory.to_string(),
        };
    }
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return CallError::Timeout {
            function,
            deadline: limits.deadline,
        };
    }
    let reason = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    CallError::Trap {
        function,
        reason,
        guest_output: (!stderr.is_empty()).then_some(stderr),
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("zhongtai-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The engine settings a runtime with `limits` compiles and runs under,
/// but for the instance allocator; a compiler process
/// ([`crate::compiler`]) builds its engine from the same settings.
pub(crate) fn engine_config(limits: &RuntimeLimits) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.max_wasm_stack);
    // Linear memory starts as zeroed anonymous pages with the data
    // segments copied in, not as a copy-on-write mapping of the
    // component's image: under load, every first write to an image
    // page was a copy-on-write fault that flushed the TLB of every
    // core running the host (a process-wide shootdown), which cost
    // about 8% of the host's CPU per request (BENCHMARKS.md). Alone,
    // a call is as fast either way.
    config.memory_init_cow(false);
    // A fiber stack goes back to the pool zeroed, its pages queued for the
    // kernel in the same decommit batches as the linear memories': no
    // guest can read what another left on it, and the batches fill (and
    // are flushed) twice as often. Linear memories waiting in a batch
    // stay resident: after 100 logins (argon2, 19 MiB each) the host held
    // 186 MB through the next whoami load, 39 MB with this
    // (BENCHMARKS.md, round six).
    config.async_stack_zeroing(true);
    config
}

/// Most of a linear memory's written pages a pool slot keeps mapped (and
/// zeroes) between instances. The auth component's `verify` writes about
/// 40 KiB; the bound is what a reuse costs at worst.
const KEEP_RESIDENT: usize = 256 * 1024;

/// How much of the top of a fiber stack is zeroed in place, not returned to
/// the kernel, when a call ends.
const STACK_KEEP_RESIDENT: usize = 16 * 1024;

/// The pooling allocator's settings for a runtime with `limits`.
fn pooling(limits: &RuntimeLimits) -> PoolingAllocationConfig {
    let instances = limits.max_concurrent_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        .max_core_instances_per_component(16)
        .max_memory_size(limits.memory_bytes)
        // A slot going back to the pool keeps up to `KEEP_RESIDENT` of
        // the pages its instance wrote, zeroed in place, and returns the
        // rest to the kernel. Which pages were written comes from the
        // kernel (`PAGEMAP_SCAN`, Linux 6.7+; without it, the first
        // `KEEP_RESIDENT` bytes are zeroed whether written or not). A
        // call's stack, data and first heap pages then stay mapped from
        // one instance to the next, instead of faulting in again on every
        // call; a slot that once ran a heavy call (argon2 at login) zeroes
        // at most `KEEP_RESIDENT` on each later reuse. Decommits are
        // batched to amortise TLB flushes. See BENCHMARKS.md for the
        // measurements behind these settings.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(1 << 16)
        .decommit_batch_size(32)
        // The top of a fiber stack, where every call's host functions
        // run, is zeroed in place rather than faulted in again.
        .async_stack_keep_resident(STACK_KEEP_RESIDENT);
    // One fiber stack per instance that may be live at once.
    pool.total_stacks(instances);
    pool
}

/// A hash of what makes code compiled by `engine` loadable by another
/// engine, in hex: equal hashes, compatible engines.
pub(crate) fn compatibility(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
