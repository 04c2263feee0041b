//! A guest that loops, hogs memory, panics or recurses too deep fails that
//! call only; the host and the next call are unaffected.

use std::time::{Duration, Instant};

use crate::support::{context, load, runtime};
use serde_json::{Value as Json, json};
use zhongtai_runtime::{CallError, HostConfig, RuntimeLimits};

fn limits() -> RuntimeLimits {
    RuntimeLimits {
        memory_bytes: 32 * 1024 * 1024,
        deadline: Duration::from_millis(300),
        // These tests look at how calls end, not at their priority: a call
        // started at idle priority (its service timed out a moment ago)
        // could wait past its deadline on a busy test machine.
        demote_after: None,
        ..RuntimeLimits::default()
    }
}

/// `shapes.add(a, b)` of the sampler: a call that works when the runtime does.
fn add(
    runtime: &zhongtai_runtime::Runtime,
    sampler: &zhongtai_runtime::LoadedComponent,
    a: i32,
    b: i32,
) -> Result<zhongtai_runtime::Returned, CallError> {
    runtime.call(
        sampler,
        context("tests"),
        "shapes",
        "add",
        &json!({"a": a, "b": b}),
    )
}

/// Calls `antics.<function>` of the sampler as the tests department.
fn antics(
    runtime: &zhongtai_runtime::Runtime,
    sampler: &zhongtai_runtime::LoadedComponent,
    function: &str,
    args: &Json,
) -> Result<Json, CallError> {
    runtime
        .call(sampler, context("tests"), "antics", function, args)
        .map(|returned| returned.json)
}

#[test]
fn a_looping_guest_is_stopped_at_its_deadline_and_the_next_call_succeeds() {
    let (runtime, _dir) = runtime(limits(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let started = Instant::now();
    let error = antics(&runtime, &sampler, "spin", &json!({})).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, CallError::Timeout { .. }), "{error}");
    assert_eq!(error.code(), "timeout");
    assert!(
        elapsed >= Duration::from_millis(300),
        "stopped before its deadline: {elapsed:?}"
    );
    assert_eq!(
        error.to_string(),
        "example:sampler/antics@0.1.0.spin timed out: stopped after its deadline of 300ms"
    );
    let sum = add(&runtime, &sampler, 2, 3).unwrap().json;
    assert_eq!(sum, json!(5));
}

/// The scheduling policies of this process's threads named `name`
/// (5 is `SCHED_IDLE`), from `/proc/self/task/*/stat`.
fn policies_of_threads_named(name: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the command's closing parenthesis start at the
            // third; the policy is the 41st.
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().nth(41 - 3)?.parse().ok()
        })
        .collect()
}

#[test]
fn a_call_running_past_demote_after_goes_on_at_idle_priority() {
    // A deadline long enough for a call at idle priority to finish on a
    // busy test machine.
    let limits = RuntimeLimits {
        demote_after: Some(Duration::from_millis(20)),
        deadline: Duration::from_secs(1),
        ..limits()
    };
    let (runtime, _dir) = runtime(limits, HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    std::thread::scope(|scope| {
        let started = Instant::now();
        let before = runtime.demoted_calls();
        let spinning = scope.spawn(|| antics(&runtime, &sampler, "spin", &json!({})));
        while runtime.demoted_calls() == before && started.elapsed() < Duration::from_millis(900) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            runtime.demoted_calls(),
            before + 1,
            "the spinning call is demoted"
        );
        let seen = policies_of_threads_named("zhongtai-idle");
        assert!(
            !seen.is_empty() && seen.iter().all(|&policy| policy == 5),
            "a spinning guest's thread at {seen:?}, not SCHED_IDLE (5)"
        );
        // A short call of another service meanwhile runs as before.
        let other = zhongtai_runtime::CallContext::new(
            zhongtai_runtime::Slug::parse("department", "tests").unwrap(),
            zhongtai_runtime::Slug::parse("service", "elsewhere").unwrap(),
        );
        let demoted = runtime.demoted_calls();
        let sum = runtime.call(&sampler, other, "shapes", "add", &json!({"a": 2, "b": 3}));
        assert_eq!(sum.unwrap().json, json!(5));
        assert_eq!(runtime.demoted_calls(), demoted);
        // The demoted call still ends at its deadline, as a timeout.
        let error = spinning.join().unwrap().unwrap_err();
        assert!(matches!(error, CallError::Timeout { .. }), "{error}");
        let elapsed = started.elapsed();
        assert!(
            (Duration::from_secs(1)..Duration::from_secs(3)).contains(&elapsed),
            "{elapsed:?}"
        );
    });
    // Its instance went back to the pool: a call after it succeeds. Its
    // service ran long a moment ago, so the call starts at idle priority.
    let demoted = runtime.demoted_calls();
    assert_eq!(add(&runtime, &sampler, 1, 1).unwrap().json, json!(2));
    assert_eq!(runtime.demoted_calls(), demoted + 1);
}

