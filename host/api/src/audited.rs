//! What the audit record of a capability call holds, in one place for every
//! caller: workflow steps and `zhongtai call` alike.

use std::time::Instant;

use serde_json::Value as Json;
use zhongtai_audit::{Entry, Kind, hash_json};
use zhongtai_runtime::{CallContext, CallError, LoadedComponent, Returned, Runtime};

/// The record of calling `interface.function` of `component` (at `version`,
/// when it came from a registry) for `context`, before its outcome.
pub fn call_entry(
    context: &CallContext,
    component: &LoadedComponent,
    version: Option<&semver::Version>,
    interface: &str,
    function: &str,
) -> Entry {
    let mut entry = Entry::new(Kind::Call);
    entry.department = Some(context.department.to_string());
    entry.service = Some(context.service.to_string());
    entry.request = Some(context.request_id.clone());
    entry.subject.clone_from(&context.subject);
    entry.package = Some(component.package().to_owned());
    entry.version = version.map(ToString::to_string);
    entry.digest = Some(format!("sha256:{}", component.digest()));
    entry.interface = Some(interface.to_owned());
    entry.function = Some(function.to_owned());
    entry
}

/// Calls `interface.function` of `component` in a fresh instance, as
/// [`Runtime::call`] does, and returns the result with the call's record:
/// hashes of the arguments and the result, how long it took, and how it
/// ended (`ok`, `error` with the case read from the function's WIT result
/// type, or the call error's code). The caller appends the record before
/// it answers.
pub fn call(
    runtime: &Runtime,
    component: &LoadedComponent,
    version: Option<&semver::Version>,
    context: CallContext,
    interface: &str,
    function: &str,
    args: &Json,
) -> (Result<Returned, CallError>, Entry) {
    let mut entry = call_entry(&context, component, version, interface, function);
    entry.args = Some(hash_json(args));
    let started = Instant::now();
    let result = runtime.call(component, context, interface, function, args);
    entry.took(started.elapsed());
    match &result {
        Ok(returned) => entry.settle(&returned.json, returned.error_case()),
        Err(e) => entry.outcome = e.code().to_owned(),
    }
    (result, entry)
}
