//! The threads that run services' steps: a few places, a queue, and
//! threads that give their place up while they wait.
//!
//! A request's steps call components, and a call may block its thread (a
//! lock held by another call, a round trip to the store, the sync of a
//! commit, a guest waiting on a timer), so steps do not run on the async
//! runtime's workers. Giving every request a thread of its own, as an
//! unbounded blocking pool does, had each request wake a sleeping thread
//! and, under load, dozens of threads running instances at once on a few
//! cores: the host spent more time switching between them than running
//! them (see BENCHMARKS.md). A [`StepPool`] runs at most `places` jobs at
//! once; later jobs wait in a queue that the running threads take from
//! without sleeping in between.
//!
//! A job that waits, or that runs long, must not keep a place from the
//! jobs behind it, or one department's slow calls would hold up every
//! other's. So a thread gives its place up:
//! - for the length of a wait ([`blocking`]): taking a contended lock, a
//!   store's commit or network round trip, a guest waiting in
//!   `wasi:io/poll`, a call handed to a thread of idle priority;
//! - for the rest of its job once a call of it has run for [`LONG`]
//!   ([`tick`], called at every epoch tick a guest meets): from then on the
//!   thread competes for the CPU as any other thread, as it would in an
//!   unbounded pool, and the call's demotion to idle priority (see
//!   `crate::runtime`) goes on as before. While it runs at normal priority
//!   (not demoted, not waiting) it also lends the pool one more place: the
//!   kernel shares the CPU between threads, so short jobs keep as many
//!   threads as long ones have, and with them the share of the CPU they
//!   had with a thread per request. Without that, sixty-four looping calls
//!   left at normal priority would leave whoami `places` threads out of
//!   sixty-eight.
//!
//! A place given up is taken at once by the next queued job, on an idle
//! thread of the pool or a new one; threads idle for [`KEEP_ALIVE`] exit.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A job after which a thread of the pool looks for the next.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A call that has run this long when an epoch tick meets it gives its
/// thread's place up for the rest of its job.
pub const LONG: Duration = Duration::from_millis(2);

/// Threads idle this long exit.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The threads that run services' steps, at most `places` jobs at once
/// outside waits; see the module documentation.
pub struct StepPool {
    shared: Arc<Shared>,
}

/// The pool, shared by its threads.
struct Shared {
    state: Mutex<State>,
    places: usize,
    name: String,
}

#[derive(Default)]
struct State {
    /// Jobs waiting for a place.
    queue: VecDeque<Job>,
    /// Jobs holding a place: running, not waiting and not long.
    running: usize,
    /// Places lent by long jobs running at normal priority, one each.
    lent: usize,
    /// Threads waiting for a job, the latest last.
    idle: Vec<Arc<Idle>>,
    /// Threads alive.
    threads: usize,
    /// Set when the pool is dropped: idle threads exit.
    closed: bool,
}

impl State {
    /// The count a thread holding its place as `place` is in: `running`
    /// for a place of its own, `lent` for a long job's loan, none while it
    /// waits.
    fn count(&mut self, place: Place) -> Option<&mut usize> {
        match place {
            Place::Held => Some(&mut self.running),
            Place::Detached => Some(&mut self.lent),
            Place::Waiting => None,
        }
    }
}

/// An idle thread: where a job is handed to it, and how it is woken.
#[derive(Default)]
struct Idle {
    job: Mutex<Handed>,
    woken: Condvar,
}

#[derive(Default)]
enum Handed {
    #[default]
    Nothing,
    Job(Job),
    Exit,
}

/// A job's result could not be had: the pool was dropped before the job
/// ran, or the job panicked.
#[derive(Debug, thiserror::Error)]
pub enum StepsFailed {
    /// The job panicked; the text of its panic.
    #[error("the steps panicked: {0}")]
    Panicked(String),
    /// The job was dropped unrun: the pool stopped, or no thread could
    /// be started for it.
    #[error("the steps could not be run: the host is stopping or out of threads")]
    Stopped,
}

/// How the current thread of a pool holds its place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Running a job in a place.
    Held,
    /// Waiting, its place given up until the wait ends.
    Waiting,
    /// Its job ran long; the place is given up until the job ends.
    Detached,
}

