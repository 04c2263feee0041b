//! The admin API (bearer token): deploy, upgrade and roll back one
//! department's manifest while serving.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /admin/v1/departments` | departments, revisions and component versions |
//! | `POST /admin/v1/departments/{department}/manifest` | deploy a manifest (body: its TOML); a manifest that fails any check is refused and the running one stays |
//! | `POST /admin/v1/departments/{department}/rollback` | return to the previous deployment |
//! | `GET /admin/v1/audit?department=&service=&subject=&request=&since=&until=&limit=` | audit records, oldest first (the latest `limit`, default 100) |
//! | `GET /admin/v1/audit/verify` | the whole trail checked against the host key: a summary, or the first problem (409) |
//! | `GET /admin/v1/audit/files/{trail.jsonl,checkpoints.jsonl,host.pub}` | the trail's files, for an auditor to verify offline |
//!
//! Every deploy, upgrade and rollback, and every refused attempt, is
//! recorded in the audit trail before it takes effect.
//!
//! A switch is one pointer swap: requests in flight finish on the
//! deployment they started with.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use zhongtai_registry::{Registry, TrustPolicy};

use zhongtai_audit::{Filter, Trail, VerifyKey, parse_time, sha256_hex};

use crate::server::{Host, admin_entry, error};

/// What the admin API needs besides the host.
pub struct Admin {
    /// Where components come from.
    pub registry: Arc<dyn Registry>,
    /// Whose components are accepted.
    pub trust: TrustPolicy,
    /// The operator's token; without one the admin API refuses everything.
    pub token: Option<String>,
}

/// Whether the host has an admin API and the request carries its token.
fn authorized(host: &Host, headers: &HeaderMap) -> bool {
    let Some(admin) = host.admin() else {
        return false;
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&admin.token, given) {
        (Some(expected), Some(given)) => {
            expected.len() == given.len()
                && expected
                    .bytes()
                    .zip(given.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        }
        _ => false,
    }
}

/// Checks the token; a refused attempt is itself recorded (as `action`).
fn admit(
    host: &Host,
    headers: &HeaderMap,
    action: &str,
    department: &str,
) -> Result<(), Box<Response>> {
    if authorized(host, headers) {
        return Ok(());
    }
    if host.admin().is_none() {
        return Err(Box::new(refuse()));
    }
    let mut entry = admin_entry(action, department);
    entry.subject = None;
    entry.outcome = "refused".to_owned();
    entry.case = Some("unauthorized".to_owned());
    if let Err(e) = host.record(entry) {
        tracing::error!(error = %e, "audit record of a refused admin request not written");
    }
    Err(Box::new(refuse()))
}

fn refuse() -> Response {
    error(
        401,
        "unauthorized",
        "the admin API needs the operator's token (Authorization: Bearer …)",
    )
}

/// `GET /admin/v1/departments`.
pub async fn list(State(host): State<Arc<Host>>, headers: HeaderMap) -> Response {
    if !authorized(&host, &headers) {
        return refuse();
    }
    axum::Json(host.describe()).into_response()
}

/// `POST /admin/v1/departments/{department}/manifest`.
pub async fn deploy(
    State(host): State<Arc<Host>>,
    Path(department): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = admit(&host, &headers, "deploy", &department) {
        return *refused;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let source_hash = sha256_hex(&body);
    let target = department.clone();
    let file = format!("{department}/zhongtai.toml");
    let worker_host = host.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let admin = worker_host.admin().expect("checked above");
        let checked = zhongtai_manifest::parse(&text, &file).map_err(|e| e.to_string())?;
        if checked.department != department {
            return Err(format!(
                "{file}: the manifest is for department {:?}, not {department:?}",
                checked.department
            ));
        }
        let mut deployment = crate::deploy(
            checked,
            &file,
            None,
            admin.registry.as_ref(),
            &admin.trust,
            worker_host.runtime(),
        )
        .map_err(|e| e.to_string())?;
        deployment.source_hash = Some(source_hash);
        worker_host.install(deployment).map_err(|e| e.to_string())
    })
    .await;
    match outcome {
        Ok(Ok(revision)) => {
            tracing::info!(revision, "deployed");
            axum::Json(json!({"deployed": revision})).into_response()
        }
        Ok(Err(problems)) => {
            let mut entry = admin_entry("deploy", &target);
            entry.outcome = "refused".to_owned();
            entry.case = Some("invalid-manifest".to_owned());
            entry.args = Some(sha256_hex(&body));
            entry.detail = Some(problems.clone());
            if let Err(e) = host.record(entry) {
                return error(503, "audit-unavailable", e.to_string());
            }
            error(422, "invalid-manifest", problems)
        }
        Err(e) => error(500, "internal", format!("deploy worker failed: {e}")),
    }
}

