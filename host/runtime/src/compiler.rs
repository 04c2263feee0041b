//! Where components are compiled: in this process, or in a short-lived
//! child process that runs this same executable.
//!
//! Compiling with Cranelift allocates tens of megabytes that the
//! allocator keeps after the compile ends (a host that compiled the
//! example departments at start held 16 MB more heap under load than one
//! that found them in the compile cache, BENCHMARKS.md), and a compiler
//! crash or a component built to exhaust the compiler's memory would take
//! the whole host with it. With [`Compiler::Child`] the host writes the
//! component to a child's standard input and reads the compiled form from
//! its standard output; the child builds an engine with the same settings
//! (it checks that their compatibility hashes agree), compiles, writes and
//! exits, and what it allocated goes back to the kernel with it. A child
//! still compiling after its time limit (a component built to take the
//! compiler minutes) is killed, and the load fails saying so.
//!
//! The child side is [`serve_compile_request`]: a binary that hands
//! [`Compiler::Child`] to its runtimes calls it first thing in `main`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmtime::Engine;

use crate::limits::RuntimeLimits;

/// The environment variable that makes a process started by
/// [`Compiler::Child`] compile: it holds the engine's settings.
const REQUEST_ENV: &str = "ZHONGTAI_COMPILE_REQUEST";

/// The exit status of a child whose compile failed; its standard error
/// holds the reason.
const COMPILE_FAILED: i32 = 3;

/// How long [`Compiler::this_executable`]'s child may take to compile one
/// component: the largest example component takes under a second, and a
/// component of tens of megabytes a minute or two on two cores.
pub const DEFAULT_COMPILE_TIME_LIMIT: Duration = Duration::from_secs(600);

/// Where [`Runtime`](crate::Runtime) compiles components that are not in
/// its compile cache.
#[derive(Debug, Clone, Default)]
pub enum Compiler {
    /// In the runtime's own process.
    #[default]
    InProcess,
    /// In a child process running `program`, which must call
    /// [`serve_compile_request`] before anything else in `main`.
    Child {
        /// The executable to run.
        program: PathBuf,
        /// How long one compile may take, in wall-clock time, before the
        /// child is killed and the load fails.
        time_limit: Duration,
    },
}

impl Compiler {
    /// A child process running the current executable, with
    /// [`DEFAULT_COMPILE_TIME_LIMIT`]. On Linux it is started through
    /// `/proc/self/exe`, so it is the same build even after the file on
    /// disk was replaced by an upgrade.
    pub fn this_executable() -> std::io::Result<Self> {
        let program = if cfg!(target_os = "linux") {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe()?
        };
        Ok(Self::Child {
            program,
            time_limit: DEFAULT_COMPILE_TIME_LIMIT,
        })
    }
}

/// The engine settings a child needs to build an engine like its parent's.
fn settings(limits: &RuntimeLimits, compatibility: &str) -> String {
    format!(
        "{} {} {} {compatibility}",
        limits.memory_bytes, limits.max_wasm_stack, limits.max_concurrent_instances
    )
}