thread_local! {
    /// The pool of this thread, when it is one of a pool's.
    static POOL: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    /// How this thread holds its place, while it runs a job.
    static PLACE: Cell<Place> = const { Cell::new(Place::Held) };
    /// When this thread's job began.
    static JOB_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

impl StepPool {
    /// A pool running at most `places` jobs at once (at least one); its
    /// threads are named `name`.
    pub fn new(places: usize, name: &str) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                places: places.max(1),
                name: name.to_owned(),
            }),
        }
    }

    /// Runs `work` on a thread of the pool, when a place is free; the
    /// result, once it has run.
    pub fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> impl Future<Output = Result<R, StepsFailed>> + Send + 'static {
        let (done, result) = tokio::sync::oneshot::channel();
        self.shared.submit(Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .map_err(|panic| StepsFailed::Panicked(panic_text(panic.as_ref())));
            let _ = done.send(outcome);
        }));
        async move { result.await.unwrap_or(Err(StepsFailed::Stopped)) }
    }
}

impl Drop for StepPool {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        for idle in state.idle.drain(..) {
            idle.hand(Handed::Exit);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job`, or starts it at once when a place is free.
    fn submit(self: &Arc<Self>, job: Job) {
        let mut state = self.lock();
        state.queue.push_back(job);
        self.fill_places(&mut state);
    }

    /// The next queued job, in a place taken for it, when one is free.
    fn next_queued(&self, state: &mut State) -> Option<Job> {
        if state.running >= self.places + state.lent {
            return None;
        }
        let job = state.queue.pop_front()?;
        state.running += 1;
        Some(job)
    }

    /// Starts queued jobs while places are free: on idle threads first,
    /// else on new ones.
    fn fill_places(self: &Arc<Self>, state: &mut State) {
        while let Some(job) = self.next_queued(state) {
            match state.idle.pop() {
                Some(idle) => idle.hand(Handed::Job(job)),
                None => self.spawn(state, job),
            }
        }
    }

    /// A new thread of the pool, starting with `job` in a place.
    fn spawn(self: &Arc<Self>, state: &mut State, job: Job) {
        let shared = self.clone();
        let started = std::thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || shared.work(job));
        match started {
            Ok(_) => state.threads += 1,
            Err(error) => {
                // The job is dropped unrun, and its caller told so.
                tracing::error!(%error, "no thread could be started for a request's steps");
                state.running -= 1;
            }
        }
    }

    /// A thread's life: its first job, then every job handed to it or
    /// queued while it holds a place, idle in between.
    fn work(self: Arc<Self>, first: Job) {
        POOL.set(Some(self.clone()));
        let mut job = first;
        loop {
            JOB_STARTED.set(Some(Instant::now()));
            PLACE.set(Place::Held);
            job();
            JOB_STARTED.set(None);
            let mut state = self.lock();
            // A wait ends (and takes its place back) before its job does.
            if let Some(count) = state.count(PLACE.get()) {
                *count -= 1;
            }
            // The next job: a queued one while a place is free, else one
            // handed to this thread once it is idle.
            match self.next_queued(&mut state) {
                Some(next) => job = next,
                None => match self.idle(state) {
                    Some(next) => job = next,
                    None => break,
                },
            }
        }
        POOL.set(None);
    }

    /// Waits, idle, for a job; `None` when the thread should exit (the
    /// pool was dropped, or no job came for [`KEEP_ALIVE`]).
    fn idle(&self, mut state: MutexGuard<'_, State>) -> Option<Job> {
        if state.closed {
            state.threads -= 1;
            return None;
        }
        let idle = Arc::new(Idle::default());
        state.idle.push(idle.clone());
        drop(state);
        let mut handed = idle.wait(KEEP_ALIVE);
        let mut state = self.lock();
        if let Handed::Nothing = handed {
            // Nothing in time: leave the idle list, unless something was
            // handed on the way here (under the pool's lock, so not after).
            handed = std::mem::take(&mut *idle.job.lock().unwrap_or_else(|e| e.into_inner()));
            if let Handed::Nothing = handed {
                state.idle.retain(|other| !Arc::ptr_eq(other, &idle));
            }
        }
        match handed {
            Handed::Job(job) => Some(job),
            Handed::Exit | Handed::Nothing => {
                state.threads -= 1;
                None
            }
        }
    }

    /// Gives the current thread's place up, held as `from`, for a wait or
    /// (`to` [`Place::Detached`]) for the rest of a long job, which lends
    /// the pool a place besides; the next queued jobs take them.
    fn give_up(self: &Arc<Self>, from: Place, to: Place) {
        let mut state = self.lock();
        if let Some(count) = state.count(from) {
            *count -= 1;
        }
        if to == Place::Detached {
            state.lent += 1;
        }
        self.fill_places(&mut state);
    }

    /// Takes the place held as `held` again after a wait (even when all
    /// are taken: the job goes on; the pool catches up as jobs end).
    fn take_back(&self, held: Place) {
        if let Some(count) = self.lock().count(held) {
            *count += 1;
        }
    }
}

impl Idle {
    /// Hands `what` to this idle thread and wakes it. The caller holds the
    /// pool's lock and has taken this thread off the idle list.
    fn hand(&self, what: Handed) {
        *self.job.lock().unwrap_or_else(|e| e.into_inner()) = what;
        self.woken.notify_one();
    }

    /// Waits until something is handed over, `timeout` at most.
    fn wait(&self, timeout: Duration) -> Handed {
        let until = Instant::now() + timeout;
        let mut job = self.job.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if !matches!(*job, Handed::Nothing) {
                return std::mem::take(&mut *job);
            }
            let now = Instant::now();
            if now >= until {
                return Handed::Nothing;
            }
            job = self
                .woken
                .wait_timeout(job, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The text of a panic's payload.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Runs `wait` — something that may block the thread for a while — with
/// the current thread's place given up, when it is a pool's thread holding
/// one; otherwise just runs it.
pub(crate) fn blocking<R>(wait: impl FnOnce() -> R) -> R {
    let held = PLACE.get();
    let Some(pool) = POOL
        .with_borrow(Clone::clone)
        .filter(|_| held != Place::Waiting)
    else {
        return wait();
    };
    PLACE.set(Place::Waiting);
    pool.give_up(held, Place::Waiting);
    // The place is taken back even if `wait` panics (the job's panic is
    // caught further up, and the thread goes on).
    struct TakeBack(Arc<Shared>, Place);
    impl Drop for TakeBack {
        fn drop(&mut self) {
            self.0.take_back(self.1);
            PLACE.set(self.1);
        }
    }
    let _back = TakeBack(pool, held);
    wait()
}

/// At an epoch tick: a job of a pool's thread that has run for [`LONG`]
/// gives its place up for the rest of its run, and lends the pool another
/// while it runs at normal priority.
pub(crate) fn tick() {
    if PLACE.get() != Place::Held
        || JOB_STARTED
            .get()
            .is_none_or(|started| started.elapsed() < LONG)
    {
        return;
    }
    if let Some(pool) = POOL.with_borrow(Clone::clone) {
        PLACE.set(Place::Detached);
        pool.give_up(Place::Held, Place::Detached);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn block<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// Jobs that each hold a place for a while, counting how many run at once.
    fn counting_jobs(pool: &StepPool, jobs: usize, hold: Duration) -> usize {
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let results: Vec<_> = (0..jobs)
            .map(|i| {
                let (now, most) = (now.clone(), most.clone());
                pool.run(move || {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(running, Ordering::SeqCst);
                    let until = Instant::now() + hold;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    now.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        for (i, result) in results.into_iter().enumerate() {
            assert_eq!(block(result).unwrap(), i);
        }
        most.load(Ordering::SeqCst)
    }

    #[test]
    fn no_more_jobs_run_at_once_than_there_are_places() {
        let pool = StepPool::new(2, "test-steps");
        let most = counting_jobs(&pool, 20, Duration::from_millis(3));
        assert_eq!(most, 2, "at most two of twenty jobs ran at once");
    }

    #[test]
    fn a_waiting_job_gives_its_place_to_the_next() {
        // One place: the first job waits for the second, which can only
        // run if the wait gave the place up.
        let pool = StepPool::new(1, "test-steps");
        let (send, receive) = std::sync::mpsc::channel::<u32>();
        let first = pool.run(move || blocking(|| receive.recv_timeout(Duration::from_secs(10))));
        let second = pool.run(move || send.send(7).is_ok());
        assert!(block(second).unwrap());
        assert_eq!(block(first).unwrap().unwrap(), 7);
    }

    #[test]
    fn a_long_job_gives_its_place_up_at_a_tick() {
        let pool = StepPool::new(1, "test-steps");
        let (send, receive) = std::sync::mpsc::channel::<u32>();
        // The first job runs past LONG, ticks, then waits without
        // `blocking`: only the tick can have freed the place.
        let first = pool.run(move || {
            std::thread::sleep(LONG * 2);
            tick();
            receive.recv_timeout(Duration::from_secs(10))
        });
        let second = pool.run(move || send.send(9).is_ok());
        assert!(block(second).unwrap());
        assert_eq!(block(first).unwrap().unwrap(), 9);
    }

    #[test]
    fn a_long_job_lends_a_place_while_it_runs_and_not_while_it_waits() {
        let pool = StepPool::new(1, "test-steps");
        let shared = pool.shared.clone();
        let (go_on, wait) = std::sync::mpsc::channel::<()>();
        let (waiting, is_waiting) = std::sync::mpsc::channel::<()>();
        let long = pool.run(move || {
            std::thread::sleep(LONG * 2);
            tick();
            let lent_running = shared.lock().lent;
            blocking(|| {
                let _ = waiting.send(());
                wait.recv_timeout(Duration::from_secs(10))
            })
            .unwrap();
            (lent_running, shared.lock().lent)
        });
        // While the long job runs detached, the single place plus the lent
        // one let two short jobs run at once.
        is_waiting.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            pool.shared.lock().lent,
            0,
            "nothing is lent while the long job waits"
        );
        let together = Arc::new(AtomicUsize::new(0));
        let short = |together: Arc<AtomicUsize>| {
            move || {
                together.fetch_add(1, Ordering::SeqCst);
                let until = Instant::now() + Duration::from_millis(500);
                while together.load(Ordering::SeqCst) < 2 && Instant::now() < until {
                    std::thread::yield_now();
                }
                together.load(Ordering::SeqCst)
            }
        };
        // With the long job waiting, only the one place is free: run two
        // short jobs after it goes on instead.
        go_on.send(()).unwrap();
        assert_eq!(block(long).unwrap(), (1, 1));
        assert_eq!(pool.shared.lock().lent, 0, "the loan ends with the job");
        let first = pool.run(short(together.clone()));
        let second = pool.run(short(together));
        // One place, nothing lent: the two ran one after the other, the
        // first giving up after half a second of waiting for the second.
        assert_eq!(block(first).unwrap(), 1);
        assert_eq!(block(second).unwrap(), 2);
    }

    #[test]
    fn short_jobs_run_beside_a_long_one_on_its_loan() {
        let pool = StepPool::new(1, "test-steps");
        let (finish, finished) = std::sync::mpsc::channel::<()>();
        let long = pool.run(move || {
            std::thread::sleep(LONG * 2);
            tick();
            // Busy, at normal priority, until told to end.
            while finished.try_recv().is_err() {
                std::thread::yield_now();
            }
        });
        let together = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..2)
            .map(|_| {
                let together = together.clone();
                pool.run(move || {
                    together.fetch_add(1, Ordering::SeqCst);
                    let until = Instant::now() + Duration::from_secs(5);
                    while together.load(Ordering::SeqCst) < 2 && Instant::now() < until {
                        std::thread::yield_now();
                    }
                    together.load(Ordering::SeqCst)
                })
            })
            .collect();
        for job in jobs {
            assert_eq!(block(job).unwrap(), 2, "both short jobs ran at once");
        }
        finish.send(()).unwrap();
        block(long).unwrap();
    }

    #[test]
    fn a_short_job_keeps_its_place_at_a_tick() {
        let pool = StepPool::new(1, "test-steps");
        let (send, receive) = std::sync::mpsc::channel::<u32>();
        let first = pool.run(move || {
            tick();
            receive.recv_timeout(Duration::from_millis(300))
        });
        let second = pool.run(move || send.send(1).is_ok());
        // The second job could not start while the first held the only
        // place: the first waited in vain, and the second found it gone.
        assert!(block(first).unwrap().is_err());
        assert!(!block(second).unwrap());
    }

    #[test]
    fn a_panicking_job_fails_alone_and_the_pool_goes_on() {
        let pool = StepPool::new(1, "test-steps");
        let failed = block(pool.run(|| -> u32 { panic!("guest host bug") }));
        assert!(matches!(failed, Err(StepsFailed::Panicked(text)) if text == "guest host bug"));
        assert_eq!(block(pool.run(|| 5)).unwrap(), 5);
        let waited = block(pool.run(|| {
            let caught = std::panic::catch_unwind(|| blocking(|| panic!("in a wait")));
            (caught.is_err(), PLACE.get() == Place::Held)
        }));
        assert_eq!(
            waited.unwrap(),
            (true, true),
            "the place is held again after a panicking wait"
        );
        assert_eq!(counting_jobs(&pool, 4, Duration::from_millis(1)), 1);
    }

    #[test]
    fn blocking_outside_a_pool_just_runs() {
        assert_eq!(blocking(|| 3), 3);
        tick();
    }

    #[test]
    fn idle_threads_are_reused() {
        let pool = StepPool::new(2, "test-steps");
        for _ in 0..5 {
            counting_jobs(&pool, 4, Duration::from_micros(200));
        }
        let threads = pool.shared.lock().threads;
        assert!(threads <= 2, "{threads} threads for two places");
    }
}
