//! The runtime's errors: loading a component, and calling one.

use std::time::Duration;

use crate::state::StateError;
use crate::values::{UnrepresentableValue, ValueError};

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are a core WebAssembly module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; build for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly component (the file does not start with the wasm magic bytes)")]
    NotWasm,
    /// Compilation failed.
    #[error("component does not compile: {0}")]
    Compile(String),
    /// The component imports something the platform does not give.
    #[error("component cannot be linked against the platform: {0}")]
    Link(String),
    /// The component exports no interface, so its package is unknown.
    #[error("component exports no interface, so its package cannot be told; name it explicitly")]
    NoPackage,
}

/// Why a call did not produce a result. Errors a guest returns as WIT values
/// (`{"err": …}`) are results, not `CallError`s.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No exported interface matches the name given.
    #[error("component exports no interface {interface:?}; it exports: {available}")]
    UnknownInterface {
        /// The name asked for.
        interface: String,
        /// What there is, comma-separated.
        available: String,
    },
    /// The interface has no such function.
    #[error("interface {interface} has no function {function:?}; it has: {available}")]
    UnknownFunction {
        /// The interface, by full name.
        interface: String,
        /// The name asked for.
        function: String,
        /// What there is, comma-separated.
        available: String,
    },
    /// The arguments do not fit the function's parameters.
    #[error("bad arguments for {function}: {problem}")]
    Arguments {
        /// The function, `interface.function`.
        function: String,
        /// What is wrong.
        problem: ArgumentProblem,
    },
    /// The guest ran past its deadline and was stopped.
    #[error("{function} timed out: stopped after its deadline of {deadline:?}")]
    Timeout {
        /// The function.
        function: String,
        /// The deadline it had.
        deadline: Duration,
    },
    /// The guest asked for more memory than it may have.
    #[error("{function} exceeded its memory limit: {detail}")]
    MemoryLimit {
        /// The function.
        function: String,
        /// How much it asked for and the limit.
        detail: String,
    },
    /// The guest trapped: a panic, an out-of-bounds access, a stack overflow.
    #[error("{function} trapped: {reason}{}", guest_output.as_deref().map(|o| format!("; guest output: {o}")).unwrap_or_default())]
    Trap {
        /// The function.
        function: String,
        /// The trap, as wasmtime describes it.
        reason: String,
        /// What the guest wrote to stderr, such as its panic message.
        guest_output: Option<String>,
    },
    /// Too many calls are running; the call was not started.
    #[error("too many calls in progress (at most {limit} at once); try again")]
    Busy {
        /// The configured limit.
        limit: u32,
    },
    /// The writes of the call could not be made durable.
    #[error("storage: {0}")]
    Storage(#[from] StateError),
    /// The result has no JSON form.
    #[error("result of {function} cannot be shown as JSON: {source}")]
    Result {
        /// The function.
        function: String,
        /// The offending part.
        source: UnrepresentableValue,
    },
    /// Instantiation failed for another reason.
    #[error("cannot instantiate the component: {0}")]
    Instantiate(String),
}

impl CallError {
    /// A short stable code for APIs and logs, e.g. `timeout`.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::UnknownInterface { .. } => "unknown-interface",
            CallError::UnknownFunction { .. } => "unknown-function",
            CallError::Arguments { .. } => "bad-arguments",
            CallError::Timeout { .. } => "timeout",
            CallError::MemoryLimit { .. } => "memory-limit",
            CallError::Trap { .. } => "trap",
            CallError::Busy { .. } => "busy",
            CallError::Storage(_) => "storage",
            CallError::Result { .. } => "unrepresentable-result",
            CallError::Instantiate(_) => "instantiate",
        }
    }
}

/// What is wrong with a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentProblem {
    /// Arguments must be a JSON object by parameter name (or an array).
    #[error("arguments must be a JSON object keyed by parameter name ({expected}), found {found}")]
    NotAnObject {
        /// The signature.
        expected: String,
        /// What was given.
        found: String,
    },
    /// A parameter has no argument.
    #[error("missing argument `{name}` of type {ty}")]
    Missing {
        /// The parameter.
        name: String,
        /// Its WIT type.
        ty: String,
    },
    /// An argument names no parameter.
    #[error("unknown argument `{name}`; the parameters are: {expected}")]
    Unknown {
        /// The argument given.
        name: String,
        /// The parameter list.
        expected: String,
    },
    /// A positional array has the wrong length.
    #[error("expected {expected} arguments, found {found}")]
    Count {
        /// Parameters.
        expected: usize,
        /// Arguments given.
        found: usize,
    },
    /// An argument has the wrong type.
    #[error("argument {0}")]
    Type(ValueErrorInArgument),
}

/// A [`ValueError`] located in a named argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueErrorInArgument(pub ValueError);

impl std::fmt::Display for ValueErrorInArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The path starts with the argument name: `token` or `claims.roles[2]`.
        let e = &self.0;
        write!(
            f,
            "`{}`: expected {}, found {}",
            e.path, e.expected, e.found
        )
    }
}
