//! What the audit record of a capability call holds, in one place for every
//! caller: workflow steps and `zhongtai call` alike.

use std::time::Instant;

use serde_json::Value as Json;
use zhongtai_audit::{DigestKey, Entry, Kind};
use zhongtai_runtime::{CallContext, CallError, LoadedComponent, Returned, Runtime};

/// Which function of which component a call runs.
#[derive(Clone, Copy)]
pub struct CallTarget<'a> {
    /// The loaded component.
    pub component: &'a LoadedComponent,
    /// Its registry version, when it came from a registry.
    pub version: Option<&'a semver::Version>,
    /// The interface as the caller names it (`authn`).
    pub interface: &'a str,
    /// The function.
    pub function: &'a str,
}

/// A record of a request in `context`: who called, for which request, on
/// whose behalf.
pub fn context_entry(context: &CallContext) -> Entry {
    let mut entry = Entry::new(Kind::Call);
    entry.department = Some(context.department.to_string());
    entry.service = Some(context.service.to_string());
    entry.request = Some(context.request_id.clone());
    entry.client_request.clone_from(&context.client_request_id);
    entry.subject.clone_from(&context.subject);
    entry
}

/// The record of calling `target` for `context`, before its outcome.
pub fn call_entry(context: &CallContext, target: CallTarget<'_>) -> Entry {
    let mut entry = context_entry(context);
    entry.package = Some(target.component.package().to_owned());
    entry.version = target.version.map(ToString::to_string);
    entry.digest = Some(format!("sha256:{}", target.component.digest()));
    entry.interface = Some(target.interface.to_owned());
    entry.function = Some(target.function.to_owned());
    entry
}

/// Calls `target` in a fresh instance, as [`Runtime::call`] does, and
/// returns the result with the call's record: keyed digests of the
/// arguments and the result (with `digests`; see
/// [`zhongtai_audit::DigestKey`]), how long it took, and how it ended
/// (`ok`, `error` with the case read from the function's WIT result type,
/// or the call error's code). The caller appends the record before it
/// answers.
pub fn call(
    runtime: &Runtime,
    target: CallTarget<'_>,
    context: CallContext,
    args: &Json,
    digests: Option<&DigestKey>,
) -> (Result<Returned, CallError>, Entry) {
    let mut entry = call_entry(&context, target);
    let request_key = digests.map(|d| d.for_request(&context.request_id));
    entry.args = request_key.as_ref().map(|k| k.digest(args));
    let started = Instant::now();
    let result = runtime.call(
        target.component,
        context,
        target.interface,
        target.function,
        args,
    );
    entry.took(started.elapsed());
    match &result {
        Ok(returned) => {
            entry.result = request_key.as_ref().map(|k| k.digest(&returned.json));
            entry.settle(returned.error_case());
        }
        Err(e) => entry.outcome = e.code().to_owned(),
    }
    (result, entry)
}