#[test]
fn a_call_that_timed_out_waiting_leaves_its_service_at_normal_priority() {
    // A call that ran until its deadline without running (asleep here;
    // waiting for a busy CPU or a lock alike) is no sign that its
    // service's calls run long: were it taken for one, the service's next
    // calls would start at idle priority, where beside looping guests
    // they would time out too, and so stay there.
    let limits = RuntimeLimits {
        demote_after: Some(Duration::from_millis(20)),
        ..limits()
    };
    let (runtime, _dir) = runtime(limits, HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let error = antics(&runtime, &sampler, "nap", &json!({"lock": "", "ms": 5000})).unwrap_err();
    assert!(matches!(error, CallError::Timeout { .. }), "{error}");
    let demoted = runtime.demoted_calls();
    assert_eq!(add(&runtime, &sampler, 2, 2).unwrap().json, json!(4));
    assert_eq!(
        runtime.demoted_calls(),
        demoted,
        "the next call was demoted"
    );
    // A call of the same service that ran until its deadline running is.
    let error = antics(&runtime, &sampler, "spin", &json!({})).unwrap_err();
    assert!(matches!(error, CallError::Timeout { .. }), "{error}");
    let demoted = runtime.demoted_calls();
    assert_eq!(add(&runtime, &sampler, 2, 3).unwrap().json, json!(5));
    assert_eq!(runtime.demoted_calls(), demoted + 1);
}

#[test]
fn a_guest_growing_memory_past_its_limit_fails_that_call_only() {
    let (runtime, _dir) = runtime(limits(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let error = antics(&runtime, &sampler, "hog", &json!({"megabytes": 64})).unwrap_err();
    assert!(matches!(error, CallError::MemoryLimit { .. }), "{error}");
    assert!(
        error.to_string().contains("the limit is 33554432"),
        "{error}"
    );
    let touched = antics(&runtime, &sampler, "hog", &json!({"megabytes": 8})).unwrap();
    assert_eq!(touched, json!(8));
}

#[test]
fn a_panicking_guest_fails_that_call_only_and_says_why() {
    let (runtime, _dir) = runtime(limits(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let error = antics(
        &runtime,
        &sampler,
        "boom",
        &json!({"message": "ledger out of balance"}),
    )
    .unwrap_err();
    match &error {
        CallError::Trap { guest_output, .. } => {
            let output = guest_output.as_deref().unwrap_or_default();
            assert!(output.contains("ledger out of balance"), "{output}");
        }
        other => panic!("expected a trap, got {other}"),
    }
    assert_eq!(add(&runtime, &sampler, 40, 2).unwrap().json, json!(42));
}

#[test]
fn unbounded_recursion_exhausts_the_wasm_stack_not_the_host() {
    // Small enough that the host's wasm stack runs out before the guest's
    // own shadow stack in linear memory does.
    let limits = RuntimeLimits {
        max_wasm_stack: 48 * 1024,
        ..limits()
    };
    let (runtime, _dir) = runtime(limits, HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let error = antics(
        &runtime,
        &sampler,
        "recurse",
        &json!({"depth": 100_000_000}),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("call stack exhausted"),
        "{error}"
    );
    let depth = antics(&runtime, &sampler, "recurse", &json!({"depth": 100})).unwrap();
    assert_eq!(depth, json!(100));
}

#[test]
fn calls_beyond_the_instance_pool_are_refused_as_busy() {
    let limits = RuntimeLimits {
        max_concurrent_instances: 1,
        ..limits()
    };
    let (runtime, _dir) = runtime(limits, HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let held = runtime.instantiate(&sampler, context("tests")).unwrap();
    let error = add(&runtime, &sampler, 1, 1).unwrap_err();
    assert!(matches!(error, CallError::Busy { limit: 1 }), "{error}");
    drop(held);
    assert_eq!(add(&runtime, &sampler, 1, 1).unwrap().json, json!(2));
}

#[test]
fn locks_are_released_when_their_holder_traps_times_out_or_returns() {
    let (runtime, _dir) = runtime(limits(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let lock = |then: &str| {
        antics(
            &runtime,
            &sampler,
            "lock",
            &json!({"name": "order/1", "then": then}),
        )
    };
    assert!(matches!(lock("panic"), Err(CallError::Trap { .. })));
    assert_eq!(lock("release").unwrap(), json!("acquired"));
    assert!(matches!(lock("spin"), Err(CallError::Timeout { .. })));
    assert_eq!(
        lock("keep").unwrap(),
        json!("acquired; again: already-held")
    );
    assert_eq!(lock("release").unwrap(), json!("acquired"));
    assert!(
        runtime.lock_table().is_empty(),
        "released locks are forgotten"
    );
}

#[test]
fn a_waiting_call_gives_up_at_its_deadline() {
    let (runtime, _dir) = runtime(limits(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let mut holder = runtime.instantiate(&sampler, context("tests")).unwrap();
    assert_eq!(
        holder
            .call("antics", "lock", &json!({"name": "x", "then": "keep"}))
            .unwrap(),
        json!("acquired; again: already-held")
    );
    let started = Instant::now();
    let waited = antics(
        &runtime,
        &sampler,
        "lock",
        &json!({"name": "x", "then": "release"}),
    )
    .unwrap();
    assert_eq!(waited, json!("timeout"));
    // The wait gives up a fifth of the deadline early, leaving the guest
    // time to return before the epoch would end it.
    assert!(started.elapsed() >= Duration::from_millis(220));
    drop(holder);
    let taken = antics(
        &runtime,
        &sampler,
        "lock",
        &json!({"name": "x", "then": "release"}),
    )
    .unwrap();
    assert_eq!(taken, json!("acquired"));
}

#[test]
fn a_sleeping_guest_is_ended_at_its_deadline_and_its_locks_released() {
    let (runtime, _dir) = runtime(limits(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let started = Instant::now();
    let error = antics(
        &runtime,
        &sampler,
        "nap",
        &json!({"lock": "bed", "ms": 60_000}),
    )
    .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, CallError::Timeout { .. }), "{error}");
    assert!(
        (Duration::from_millis(300)..Duration::from_secs(3)).contains(&elapsed),
        "a 60 s sleep under a 300 ms deadline ended after {elapsed:?}"
    );
    let taken = antics(
        &runtime,
        &sampler,
        "lock",
        &json!({"name": "bed", "then": "release"}),
    )
    .unwrap();
    assert_eq!(taken, json!("acquired"));
    let woke = antics(&runtime, &sampler, "nap", &json!({"lock": "", "ms": 10})).unwrap();
    assert_eq!(woke, json!("woke"));
}

#[test]
fn sleeping_guests_give_their_instances_back_at_the_deadline() {
    // Twice as many sleepers as the pool has instances: without a timer
    // on waits, each would hold its instance for a minute and every later
    // call would be refused as busy.
    let limits = RuntimeLimits {
        max_concurrent_instances: 8,
        ..limits()
    };
    let (runtime, _dir) = runtime(limits, HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let started = Instant::now();
    let outcomes: Vec<Result<Json, CallError>> = std::thread::scope(|scope| {
        let sleepers: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    antics(
                        &runtime,
                        &sampler,
                        "nap",
                        &json!({"lock": "", "ms": 60_000}),
                    )
                })
            })
            .collect();
        sleepers.into_iter().map(|s| s.join().unwrap()).collect()
    });
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Err(CallError::Timeout { .. } | CallError::Busy { .. }))),
        "{outcomes:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let sum = add(&runtime, &sampler, 2, 3).unwrap().json;
    assert_eq!(sum, json!(5));
}

#[test]
fn a_call_that_fails_changes_nothing_and_one_that_returns_commits_everything() {
    let (runtime, _dir) = runtime(limits(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let read = |key: &str| antics(&runtime, &sampler, "read", &json!({"key": key})).unwrap();
    for (then, code) in [("panic", "trap"), ("spin", "timeout"), ("hog", "memory")] {
        let key = format!("after-{then}");
        let error = antics(
            &runtime,
            &sampler,
            "write-then",
            &json!({"key": key, "then": then}),
        )
        .unwrap_err();
        assert!(error.code().contains(code), "{then}: {error}");
        assert_eq!(read(&key), Json::Null, "{then}: set is undone");
        assert_eq!(
            read(&format!("{key}/batch")),
            Json::Null,
            "{then}: set-many is undone"
        );
        // A counter is a sequence: the number it gave out stays taken.
        assert_eq!(read(&format!("{key}/count")), json!("1"), "{then}");
    }
    antics(
        &runtime,
        &sampler,
        "write-then",
        &json!({"key": "kept", "then": "return"}),
    )
    .unwrap();
    assert_eq!(read("kept"), json!("written"));
    assert_eq!(read("kept/batch"), json!("written"));
}

/// Counts the events of the target `zhongtai::guest`.
struct GuestLines(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for GuestLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "zhongtai::guest" {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[test]
fn a_chatty_guest_writes_at_most_a_thousand_log_lines_a_call() {
    use tracing_subscriber::layer::SubscriberExt;
    let (runtime, _dir) = runtime(limits(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(GuestLines(count.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let asked = antics(&runtime, &sampler, "chatter", &json!({"lines": 5000})).unwrap();
        assert_eq!(asked, json!(5000));
        // A thousand lines, then one warning that the rest were dropped.
        assert_eq!(count.load(std::sync::atomic::Ordering::Relaxed), 1001);
        // The next call has a thousand of its own.
        antics(&runtime, &sampler, "chatter", &json!({"lines": 10})).unwrap();
        assert_eq!(count.load(std::sync::atomic::Ordering::Relaxed), 1011);
    });
}

/// A pool slot keeps the pages a call wrote mapped for the next instance
/// (zeroed), and returns the rest to the kernel: neither way may let an
/// instance read what an earlier call left in its stack, statics or heap.
#[test]
fn a_fresh_instance_finds_nothing_an_earlier_call_left_in_memory() {
    let (runtime, _dir) = runtime(limits(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    // The sampler XORs every byte with 0x5a, so this argument is not
    // itself a copy of the secret in the guest's memory.
    let secret: Vec<u8> = b"a citizen's session key, call one"
        .iter()
        .map(|byte| byte ^ 0x5a)
        .collect();
    // The scan finds what stays in one instance: the static copy at least.
    let mut live = runtime.instantiate(&sampler, context("tests")).unwrap();
    live.call("antics", "leave", &json!({"secret": secret, "kib": 64}))
        .unwrap();
    let kept = live
        .call("antics", "peek", &json!({"secret": secret}))
        .unwrap();
    assert!(
        kept.as_u64().unwrap() >= 1,
        "peek missed its own instance's copy: {kept}"
    );
    drop(live);
    // Heap larger and smaller than what a slot keeps resident (256 KiB).
    for (round, kib) in [4, 64, 512, 4096, 16].into_iter().enumerate() {
        let left = antics(
            &runtime,
            &sampler,
            "leave",
            &json!({"secret": secret, "kib": kib}),
        )
        .unwrap();
        assert!(
            left.as_u64().unwrap() > 8,
            "round {round}: the scan found only {left} copies in the instance that wrote them"
        );
        for _ in 0..3 {
            let seen = antics(&runtime, &sampler, "peek", &json!({"secret": secret})).unwrap();
            assert_eq!(
                seen,
                json!(0),
                "round {round}: a fresh instance found copies left by a call with {kib} KiB of heap"
            );
        }
    }
}
