//! Components compiled in a child process (what `zhongtai` does): they load
//! and run as if compiled in the host, land in the compile cache, and a
//! compile that fails or a compiler that dies is reported as a load error
//! while the host goes on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use zhongtai_runtime::{
    Compiler, HostConfig, LoadError, Runtime, RuntimeLimits, RuntimeOptions, SqliteStore,
};

use crate::support::{context, guest_bytes};

/// A runtime compiling in a child running `program`, caching in `cache`
/// when given.
fn runtime(program: &Path, cache: Option<PathBuf>) -> Runtime {
    runtime_compiling(
        Compiler::Child {
            program: program.to_owned(),
            time_limit: zhongtai_runtime::DEFAULT_COMPILE_TIME_LIMIT,
        },
        cache,
    )
}

fn runtime_compiling(compiler: Compiler, cache: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeOptions {
        limits: RuntimeLimits::default(),
        cache_dir: cache,
        config: HostConfig::default(),
        store: Arc::new(SqliteStore::temporary().expect("temporary store")),
        compiler,
    })
    .expect("building runtime")
}

/// An executable shell script `name` in `dir` running the line `body`.
/// Written by a shell, not here: a file this process held open for
/// writing while another test thread forked could not be executed.
fn shell_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let written = std::process::Command::new("sh")
        .args([
            "-c",
            "printf '#!/bin/sh\\n%s\\n' \"$2\" >\"$1\" && chmod 755 \"$1\"",
            "sh",
        ])
        .arg(&path)
        .arg(body)
        .status()
        .expect("sh");
    assert!(written.success());
    path
}

fn zhongtai() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_zhongtai"))
}

/// `shapes.add` of `sampler` loaded by `runtime` works.
fn adds(runtime: &Runtime, sampler: &zhongtai_runtime::LoadedComponent) {
    let returned = runtime
        .call(
            sampler,
            context("tests"),
            "shapes",
            "add",
            &json!({"a": 2, "b": 40}),
        )
        .expect("add");
    assert_eq!(returned.json, json!(42));
}

#[test]
fn a_component_compiled_by_the_child_is_cached_and_runs() {
    let cache = tempfile::tempdir().expect("temp dir");
    let bytes = guest_bytes("fixture-sampler");

    let first = runtime(zhongtai(), Some(cache.path().to_owned()));
    let sampler = first.load(&bytes).expect("compiled in a child");
    assert!(!sampler.was_cached());
    adds(&first, &sampler);
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one compiled entry, no temporary file: {entries:?}"
    );

    // A runtime whose compiler cannot run at all still loads it: from the cache.
    let second = runtime(Path::new("/bin/false"), Some(cache.path().to_owned()));
    let cached = second.load(&bytes).expect("from the cache");
    assert!(cached.was_cached());
    adds(&second, &cached);

    // And with no cache the child's output is loaded from memory.
    let uncached = runtime(zhongtai(), None);
    let sampler = uncached.load(&bytes).expect("compiled in a child");
    adds(&uncached, &sampler);
}

#[test]
fn a_compile_error_in_the_child_reads_as_in_the_host() {
    // A component's preamble, then bytes that are not a component.
    let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
    bytes.extend_from_slice(b"\x01\x05not a section");
    let in_host = runtime_compiling(Compiler::InProcess, None);
    let expected = match in_host.load(&bytes) {
        Err(LoadError::Compile(message)) => message,
        other => panic!("expected a compile error, got {:?}", other.map(|_| ())),
    };
    let cache = tempfile::tempdir().expect("temp dir");
    match runtime(zhongtai(), Some(cache.path().to_owned())).load(&bytes) {
        Err(LoadError::Compile(message)) => assert_eq!(message, expected),
        other => panic!("expected a compile error, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        std::fs::read_dir(cache.path()).expect("cache dir").count(),
        0,
        "nothing is cached for a component that did not compile"
    );
}

#[test]
fn a_compiler_that_dies_is_a_load_error_and_the_host_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let killed = shell_script(dir.path(), "killed-compiler", "kill -KILL $$");
    let bytes = guest_bytes("fixture-sampler");

    for (program, says) in [
        (killed.as_path(), "signal: 9"),
        (Path::new("/bin/false"), "exit status: 1"),
    ] {
        let runtime = runtime(program, None);
        match runtime.load(&bytes) {
            Err(LoadError::Compile(message)) => {
                assert!(
                    message.starts_with(&format!(
                        "the compiler process ({}) ended with ",
                        program.display()
                    )) && message.contains(says),
                    "{message}"
                );
            }
            other => panic!("expected a compile error, got {:?}", other.map(|_| ())),
        }
    }
    // The same component then compiles in a working child.
    let runtime = runtime(zhongtai(), None);
    let sampler = runtime.load(&bytes).expect("compiled in a child");
    adds(&runtime, &sampler);
}

#[test]
fn a_compiler_past_its_time_limit_is_stopped_and_the_load_fails_saying_so() {
    // A compiler that never answers: it neither reads the component nor
    // writes anything, as one stuck in a component built to take the
    // compiler minutes would.
    let dir = tempfile::tempdir().expect("temp dir");
    let stuck = shell_script(dir.path(), "stuck-compiler", "exec sleep 60");
    let stopping = runtime_compiling(
        Compiler::Child {
            program: stuck.clone(),
            time_limit: Duration::from_millis(500),
        },
        None,
    );
    // Larger than a pipe's buffer: writing it cannot finish either.
    let bytes = guest_bytes("fixture-sampler");
    assert!(bytes.len() > 1 << 16);
    let started = Instant::now();
    match stopping.load(&bytes) {
        Err(LoadError::Compile(message)) => assert_eq!(
            message,
            format!(
                "the compiler process ({}) was still compiling after 500ms and was stopped",
                stuck.display()
            )
        ),
        other => panic!("expected a compile error, got {:?}", other.map(|_| ())),
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    // The host goes on: the same component compiles in a working child.
    let working = runtime(zhongtai(), None);
    let sampler = working.load(&bytes).expect("compiled in a child");
    adds(&working, &sampler);
}
