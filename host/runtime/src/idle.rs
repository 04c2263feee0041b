//! Threads at idle CPU priority, for the rest of calls that ran long.
//!
//! A demoted call (see `crate::runtime`) goes on on one of these threads
//! while the thread that began it waits. The threads are kept and reused:
//! making one for each call took the process's memory-map lock twice per
//! call (stack mapped, stack unmapped), a lock the short calls' page faults
//! need too. A thread at idle priority may be preempted for a long time at
//! any point, so it takes no lock that a thread at normal priority takes:
//! it hands itself back to the idle list and its results over channels,
//! which do not lock.
//!
//! A runtime lets at most as many of its jobs run at once as the machine
//! has cores ([`Places`]). Many threads runnable at idle priority cost the
//! normal ones even though they run only in their gaps (64 busy loops at
//! idle priority in another process raised whoami's p99 1.7–5×, two of
//! them 0.9–1.5×; BENCHMARKS.md). The rest wait for a place, on their
//! callers' threads at normal priority, until their deadline; a job still
//! waiting then never runs. Calls that have not yet run long go first, and
//! one holding a place gives it up after a slice when others wait (see
//! `crate::runtime`), so that a short call is not held up behind loops.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Work for an idle thread, its lifetime erased (see [`run`]).
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle threads kept beyond this many exit after their job.
const KEPT: usize = 64;

/// Idle threads waiting for work: each sends its own job sender here when
/// it is free; callers take one out.
struct Waiting {
    free: Mutex<Receiver<Sender<Job>>>,
    back: Sender<Sender<Job>>,
    /// How many are in `free`, about.
    count: AtomicUsize,
}

fn waiting() -> &'static Waiting {
    static WAITING: std::sync::OnceLock<Waiting> = std::sync::OnceLock::new();
    WAITING.get_or_init(|| {
        let (back, free) = channel();
        Waiting {
            free: Mutex::new(free),
            back,
            count: AtomicUsize::new(0),
        }
    })
}

thread_local! {
    /// The CPU time this idle thread had used when its current job began.
    static JOB_STARTED: std::cell::Cell<std::time::Duration> =
        const { std::cell::Cell::new(std::time::Duration::ZERO) };
    /// When this idle thread's current job began; `None` on other threads.
    static JOB_STARTED_AT: std::cell::Cell<Option<Instant>> =
        const { std::cell::Cell::new(None) };
    /// This idle thread's current job, numbered from 1 across threads; 0 on
    /// other threads.
    static JOB_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Jobs begun so far, for [`job_id`].
static JOBS: AtomicU64 = AtomicU64::new(0);

/// The calling idle thread's current job, which no other job shares; 0
/// when it is not an idle thread.
pub(crate) fn job_id() -> u64 {
    JOB_ID.get()
}

/// The CPU time the calling idle thread has used on its current job.
pub(crate) fn job_cpu_time() -> std::time::Duration {
    crate::limits::thread_cpu_time().saturating_sub(JOB_STARTED.get())
}

/// How long the calling thread's current job (and so its place) has run;
/// `None` when it is not an idle thread.
pub(crate) fn job_wall_time() -> Option<std::time::Duration> {
    JOB_STARTED_AT.get().map(|at| at.elapsed())
}

/// What became of a job handed to [`run`].
pub(crate) enum Ran<R> {
    /// It ran on a thread at idle priority: its outcome.
    Done(std::thread::Result<R>),
    /// No such thread could be had; it has not run.
    NoThread,
    /// Every place was taken until its deadline; it has not run.
    PastDeadline,
}

/// Which waiters for a place go first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Lane {
    /// A call that has not yet run long (its service's calls lately did):
    /// probably short, so served first.
    Fresh,
    /// A call that has run long, or has had its slice.
    Again,
}

/// A caller of [`run`] waiting for a place.
struct Waiter {
    granted: std::sync::atomic::AtomicBool,
    thread: std::thread::Thread,
}

#[derive(Default)]
struct Queue {
    taken: usize,
    fresh: VecDeque<Arc<Waiter>>,
    again: VecDeque<Arc<Waiter>>,
}

/// The places for jobs running at once, by default as many as the machine
/// has cores. They are taken and given back only by the callers of [`run`],
/// at normal priority: a place given back passes straight to the first
/// waiter of the [`Lane::Fresh`] lane, else of the [`Lane::Again`] lane.
pub(crate) struct Places {
    queue: Mutex<Queue>,
    limit: usize,
    /// How many wait, about.
    waiting: AtomicUsize,
    /// Jobs that found no place before their deadline.
    pub(crate) turned_away: AtomicU64,
}