/// Compiles `bytes` with `engine` as `compiler` says, returning the
/// serialized compiled form (what `Component::serialize` would give).
pub(crate) fn compile(
    compiler: &Compiler,
    engine: &Engine,
    limits: &RuntimeLimits,
    compatibility: &str,
    bytes: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let (program, time_limit) = match compiler {
        Compiler::InProcess => return Ok(engine.precompile_component(bytes)?),
        Compiler::Child {
            program,
            time_limit,
        } => (program, *time_limit),
    };
    // The child needs nothing of the host's environment (which may hold
    // an operator's tokens or a database password) but its request.
    let mut child = match Command::new(program)
        .env_clear()
        .env(REQUEST_ENV, settings(limits, compatibility))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            tracing::warn!(program = %program.display(), %error,
                "could not start a compiler process; compiling in this one");
            return Ok(engine.precompile_component(bytes)?);
        }
    };
    // The pipes are fed and drained on threads of their own, so that a
    // child that stops reading or writing cannot hold this one past the
    // time limit.
    let (stdin, stdout, stderr) = (
        child.stdin.take().expect("stdin is piped"),
        child.stdout.take().expect("stdout is piped"),
        child.stderr.take().expect("stderr is piped"),
    );
    let (status, written, stdout, stderr) = std::thread::scope(|scope| {
        let written = scope.spawn(move || {
            let mut stdin = stdin;
            stdin.write_all(bytes)
        });
        let stdout = scope.spawn(move || read_all(stdout));
        let stderr = scope.spawn(move || read_all(stderr).unwrap_or_default());
        let status = wait(&mut child, time_limit);
        (
            status,
            written.join().expect("writing to the compiler"),
            stdout.join().expect("reading the compiler's output"),
            stderr.join().expect("reading the compiler's errors"),
        )
    });
    let status = match status? {
        Some(status) => status,
        None => anyhow::bail!(
            "the compiler process ({}) was still compiling after {time_limit:?} and was stopped",
            program.display()
        ),
    };
    match status.code() {
        Some(0) => Ok(stdout?),
        Some(COMPILE_FAILED) => {
            anyhow::bail!("{}", String::from_utf8_lossy(&stderr).trim_end())
        }
        _ => {
            let stderr = String::from_utf8_lossy(&stderr);
            let detail = stderr.trim_end().lines().last().unwrap_or("");
            let reason = match written {
                Err(error) => format!("{status}; writing the component to it: {error}"),
                Ok(()) => status.to_string(),
            };
            anyhow::bail!(
                "the compiler process ({}) ended with {reason}{}{detail}",
                program.display(),
                if detail.is_empty() { "" } else { ": " },
            )
        }
    }
}

/// Waits for `child` to end, for at most `limit`: past it (or should
/// waiting fail) the child is killed, and `None` returned.
fn wait(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let started = Instant::now();
    // Compiles take a few hundred milliseconds: look often at first,
    // then every 20 ms.
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) => {}
            Err(error) => {
                // Its pipes close with it, so the threads reading them end.
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        }
        if started.elapsed() >= limit {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(pause.min(limit.saturating_sub(started.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Everything `from` gives until its end.
fn read_all(mut from: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    from.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// When this process was started by [`Compiler::Child`], compiles the
/// component on standard input, writes its compiled form to standard
/// output and exits; otherwise returns at once. Call it first in `main`.
pub fn serve_compile_request() {
    let Some(request) = std::env::var_os(REQUEST_ENV) else {
        return;
    };
    let code = match answer(&request.to_string_lossy()) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("{error:#}");
            COMPILE_FAILED
        }
    };
    std::process::exit(code);
}

fn answer(request: &str) -> anyhow::Result<()> {
    let fields: Vec<&str> = request.split(' ').collect();
    let [memory_bytes, max_wasm_stack, instances, compatibility] = fields[..] else {
        anyhow::bail!("{REQUEST_ENV}={request:?}: expected four fields");
    };
    let limits = RuntimeLimits {
        memory_bytes: memory_bytes.parse()?,
        max_wasm_stack: max_wasm_stack.parse()?,
        max_concurrent_instances: instances.parse()?,
        ..RuntimeLimits::default()
    };
    let engine = Engine::new(&crate::runtime::engine_config(&limits))?;
    let ours = crate::runtime::compatibility(&engine);
    anyhow::ensure!(
        ours == compatibility,
        "the compiler process's engine settings ({ours}) differ from the host's ({compatibility})"
    );
    let mut bytes = Vec::new();
    std::io::stdin().lock().read_to_end(&mut bytes)?;
    let compiled = engine.precompile_component(&bytes)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&compiled)?;
    stdout.flush()?;
    Ok(())
}
