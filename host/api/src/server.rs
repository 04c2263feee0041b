//! The HTTP host: every deployed department's services under
//! `/<department>/…`, plus `GET /healthz` and `GET /readyz`, on the public
//! address ([`app`]); the admin API under `/admin/v1/…` on an address of
//! its own ([`admin_app`], loopback by default). A request is matched to a
//! service of the department's deployment in service, its parts become a
//! [`RequestData`], and the workflow runs on a blocking worker. Both
//! addresses are served under the limits of [`crate::connections`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value as Json, json};

use crate::admin;
use crate::connections::{ServeLimits, serve_limited};
use crate::console;
use crate::deploy::Deployment;
use crate::error::ApiError;
use crate::host::Host;
use crate::traces::Trace;
use crate::workflow::{RequestData, Timings, answer_if_recorded, run_steps};
use opentelemetry::KeyValue;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

fn healthy() -> axum::routing::MethodRouter<Arc<Host>> {
    get(|| async { axum::Json(json!({"status": "ok"})) })
}

/// The public routes: the departments' services, health and readiness.
pub fn app(host: Arc<Host>) -> Router {
    Router::new()
        .route("/healthz", healthy())
        .route("/readyz", get(ready))
        .merge(crate::transparency::routes())
        .fallback(service)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(host)
}

/// The admin API's routes (see [`crate::admin`]), health and metrics.
pub fn admin_app(host: Arc<Host>) -> Router {
    Router::new()
        .route("/healthz", healthy())
        .route("/metrics", get(admin::metrics))
        .route("/admin/v1/departments", get(admin::list))
        .route(
            "/admin/v1/departments/{department}/manifest",
            post(admin::deploy),
        )
        .route(
            "/admin/v1/departments/{department}/rollback",
            post(admin::rollback),
        )
        .route(
            "/admin/v1/policy",
            get(admin::policy).put(admin::replace_policy),
        )
        .route("/admin/v1/audit", get(admin::audit_records))
        .route("/admin/v1/audit/verify", get(admin::audit_verify))
        .route("/admin/v1/audit/files", get(admin::audit_files))
        .route("/admin/v1/audit/files/{*file}", get(admin::audit_file))
        .route(
            "/admin/v1/audit/records/{seq}/proof",
            get(admin::audit_record_proof),
        )
        .route("/console", get(console::overview))
        .route(
            "/console/login",
            get(console::login_page).post(console::login),
        )
        .route("/console/logout", post(console::logout))
        .route("/console/style.css", get(console::style))
        .route(
            "/console/departments/{department}",
            get(console::department),
        )
        .route(
            "/console/departments/{department}/rollback",
            post(console::rollback),
        )
        .route(
            "/console/departments/{department}/manifest",
            post(console::deploy),
        )
        .route("/console/policy", get(console::policy))
        .route("/console/audit", get(console::audit))
        .route("/console/audit/verify", get(console::audit_verify))
        .route("/console/registry", get(console::registry))
        .fallback(|| async {
            ApiError::not_found("the admin API is under /admin/v1/, the console at /console")
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(host)
}

async fn ready(State(host): State<Arc<Host>>) -> Result<axum::Json<Json>, ApiError> {
    let departments = host.departments();
    if departments.is_empty() {
        return Err(ApiError::new(
            503,
            "not-ready",
            "no department is deployed yet",
        ));
    }
    Ok(axum::Json(
        json!({"status": "ready", "departments": departments}),
    ))
}

/// The service of `deployment` that answers `method` at `rest` (the path
/// below the department), with its path parameters.
fn find_service(
    deployment: &Deployment,
    method: &Method,
    rest: &str,
) -> Result<(usize, BTreeMap<String, String>), ApiError> {
    let mut allowed = Vec::new();
    for (index, service) in deployment.manifest.services.iter().enumerate() {
        if let Some(params) = match_path(&service.path, rest) {
            if service.method == method.as_str() {
                return Ok((index, params));
            }
            allowed.push(service.method.clone());
        }
    }
    if allowed.is_empty() {
        return Err(ApiError::not_found(format!(
            "{} has no service at {rest}",
            deployment.manifest.department
        )));
    }
    let mut refused = ApiError::new(
        405,
        "method-not-allowed",
        format!("{rest} accepts {}", allowed.join(", ")),
    );
    refused.allow = Some(allowed.join(", "));
    Err(refused)
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
                params.insert(name.to_owned(), percent_decode(a, false));
            }
            Some(_) => return None,
            None if p == a => {}
            None => return None,
        }
    }
    Some(params)
}

