//! The HTTP host: every deployed department's services under
//! `/<department>/…`, plus `GET /healthz` and `GET /readyz`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as Json, json};
use zhongtai_runtime::Runtime;

use zhongtai_audit::{AuditError, AuditLog, Entry, Kind};

use crate::deploy::Deployment;
use crate::workflow::{RequestData, Timings, run_timed};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A department's deployments, oldest first, with their revisions; the
/// last is in service.
type History = Vec<(u64, Arc<Deployment>)>;

/// How many earlier deployments of a department are kept for rollback.
pub const KEPT_DEPLOYMENTS: usize = 8;

/// The running platform: the runtime and the deployed departments, each
/// with its recent history (the last entry is in service).
pub struct Host {
    runtime: Arc<Runtime>,
    deployments: RwLock<BTreeMap<String, History>>,
    revisions: std::sync::atomic::AtomicU64,
    admin: Option<crate::admin::Admin>,
    audit: Option<Arc<AuditLog>>,
}

/// Who an operator action is recorded as: whoever holds the admin token or
/// started the host.
pub const OPERATOR: &str = "operator";

impl Host {
    /// A host with nothing deployed yet and no admin API.
    pub fn new(runtime: Arc<Runtime>) -> Self {
        Self::with_admin(runtime, None)
    }

    /// A host whose admin API deploys from `admin.registry`.
    pub fn with_admin(runtime: Arc<Runtime>, admin: Option<crate::admin::Admin>) -> Self {
        Self {
            runtime,
            deployments: RwLock::new(BTreeMap::new()),
            revisions: std::sync::atomic::AtomicU64::new(0),
            admin,
            audit: None,
        }
    }

    /// Records every call and operator action in `audit`.
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The audit trail, if the host keeps one.
    pub fn audit(&self) -> Option<&Arc<AuditLog>> {
        self.audit.as_ref()
    }

    /// Records an operator action (no-op without an audit trail).
    pub fn record(&self, entry: Entry) -> Result<(), AuditError> {
        match &self.audit {
            Some(audit) => audit.append(entry).map(|_| ()),
            None => Ok(()),
        }
    }