impl Places {
    fn new(limit: usize) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            limit: limit.max(1),
            waiting: AtomicUsize::new(0),
            turned_away: AtomicU64::new(0),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a job waits for a place: the one holding a place for a
    /// slice then gives it up.
    pub(crate) fn anyone_waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Waits in `lane` for a place until `until`; `false` when none came.
    fn take(&self, lane: Lane, until: Instant) -> bool {
        let waiter = {
            let mut queue = self.queue();
            if queue.taken < self.limit && queue.fresh.is_empty() && queue.again.is_empty() {
                queue.taken += 1;
                return true;
            }
            let waiter = Arc::new(Waiter {
                granted: std::sync::atomic::AtomicBool::new(false),
                thread: std::thread::current(),
            });
            match lane {
                Lane::Fresh => queue.fresh.push_back(waiter.clone()),
                Lane::Again => queue.again.push_back(waiter.clone()),
            }
            self.waiting.fetch_add(1, Ordering::Relaxed);
            waiter
        };
        loop {
            if waiter.granted.load(Ordering::Acquire) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let mut queue = self.queue();
                // Given one while the time ran out.
                if waiter.granted.load(Ordering::Acquire) {
                    return true;
                }
                queue.fresh.retain(|other| !Arc::ptr_eq(other, &waiter));
                queue.again.retain(|other| !Arc::ptr_eq(other, &waiter));
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                self.turned_away.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            std::thread::park_timeout(left);
        }
    }

    fn give_back(&self) {
        let mut queue = self.queue();
        match queue.fresh.pop_front().or_else(|| queue.again.pop_front()) {
            // The place passes to the waiter as it is.
            Some(next) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                next.granted.store(true, Ordering::Release);
                next.thread.unpark();
            }
            None => queue.taken -= 1,
        }
    }
}

impl Default for Places {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }
}

/// Runs `work` on a thread at idle priority and waits for it, once it has
/// one of `places`, waiting for one in `lane` until `until`.
pub(crate) fn run<R: Send>(
    places: &Places,
    lane: Lane,
    until: Instant,
    work: impl FnOnce() -> R + Send,
) -> Ran<R> {
    if !places.take(lane, until) {
        return Ran::PastDeadline;
    }
    struct Place<'a>(&'a Places);
    impl Drop for Place<'_> {
        fn drop(&mut self) {
            self.0.give_back();
        }
    }
    let _place = Place(places);
    let (done, result) = channel();
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = done.send(outcome);
    });
    // SAFETY: the job is only ever run, or dropped, before this function
    // returns: the `recv` below waits until the job has sent its outcome
    // (after which it touches nothing it borrowed) or has been dropped
    // (its sender dropped with it, unrun). So nothing the job borrows is
    // used after its lifetime ends, although its type says `'static`.
    let mut job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
    loop {
        // Without a thread, the job is dropped unrun.
        let sender = match take_waiting().or_else(spawn) {
            Some(sender) => sender,
            None => return Ran::NoThread,
        };
        match sender.send(job) {
            Ok(()) => break,
            // That thread has exited; try another.
            Err(returned) => job = returned.0,
        }
    }
    match result.recv() {
        Ok(outcome) => Ran::Done(outcome),
        Err(_) => Ran::NoThread,
    }
}

/// A free idle thread's job sender, if one waits.
fn take_waiting() -> Option<Sender<Job>> {
    let waiting = waiting();
    let sender = waiting
        .free
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .try_recv()
        .ok()?;
    waiting.count.fetch_sub(1, Ordering::AcqRel);
    Some(sender)
}

/// A new idle thread's job sender; `None` when the thread could not be made.
fn spawn() -> Option<Sender<Job>> {
    let (sender, jobs) = channel::<Job>();
    let me = sender.clone();
    std::thread::Builder::new()
        .name("zhongtai-idle".into())
        .spawn(move || {
            lower_priority();
            let waiting = waiting();
            while let Ok(job) = jobs.recv() {
                JOB_STARTED.set(crate::limits::thread_cpu_time());
                JOB_STARTED_AT.set(Some(Instant::now()));
                JOB_ID.set(JOBS.fetch_add(1, Ordering::Relaxed) + 1);
                job();
                // Threads beyond the ones kept end when their job does.
                if waiting.count.fetch_add(1, Ordering::AcqRel) >= KEPT {
                    waiting.count.fetch_sub(1, Ordering::AcqRel);
                    break;
                }
                if waiting.back.send(me.clone()).is_err() {
                    break;
                }
            }
        })
        .ok()?;
    Some(sender)
}

