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
//! exits, and what it allocated goes back to the kernel with it.
//!
//! The child side is [`serve_compile_request`]: a binary that hands
//! [`Compiler::Child`] to its runtimes calls it first thing in `main`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use wasmtime::Engine;

use crate::limits::RuntimeLimits;

/// The environment variable that makes a process started by
/// [`Compiler::Child`] compile: it holds the engine's settings.
const REQUEST_ENV: &str = "ZHONGTAI_COMPILE_REQUEST";

/// The exit status of a child whose compile failed; its standard error
/// holds the reason.
const COMPILE_FAILED: i32 = 3;

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
    },
}

impl Compiler {
    /// A child process running the current executable. On Linux it is
    /// started through `/proc/self/exe`, so it is the same build even
    /// after the file on disk was replaced by an upgrade.
    pub fn this_executable() -> std::io::Result<Self> {
        let program = if cfg!(target_os = "linux") {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe()?
        };
        Ok(Self::Child { program })
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
    let program = match compiler {
        Compiler::InProcess => return Ok(engine.precompile_component(bytes)?),
        Compiler::Child { program } => program,
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
    // The child reads all of its input before it writes anything, so
    // writing it all first cannot deadlock on a full pipe.
    let written = child.stdin.take().expect("stdin is piped").write_all(bytes);
    let output = child.wait_with_output()?;
    match output.status.code() {
        Some(0) => Ok(output.stdout),
        Some(COMPILE_FAILED) => {
            anyhow::bail!("{}", String::from_utf8_lossy(&output.stderr).trim_end())
        }
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let detail = stderr.trim_end().lines().last().unwrap_or("");
            let reason = match written {
                Err(error) => format!("{}; writing the component to it: {error}", output.status),
                Ok(()) => output.status.to_string(),
            };
            anyhow::bail!(
                "the compiler process ({}) ended with {reason}{}{detail}",
                program.display(),
                if detail.is_empty() { "" } else { ": " },
            )
        }
    }
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