/// Decodes `%XX` escapes; `+` is a space only in a query string
/// (`query`), never in a path segment.
fn percent_decode(text: &str, query: bool) -> String {
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
        out.push(if query && bytes[i] == b'+' {
            b' '
        } else {
            bytes[i]
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters by name.
fn query_params(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The caller's `x-request-id` when it is a sensible one. The host makes
/// every request's own id; the client's is kept beside it, so a client
/// cannot give its request another request's id in the trail.
fn client_request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
}

/// What the workflow sees of a request whose body reads as `body`.
fn request_data(
    params: BTreeMap<String, String>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Json,
    client: String,
) -> RequestData {
    RequestData {
        path: params,
        query: query_params(uri),
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
        request_id: zhongtai_runtime::context::new_request_id(),
        client_request_id: client_request_id(headers),
        client,
        trace: None,
    }
}

/// The service a request matched, for its metrics.
struct Served {
    department: String,
    service: String,
    components: std::time::Duration,
}

/// Every department's services: `/<department>/<service path>`. Each
/// request is counted in the host's metrics: by department, service and
/// status once it matched a service, by status alone before.
async fn service(
    State(host): State<Arc<Host>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let mut served = None;
    let trace = host.traces().map(|traces| {
        traces.request(
            &headers,
            method.to_string(),
            vec![
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("url.path", uri.path().to_owned()),
            ],
        )
    });
    let mut response = answer(
        &host,
        (&mut served, trace.clone()),
        started,
        (method, uri, headers, extensions),
        body,
    )
    .await
    .unwrap_or_else(IntoResponse::into_response);
    let status = response.status().as_u16();
    if let Some(trace) = trace {
        let code = response
            .extensions()
            .get::<crate::error::ErrorCode>()
            .map(|code| code.0.clone());
        trace.set(vec![KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        )]);
        let failed = (status >= 500).then(|| code.as_deref().unwrap_or("error"));
        trace.end(code.as_deref().unwrap_or("ok"), failed);
        if let Some(value) = trace
            .traceparent()
            .and_then(|v| axum::http::HeaderValue::from_str(&v).ok())
        {
            response.headers_mut().insert("traceparent", value);
        }
    }
    match served {
        Some(served) => host.metrics().observe_request(
            &served.department,
            &served.service,
            status,
            started.elapsed(),
            served.components,
        ),
        None => host.metrics().observe_unmatched(status),
    }
    response
}

/// The request's parts besides its body.
type Parts = (Method, Uri, HeaderMap, Extensions);

/// Answers one request of a department's service; `served` says which
/// once one matched.
async fn answer(
    host: &Arc<Host>,
    (served, trace): (&mut Option<Served>, Option<Trace>),
    started: Instant,
    (method, uri, headers, extensions): Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = uri.path();
    let (department, rest) = path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(d, r)| (d.to_owned(), format!("/{r}")))
        .ok_or_else(|| {
            ApiError::not_found(format!("no route {path}; routes are /<department>/…"))
        })?;
    let deployment = host
        .deployment(&department)
        .ok_or_else(|| ApiError::not_found(format!("no department {department:?} is deployed")))?;
    if rest == crate::openapi::PATH && method == Method::GET {
        return Ok((
            [("content-type", "application/json")],
            deployment.openapi.clone(),
        )
            .into_response());
    }
    let (index, params) = find_service(&deployment, &method, &rest)?;
    let service = &deployment.manifest.services[index];
    let served = served.insert(Served {
        department: department.clone(),
        service: service.name.to_string(),
        components: std::time::Duration::ZERO,
    });
    if let Some(trace) = &trace {
        trace.rename(format!("{method} /{department}{}", service.path));
        trace.set(vec![
            KeyValue::new("http.route", format!("/{department}{}", service.path)),
            KeyValue::new("zhongtai.department", department.clone()),
            KeyValue::new("zhongtai.service", served.service.clone()),
        ]);
    }
    if method != Method::GET && method != Method::HEAD {
        host.check_storage()?;
    }
    let _admitted = host
        .gates()
        .admit(&department)
        .inspect_err(|_| host.metrics().department_busy(&department))?;
    let client = host.request_client(&extensions, &headers);
    let body = match &deployment.body_types[index] {
        Some(ty) => crate::body::parse_typed(&body, ty)?,
        None => crate::body::parse(&body, &deployment.body_fields[index])?,
    };
    let mut request = request_data(params, &uri, &headers, body, client);
    let request_id = request.request_id.clone();
    if let Some(trace) = trace {
        trace.set(vec![KeyValue::new(
            "zhongtai.request_id",
            request_id.clone(),
        )]);
        request.trace = Some(trace);
    }
    let runtime = host.runtime().clone();
    let audit = host.audit().cloned();
    // The steps run on the runtime's step pool (component calls may wait
    // on locks and the state store, so not on this async worker); the
    // audit write is awaited here, so no thread waits for the trail's sync.
    let log = audit.clone();
    let (ran, request) = host
        .runtime()
        .steps()
        .run(move || {
            let service = &deployment.manifest.services[index];
            let digests = log.as_deref().map(zhongtai_audit::AuditLog::digests);
            let ran = run_steps(&runtime, digests, &deployment, service, &request);
            (ran, request)
        })
        .await?;
    served.components = ran.components;
    host.metrics().observe_calls(&ran.records);
    let mut timings = Timings {
        components: ran.components,
        ..Timings::default()
    };
    let appended = Instant::now();
    let mut recorded = None;
    let written = match &audit {
        Some(audit) if !ran.records.is_empty() => audit
            .append_all_async(ran.records)
            .await
            .map(|range| recorded = Some(range)),
        _ => Ok(()),
    };
    timings.audit = appended.elapsed();
    let outcome = answer_if_recorded(ran.outcome, written, &request);
    // Where the time went, for operators and load tests; and the id the
    // request's audit records carry.
    let server_timing = [
        (
            "server-timing",
            format!(
                "components;dur={:.3}, audit;dur={:.3}, total;dur={:.3}",
                timings.components.as_secs_f64() * 1000.0,
                timings.audit.as_secs_f64() * 1000.0,
                started.elapsed().as_secs_f64() * 1000.0
            ),
        ),
        ("x-request-id", request_id),
    ];
    let mut response = match outcome {
        Ok((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (status, server_timing, axum::Json(body)).into_response()
        }
        Err(refused) => (server_timing, refused).into_response(),
    };
    // The receipt: which records of the trail this request has, first to
    // last (a department or citizen keeps them to ask for proof later).
    if let Some(range) = recorded.filter(|r| !r.is_empty())
        && let Ok(value) =
            axum::http::HeaderValue::from_str(&format!("{}-{}", range.start, range.end - 1))
    {
        response.headers_mut().insert(AUDIT_RECORDS, value);
        if let Some(origin) = host
            .audit()
            .and_then(|log| axum::http::HeaderValue::from_str(log.origin()).ok())
        {
            response
                .headers_mut()
                .insert(crate::transparency::AUDIT_LOG, origin);
        }
    }
    Ok(response)
}

/// The answer's header naming the sequence numbers of the request's audit
/// records, `first-last` (inclusive).
pub const AUDIT_RECORDS: &str = "zhongtai-audit-records";

/// Serves `host`'s services on `public` and its admin API on `admin`
/// (when given) under `limits` until `shutdown` completes; requests in
/// flight finish first.
pub async fn serve(
    public: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
    host: Arc<Host>,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut limits = limits;
    limits.refused = Some(host.metrics().connection_refusals());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let admin = admin.map(|listener| {
        tokio::spawn(serve_limited(
            listener,
            admin_app(host.clone()),
            limits.clone(),
            until_stopped(stopped.clone()),
        ))
    });
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let public = serve_limited(public, app(host), limits, until_stopped(stopped)).await;
    if let Some(admin) = admin {
        admin.await.map_err(std::io::Error::other)??;
    }
    public
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

    #[test]
    fn a_plus_is_a_space_in_a_query_but_not_in_a_path() {
        assert_eq!(match_path("/a/{x}", "/a/b+c").unwrap()["x"], "b+c");
        let uri: Uri = "/a?name=b+c&other=d%2Be".parse().unwrap();
        let query = query_params(&uri);
        assert_eq!(query["name"], "b c");
        assert_eq!(query["other"], "d+e");
    }
}