    pub(crate) fn admin(&self) -> Option<&crate::admin::Admin> {
        self.admin.as_ref()
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Puts `deployment` in service for its department and returns its
    /// revision; requests already running finish on the one they started
    /// with. The action (`deploy`, or `upgrade` when it replaces one) is
    /// recorded before it takes effect; when it cannot be recorded nothing
    /// changes.
    pub fn install(&self, deployment: Deployment) -> Result<u64, AuditError> {
        let department = deployment.manifest.department.clone();
        let mut deployments = self.deployments.write().unwrap_or_else(|e| e.into_inner());
        let revision = self
            .revisions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let replaces = deployments.get(&department).is_some_and(|h| !h.is_empty());
        let pins: Vec<String> = deployment
            .components
            .iter()
            .map(|(alias, c)| format!("{alias}={}@{} ({})", c.spec.package, c.version, c.digest))
            .collect();
        let mut entry = admin_entry(if replaces { "upgrade" } else { "deploy" }, &department);
        entry.detail = Some(format!("revision {revision}: {}", pins.join(", ")));
        entry.args = deployment.source_hash.clone();
        self.record(entry)?;
        let history = deployments.entry(department).or_default();
        history.push((revision, Arc::new(deployment)));
        if history.len() > KEPT_DEPLOYMENTS {
            history.remove(0);
        }
        Ok(revision)
    }

    /// Returns `department` to its previous deployment; its revision, or
    /// `None` when there is none. Recorded before it takes effect.
    pub fn rollback(&self, department: &str) -> Result<Option<u64>, AuditError> {
        let mut deployments = self.deployments.write().unwrap_or_else(|e| e.into_inner());
        let Some(history) = deployments.get_mut(department) else {
            return Ok(None);
        };
        if history.len() < 2 {
            return Ok(None);
        }
        let from = history[history.len() - 1].0;
        let to = history[history.len() - 2].0;
        let mut entry = admin_entry("rollback", department);
        entry.detail = Some(format!("revision {from} back to revision {to}"));
        self.record(entry)?;
        history.pop();
        Ok(Some(to))
    }

    /// The departments in service.
    pub fn departments(&self) -> Vec<String> {
        self.deployments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Departments with their revision in service and component versions.
    pub fn describe(&self) -> serde_json::Value {
        let deployments = self.deployments.read().unwrap_or_else(|e| e.into_inner());
        let departments: serde_json::Map<String, serde_json::Value> = deployments
            .iter()
            .filter_map(|(department, history)| {
                let (revision, deployment) = history.last()?;
                let components: serde_json::Map<String, serde_json::Value> = deployment
                    .components
                    .iter()
                    .map(|(alias, c)| {
                        let described = json!({"package": c.spec.package, "version": c.version.to_string(), "digest": c.digest});
                        (alias.clone(), described)
                    })
                    .collect();
                let described = json!({"revision": revision, "previous": history.len() - 1, "components": components});
                Some((department.clone(), described))
            })
            .collect();
        json!({ "departments": departments })
    }

    fn deployment(&self, department: &str) -> Option<Arc<Deployment>> {
        self.deployments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(department)
            .and_then(|history| history.last().map(|(_, d)| d.clone()))
    }
}

/// The audit entry of an operator action on `department`.
pub(crate) fn admin_entry(action: &str, department: &str) -> Entry {
    let mut entry = Entry::new(Kind::Admin);
    entry.action = Some(action.to_owned());
    entry.department = Some(department.to_owned());
    entry.subject = Some(OPERATOR.to_owned());
    entry
}

pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

/// The host's routes.
pub fn app(host: Arc<Host>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(ready))
        .route("/admin/v1/departments", get(crate::admin::list))
        .route(
            "/admin/v1/departments/{department}/manifest",
            axum::routing::post(crate::admin::deploy),
        )
        .route(
            "/admin/v1/departments/{department}/rollback",
            axum::routing::post(crate::admin::rollback),
        )
        .route("/admin/v1/audit", get(crate::admin::audit_records))
        .route("/admin/v1/audit/verify", get(crate::admin::audit_verify))
        .route(
            "/admin/v1/audit/files/{file}",
            get(crate::admin::audit_file),
        )
        .fallback(service)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(host)
}

async fn ready(State(host): State<Arc<Host>>) -> Response {
    let departments = host.departments();
    if departments.is_empty() {
        return error(503, "not-ready", "no department is deployed yet");
    }
    axum::Json(json!({"status": "ready", "departments": departments})).into_response()
}

/// Matches `path` against a service's pattern, returning path parameters.
fn match_path(pattern: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let pattern: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let actual: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if pattern.len() != actual.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (p, a) in pattern.iter().zip(&actual) {
        match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !a.is_empty() => {
                params.insert(name.to_owned(), percent_decode(a));
            }
            Some(_) => return None,
            None if p == a => {}
            None => return None,
        }
    }
    Some(params)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn service(
    State(host): State<Arc<Host>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let Some((department, rest)) = path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(d, r)| (d.to_owned(), format!("/{r}")))
    else {
        return error(
            404,
            "not-found",
            format!("no route {path}; routes are /<department>/…"),
        );
    };
    let Some(deployment) = host.deployment(&department) else {
        return error(
            404,
            "not-found",
            format!("no department {department:?} is deployed"),
        );
    };
    let mut allowed = Vec::new();
    let mut found = None;
    for (index, service) in deployment.manifest.services.iter().enumerate() {
        if let Some(params) = match_path(&service.path, &rest) {
            allowed.push(service.method.clone());
            if service.method == method.as_str() {
                found = Some((index, params));
            }
        }
    }
    let Some((index, params)) = found else {
        if allowed.is_empty() {
            return error(
                404,
                "not-found",
                format!("{department} has no service at {rest}"),
            );
        }
        return error(
            405,
            "method-not-allowed",
            format!("{rest} accepts {}", allowed.join(", ")),
        );
    };
    let body = if body.is_empty() {
        Json::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(json) => json,
            Err(e) => return error(400, "bad-request", format!("the body is not JSON: {e}")),
        }
    };
    let request = RequestData {
        path: params,
        query: uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect(),
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_owned(), v.to_owned()))
            })
            .collect(),
        body,
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|id| {
                (1..=64).contains(&id.len())
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .map_or_else(zhongtai_runtime::context::new_request_id, str::to_owned),
    };
    let runtime = host.runtime.clone();
    let audit = host.audit.clone();
    let started = std::time::Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        let service = &deployment.manifest.services[index];
        let mut timings = Timings::default();
        let outcome = run_timed(
            &runtime,
            audit.as_deref(),
            &deployment,
            service,
            &request,
            &mut timings,
        );
        (outcome, timings)
    })
    .await;
    // Where the time went, for operators and load tests (Server-Timing).
    let timing = |timings: Timings| {
        format!(
            "components;dur={:.3}, audit;dur={:.3}, total;dur={:.3}",
            timings.components.as_secs_f64() * 1000.0,
            timings.audit.as_secs_f64() * 1000.0,
            started.elapsed().as_secs_f64() * 1000.0
        )
    };
    match outcome {
        Ok((Ok((status, body)), timings)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (
                status,
                [("server-timing", timing(timings))],
                axum::Json(body),
            )
                .into_response()
        }
        Ok((Err(failure), timings)) => {
            let status =
                StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                [("server-timing", timing(timings))],
                axum::Json(failure.body()),
            )
                .into_response()
        }
        Err(e) => error(500, "internal", format!("the request's worker failed: {e}")),
    }
}

/// Serves `host` on `listener` until `shutdown` completes; requests in
/// flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    host: Arc<Host>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(host))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_patterns_with_parameters() {
        let params = match_path("/licenses/{number}", "/licenses/BL-2026-1").unwrap();
        assert_eq!(params["number"], "BL-2026-1");
        assert!(match_path("/licenses/{number}", "/licenses").is_none());
        assert!(match_path("/licenses", "/permits").is_none());
        assert_eq!(match_path("/a/{x}", "/a/b%20c").unwrap()["x"], "b c");
    }
}
