//! zhongtai's HTTP host.
//!
//! How the pieces fit: [`deploy()`] turns a checked manifest into a
//! [`deploy::Deployment`] — components resolved from the registry (or pinned
//! by the lock), fetched with digest and signature checked, loaded, and every
//! call step checked against the WIT signature it calls. [`workflow::run`]
//! runs one service for one request: CEL arguments, conditions and checks,
//! grants, a fresh instance per call, error cases mapped to HTTP statuses.
//! [`host::Host`] is the running platform: the deployments in service with
//! their history, the admin settings and the audit trail. [`server`] serves
//! every department under `/<department>/…` on axum, and [`admin`] deploys,
//! upgrades and rolls back departments while serving, on an address of its
//! own; [`connections`] bounds what clients of either address may hold, and
//! [`admission`] how many requests of one department are handled at once. Every refusal is an
//! [`error::ApiError`]. [`audited`] says what the audit record of a call
//! holds; the workflow and the host append them to the trail before
//! answering.
//!
//! [`metrics`] counts requests, component calls, deploys, audit syncs and
//! state commits for `/metrics` on the admin address; [`traces`] exports
//! a span per request, step and component call over OTLP when asked to.
//!
//! [`transparency`] serves the audit log's checkpoints and proofs to
//! anyone, and takes witnesses' cosignatures.
//!
//! [`console`] is the operators' web console on the admin address, over
//! the same tokens and code paths as [`admin`].
//!
//! Modules depend one way: `server` → `connections`, `admin` → `host` → `deploy`;
//! `server` → `workflow` → `audited`, `deploy`; everything → `error`.
//! The crate depends on manifest, runtime, registry and audit; nothing
//! depends on it but the CLI.

pub mod admin;
pub mod admission;
pub mod audited;
pub mod body;
pub mod connections;
pub mod console;
pub mod deploy;
pub mod error;
pub mod host;
pub mod metrics;
pub mod openapi;
pub mod server;
pub mod shared;
pub mod storage;
pub mod traces;
pub mod transparency;
pub mod wit_types;
pub mod workflow;

pub use connections::ServeLimits;
pub use deploy::{DeployError, Deployment, deploy, lock};
pub use error::ApiError;
pub use host::{Admin, DeployRefusal, Host};
pub use server::{admin_app, app, serve};
pub use shared::{Change, SharedDeployments};