/// `POST /admin/v1/departments/{department}/rollback`.
pub async fn rollback(
    State(host): State<Arc<Host>>,
    Path(department): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = admit(&host, &headers, "rollback", &department) {
        return *refused;
    }
    match host.rollback(&department) {
        Ok(Some(revision)) => axum::Json(json!({"rolled-back-to": revision})).into_response(),
        Err(e) => error(503, "audit-unavailable", e.to_string()),
        Ok(None) => error(
            409,
            "no-previous-deployment",
            format!("{department} has no earlier deployment to roll back to"),
        ),
    }
}

fn audit_of(
    host: &Host,
    headers: &HeaderMap,
) -> Result<Arc<zhongtai_audit::AuditLog>, Box<Response>> {
    if !authorized(host, headers) {
        return Err(Box::new(refuse()));
    }
    host.audit().cloned().ok_or_else(|| {
        Box::new(error(
            404,
            "no-audit-trail",
            "this host keeps no audit trail",
        ))
    })
}

/// Query of `GET /admin/v1/audit`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    department: Option<String>,
    service: Option<String>,
    subject: Option<String>,
    request: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

/// `GET /admin/v1/audit`.
pub async fn audit_records(
    State(host): State<Arc<Host>>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Response {
    let audit = match audit_of(&host, &headers) {
        Ok(audit) => audit,
        Err(refused) => return *refused,
    };
    let time = |t: Option<String>, name: &str| {
        t.map(|t| parse_time(&t))
            .transpose()
            .map_err(|e| format!("{name}: {e}"))
    };
    let filter = match (time(query.since, "since"), time(query.until, "until")) {
        (Ok(since), Ok(until)) => Filter {
            department: query.department,
            service: query.service,
            subject: query.subject,
            request: query.request,
            since,
            until,
            limit: Some(query.limit.unwrap_or(100)),
        },
        (Err(e), _) | (_, Err(e)) => return error(400, "bad-request", e),
    };
    let dir = audit.dir().to_owned();
    match tokio::task::spawn_blocking(move || Trail::read(&dir).map(|t| t.select(&filter))).await {
        Ok(Ok(records)) => axum::Json(json!({ "records": records })).into_response(),
        Ok(Err(e)) => error(500, "internal", e.to_string()),
        Err(e) => error(500, "internal", e.to_string()),
    }
}

/// `GET /admin/v1/audit/verify`.
pub async fn audit_verify(State(host): State<Arc<Host>>, headers: HeaderMap) -> Response {
    let audit = match audit_of(&host, &headers) {
        Ok(audit) => audit,
        Err(refused) => return *refused,
    };
    let dir = audit.dir().to_owned();
    let key: VerifyKey = audit.public_key();
    let checked = tokio::task::spawn_blocking(move || {
        Trail::read(&dir).map(|trail| zhongtai_audit::verify(&trail, &key))
    })
    .await;
    match checked {
        Ok(Ok(Ok(report))) => {
            axum::Json(json!({"verified": true, "report": report})).into_response()
        }
        Ok(Ok(Err(problem))) => (
            axum::http::StatusCode::CONFLICT,
            axum::Json(
                json!({"verified": false, "problem": problem, "message": problem.to_string()}),
            ),
        )
            .into_response(),
        Ok(Err(e)) => error(500, "internal", e.to_string()),
        Err(e) => error(500, "internal", e.to_string()),
    }
}

/// `GET /admin/v1/audit/files/{file}`.
pub async fn audit_file(
    State(host): State<Arc<Host>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let audit = match audit_of(&host, &headers) {
        Ok(audit) => audit,
        Err(refused) => return *refused,
    };
    let allowed = [
        zhongtai_audit::TRAIL_FILE,
        zhongtai_audit::CHECKPOINTS_FILE,
        zhongtai_audit::PUBLIC_KEY_FILE,
    ];
    if !allowed.contains(&file.as_str()) {
        return error(
            404,
            "not-found",
            format!("the trail's files are {}", allowed.join(", ")),
        );
    }
    let path = audit.dir().join(&file);
    match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => ([("content-type", "application/octet-stream")], bytes).into_response(),
        Ok(Err(e)) => error(500, "internal", format!("{file}: {e}")),
        Err(e) => error(500, "internal", e.to_string()),
    }
}