/// Puts the calling thread at idle CPU priority: it runs only when no
/// normal thread wants the CPU. A thread cannot be raised back without
/// privileges, so only threads made for this are lowered.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid
        // `sched_param` for SCHED_IDLE, whose priority must be 0.
        let status = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if status != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "a long call goes on at normal priority"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    fn done<R>(ran: Ran<R>) -> std::thread::Result<R> {
        match ran {
            Ran::Done(outcome) => outcome,
            Ran::NoThread => panic!("no idle thread"),
            Ran::PastDeadline => panic!("no place before the deadline"),
        }
    }

    fn taken(places: &Places) -> usize {
        places.queue().taken
    }

    #[test]
    fn work_runs_at_idle_priority_borrowing_from_the_caller_and_threads_are_reused() {
        let places = Places::new(4);
        let mut seen = Vec::new();
        let first = done(run(&places, Lane::Fresh, later(), || {
            seen.push(1);
            std::thread::current().id()
        }))
        .unwrap();
        assert_ne!(first, std::thread::current().id());
        assert_eq!(seen, [1]);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: querying the calling thread's policy has no preconditions.
            let policy = run(&places, Lane::Fresh, later(), || unsafe {
                libc::sched_getscheduler(0)
            });
            assert_eq!(done(policy).unwrap(), libc::SCHED_IDLE);
        }
        // Run one after another (each thread back in the list before the
        // next), the jobs find a thread already made.
        let threads: std::collections::HashSet<_> = (0..20)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(5));
                done(run(&places, Lane::Fresh, later(), || {
                    std::thread::current().id()
                }))
                .unwrap()
            })
            .collect();
        assert!(threads.len() < 20, "{threads:?}");
    }

    #[test]
    fn a_panic_in_the_work_comes_back_to_the_caller() {
        let places = Places::new(1);
        let outcome = done(run(&places, Lane::Fresh, later(), || -> u32 {
            panic!("the guest gave up")
        }));
        let panic = outcome.unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"the guest gave up"));
        // The thread it ran on, and the place, are there for the next job.
        assert_eq!(done(run(&places, Lane::Fresh, later(), || 7)).unwrap(), 7);
        assert_eq!(taken(&places), 0);
    }

    #[test]
    fn no_more_jobs_run_at_once_than_there_are_places_and_one_waits_for_a_place() {
        let places = Places::new(2);
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for n in 0..6 {
                let (places, running, most) = (&places, &running, &most);
                scope.spawn(move || {
                    let lane = if n % 2 == 0 { Lane::Fresh } else { Lane::Again };
                    done(run(places, lane, later(), || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                    }))
                    .unwrap();
                });
            }
        });
        // All six ran, two at a time at most.
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(taken(&places), 0);
        assert!(!places.anyone_waiting());
    }

    /// Holds `places`' only place until the returned sender is used.
    fn hold<'s>(
        scope: &'s std::thread::Scope<'s, '_>,
        places: &'s Places,
    ) -> (Sender<()>, std::thread::ScopedJoinHandle<'s, ()>) {
        let (release, held) = channel::<()>();
        let holder = scope.spawn(move || {
            done(run(places, Lane::Again, later(), move || {
                held.recv().unwrap()
            }))
            .unwrap();
        });
        while taken(places) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        (release, holder)
    }

    #[test]
    fn a_job_with_no_place_by_its_deadline_never_runs_and_its_caller_is_told_at_the_deadline() {
        let places = Places::new(1);
        std::thread::scope(|scope| {
            let (release, holder) = hold(scope, &places);
            let ran = AtomicUsize::new(0);
            let asked = Instant::now();
            let outcome = run(
                &places,
                Lane::Fresh,
                asked + Duration::from_millis(100),
                || {
                    ran.fetch_add(1, Ordering::SeqCst);
                },
            );
            let waited = asked.elapsed();
            assert!(matches!(outcome, Ran::PastDeadline));
            assert_eq!(ran.load(Ordering::SeqCst), 0, "the job ran");
            assert_eq!(places.turned_away.load(Ordering::Relaxed), 1);
            assert!(!places.anyone_waiting());
            assert!(waited >= Duration::from_millis(100), "{waited:?}");
            assert!(waited < Duration::from_secs(5), "{waited:?}");
            // Once the place is given back, the next job runs at once.
            release.send(()).unwrap();
            holder.join().unwrap();
            let outcome = run(&places, Lane::Again, Instant::now(), || 5);
            assert_eq!(done(outcome).unwrap(), 5);
            assert_eq!(taken(&places), 0);
        });
    }

    #[test]
    fn a_place_given_back_goes_to_the_fresh_lane_first_then_in_order() {
        let places = Places::new(1);
        let order = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            let (release, holder) = hold(scope, &places);
            let mut waiters = Vec::new();
            for (name, lane) in [
                ("again 1", Lane::Again),
                ("fresh 1", Lane::Fresh),
                ("again 2", Lane::Again),
                ("fresh 2", Lane::Fresh),
            ] {
                let (places, order) = (&places, &order);
                waiters.push(scope.spawn(move || {
                    done(run(places, lane, later(), || {
                        order.lock().unwrap().push(name)
                    }))
                    .unwrap();
                }));
                // Each in the queue before the next.
                let queued = waiters.len();
                while places.waiting.load(Ordering::Relaxed) < queued {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            assert!(places.anyone_waiting());
            release.send(()).unwrap();
            holder.join().unwrap();
            for waiter in waiters {
                waiter.join().unwrap();
            }
        });
        assert_eq!(
            order.into_inner().unwrap(),
            ["fresh 1", "fresh 2", "again 1", "again 2"]
        );
        assert_eq!(taken(&places), 0);
    }
}
