//! zhongtai's component runtime.
//!
//! How the pieces fit: a [`Runtime`] owns one wasmtime [`Engine`](wasmtime::Engine)
//! (component model, pooling allocator, epoch interruption) and one linker
//! holding the [`platform`] imports. [`Runtime::load`] compiles a component
//! (in this process or a child, see [`compiler`]; or takes it from the [`cache`]), lists its exports with their WIT types
//! ([`component`]) and prepares an `InstancePre`. [`Runtime::call`] turns JSON
//! arguments into WIT values ([`values`]), instantiates the component afresh
//! in a store of its own — with the [`limits`] and the caller's
//! [`context`] — calls the export, commits the call's writes to the [`state`] in one transaction
//! when it returns (nothing when it traps),
//! and turns the result back into JSON. Nothing here knows any particular
//! capability: every component goes through the same path.

pub mod cache;
pub mod compiler;
pub mod component;
pub mod config;
pub mod context;
pub mod error;
mod idle;
pub mod limits;
pub mod outcome;
pub mod platform;
pub mod pool;
mod runtime;
pub mod state;
pub mod values;

pub use compiler::{Compiler, DEFAULT_COMPILE_TIME_LIMIT};
pub use component::LoadedComponent;
pub use config::HostConfig;
pub use context::{CallContext, Slug};
pub use error::{CallError, LoadError};
pub use limits::RuntimeLimits;
pub use outcome::{Outcome, Returned};
pub use pool::{StepPool, StepsFailed};
pub use runtime::{LiveInstance, Runtime, RuntimeOptions};
pub use state::{
    KeyValueStore, Mark, PostgresStore, Session, SqliteStore, StateError, Write, import_sled,
};
