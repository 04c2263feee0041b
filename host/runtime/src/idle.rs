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

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

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
}

/// The CPU time the calling idle thread has used on its current job.
pub(crate) fn job_cpu_time() -> std::time::Duration {
    crate::limits::thread_cpu_time().saturating_sub(JOB_STARTED.get())
}

/// Runs `work` on a thread at idle priority and waits for it; `None` when
/// no such thread could be had (then `work` has not run).
pub(crate) fn run<R: Send>(work: impl FnOnce() -> R + Send) -> Option<std::thread::Result<R>> {
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
        let sender = match take_waiting() {
            Some(sender) => sender,
            None => spawn()?,
        };
        match sender.send(job) {
            Ok(()) => break,
            // That thread has exited; try another.
            Err(returned) => job = returned.0,
        }
    }
    result.recv().ok()
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

    #[test]
    fn work_runs_at_idle_priority_borrowing_from_the_caller_and_threads_are_reused() {
        let mut seen = Vec::new();
        let first = run(|| {
            seen.push(1);
            std::thread::current().id()
        })
        .unwrap()
        .unwrap();
        assert_ne!(first, std::thread::current().id());
        assert_eq!(seen, [1]);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: querying the calling thread's policy has no preconditions.
            let policy = run(|| unsafe { libc::sched_getscheduler(0) })
                .unwrap()
                .unwrap();
            assert_eq!(policy, libc::SCHED_IDLE);
        }
        // Run one after another (each thread back in the list before the
        // next), the jobs find a thread already made.
        let threads: std::collections::HashSet<_> = (0..20)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(5));
                run(|| std::thread::current().id()).unwrap().unwrap()
            })
            .collect();
        assert!(threads.len() < 20, "{threads:?}");
    }

    #[test]
    fn a_panic_in_the_work_comes_back_to_the_caller() {
        let outcome = run(|| -> u32 { panic!("the guest gave up") }).unwrap();
        let panic = outcome.unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"the guest gave up"));
        // The thread it ran on is still there for the next job.
        assert_eq!(run(|| 7).unwrap().unwrap(), 7);
    }
}
