//! End-to-end tests of the platform, one module per area, in one test
//! binary (each binary would link wasmtime again): components through the
//! host, the registry, manifests and deploys, workflows over HTTP, the audit
//! trail, and what survives a crash.

mod support;

mod audit_crash;
mod audit_outcomes;
mod audit_secrets;
mod audit_trail;
mod auth_component;
mod auth_lockout;
mod cli_call;
mod compile_process;
mod console_browser;
mod credit_component;
mod disk_full;
mod fuzz_corpus;
mod generic_invocation;
mod license_component;
mod manifest_deploy;
mod manifest_golden;
mod metrics_http;
mod openapi_http;
mod payment_component;
mod proofs_http;
mod registry_crash;
mod registry_http;
mod registry_oci;
mod registry_publish;
mod router;
mod runtime_limits;
mod scaffold;
mod several_hosts;
mod state_crash;
mod state_postgres;
mod traces_http;
mod workflow_http;
