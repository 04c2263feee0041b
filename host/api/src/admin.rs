//! The admin API (bearer token): deploy, upgrade and roll back one
//! department's manifest while serving, and read the audit trail.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /admin/v1/departments` | departments, revisions and component versions |
//! | `POST /admin/v1/departments/{department}/manifest` | deploy a manifest (body: its TOML); a manifest that fails any check is refused and the running one stays |
//! | `POST /admin/v1/departments/{department}/rollback` | return to the previous deployment |
//! | `GET`, `PUT /admin/v1/policy` | the operator's policy (TOML): what each department may call; deploys are checked against it |
//! | `GET /admin/v1/audit?department=&service=&subject=&request=&since=&until=&limit=` | audit records, oldest first (the latest `limit`, default 100) |
//! | `GET /admin/v1/audit/verify` | the whole trail checked against the host key: a summary, or the first problem (409) |
//! | `GET /admin/v1/audit/files/{trail.jsonl,checkpoints.jsonl,host.pub}` | the trail's files, for an auditor to verify offline |
//!
//! Every handler takes an [`Operator`]: the extractor that checks the
//! token, so no handler runs without it. Every deploy, upgrade and
//! rollback, and every refused attempt at one, is recorded in the audit
//! trail before it takes effect.
//!
//! A switch is one pointer swap: requests in flight finish on the
//! deployment they started with.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use zhongtai_audit::{AuditLog, Filter, Trail, parse_time, sha256_hex};
use zhongtai_manifest::ManifestErrors;

use crate::error::ApiError;
use crate::host::{DeployRefusal, Host, admin_entry};
use crate::shared::Change;

/// Proof that a request carries the operator's token; handlers of the admin
/// API take it as an argument. A refused attempt at a department action
/// (`…/{department}/manifest` or `…/rollback`) is itself recorded.
pub struct Operator;

fn unauthorized() -> ApiError {
    ApiError::new(
        401,
        "unauthorized",
        "the admin API needs the operator's token (Authorization: Bearer …)",
    )
}

/// Compares in time independent of where the texts differ.
fn same_secret(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The department action a path of the admin API names, if any.
fn department_action(path: &str) -> Option<(&'static str, &str)> {
    let rest = path.strip_prefix("/admin/v1/departments/")?;
    let (department, action) = rest.split_once('/')?;
    let action = match action {
        "manifest" => "deploy",
        "rollback" => "rollback",
        _ => return None,
    };
    Some((action, department))
}

impl FromRequestParts<Arc<Host>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, host: &Arc<Host>) -> Result<Self, ApiError> {
        let admin = host.admin().ok_or_else(unauthorized)?;
        let given = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let (Some(expected), Some(given)) = (&admin.token, given)
            && same_secret(expected, given)
        {
            return Ok(Operator);
        }
        if let Some((action, department)) = department_action(parts.uri.path()) {
            let mut entry = admin_entry(action, Some(department));
            entry.subject = None;
            entry.outcome = "refused".to_owned();
            entry.case = Some("unauthorized".to_owned());
            if let Err(e) = host.record(entry) {
                tracing::error!(error = %e, "audit record of a refused admin request not written");
            }
        }
        Err(unauthorized())
    }
}

/// `GET /admin/v1/departments`.
pub async fn list(State(host): State<Arc<Host>>, _: Operator) -> axum::Json<Json> {
    axum::Json(host.describe())
}

/// `POST /admin/v1/departments/{department}/manifest`.
pub async fn deploy(
    State(host): State<Arc<Host>>,
    _: Operator,
    Path(department): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Json>, ApiError> {
    let text = String::from_utf8_lossy(&body).into_owned();
    let source_hash = sha256_hex(&body);
    let worker_host = host.clone();
    let target = department.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let revision = deploy_text(&worker_host, &target, &text, source_hash)?;
        let change = Change::Deploy {
            department: target,
            manifest: text,
        };
        Ok((revision, announce(&worker_host, &change)))
    })
    .await?;
    match outcome {
        Ok((revision, announced)) => {
            tracing::info!(revision, "deployed");
            announced.map_err(|e| not_shared(revision, e))?;
            Ok(axum::Json(json!({"deployed": revision})))
        }
        Err(DeployRefusal::Invalid(problems)) => {
            let mut entry = admin_entry("deploy", Some(&department));
            entry.outcome = "refused".to_owned();
            entry.case = Some("invalid-manifest".to_owned());
            entry.args = Some(sha256_hex(&body));
            entry.detail = Some(problems.to_string());
            host.record(entry)?;
            Err(problems.into())
        }
        Err(DeployRefusal::Unrecorded(error)) => Err(error.into()),
        Err(DeployRefusal::NoRegistry) => Err(unauthorized()),
    }
}

/// Tells the other hosts sharing this host's database about `change`.
fn announce(host: &Host, change: &Change) -> anyhow::Result<()> {
    match host.shared() {
        Some(shared) => shared.announce(change).map(drop),
        None => Ok(()),
    }
}

/// The answer when a change made here could not be shared.
fn not_shared(revision: u64, error: anyhow::Error) -> ApiError {
    ApiError::new(
        503,
        "not-shared",
        format!(
            "done on this host (revision {revision}), but the other hosts were not told: {error}; repeat it once the database answers"
        ),
    )
}

/// Checks the manifest `text` sent for `department` and deploys it.
pub(crate) fn deploy_text(
    host: &Host,
    department: &str,
    text: &str,
    source_hash: String,
) -> Result<u64, DeployRefusal> {
    let file = format!("{department}/zhongtai.toml");
    let checked = zhongtai_manifest::parse(text, &file).map_err(DeployRefusal::Invalid)?;
    if checked.department != department {
        let problem = checked.department_place.error(
            &file,
            "",
            format!(
                "the manifest is for department {:?}, but was sent to {department:?}",
                checked.department.as_str()
            ),
        );
        return Err(DeployRefusal::Invalid(ManifestErrors(vec![problem])));
    }
    host.deploy_manifest(checked, &file, None, source_hash)
}

/// `GET /admin/v1/policy`: the policy in force, as TOML.
pub async fn policy(State(host): State<Arc<Host>>, _: Operator) -> Response {
    ([("content-type", "application/toml")], host.policy().0).into_response()
}

/// `PUT /admin/v1/policy` (body: the new policy's TOML): checked, recorded,
/// then in force for every later deploy. A policy that does not parse is
/// refused and the one in force stays.
pub async fn replace_policy(
    State(host): State<Arc<Host>>,
    _: Operator,
    body: Bytes,
) -> Result<axum::Json<Json>, ApiError> {
    let text = String::from_utf8_lossy(&body).into_owned();
    let policy = zhongtai_manifest::Policy::parse(&text, "policy.toml")
        .map_err(|e| ApiError::new(422, "invalid-policy", e.to_string()))?;
    host.replace_policy(text, policy)?;
    Ok(axum::Json(json!({"policy": "replaced"})))
}

/// `POST /admin/v1/departments/{department}/rollback`.
pub async fn rollback(
    State(host): State<Arc<Host>>,
    _: Operator,
    Path(department): Path<String>,
) -> Result<axum::Json<Json>, ApiError> {
    match host.rollback(&department)? {
        Some(revision) => {
            let worker_host = host.clone();
            let change = Change::Rollback { department };
            tokio::task::spawn_blocking(move || announce(&worker_host, &change))
                .await?
                .map_err(|e| not_shared(revision, e))?;
            Ok(axum::Json(json!({"rolled-back-to": revision})))
        }
        None => Err(ApiError::new(
            409,
            "no-previous-deployment",
            format!("{department} has no earlier deployment to roll back to"),
        )),
    }
}

/// The host's audit trail, or 404 when it keeps none.
fn trail_of(host: &Host) -> Result<Arc<AuditLog>, ApiError> {
    host.audit()
        .cloned()
        .ok_or_else(|| ApiError::new(404, "no-audit-trail", "this host keeps no audit trail"))
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

impl AuditQuery {
    fn filter(self) -> Result<Filter, ApiError> {
        let time = |t: Option<String>, name: &str| {
            t.map(|t| parse_time(&t))
                .transpose()
                .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
        };
        Ok(Filter {
            since: time(self.since, "since")?,
            until: time(self.until, "until")?,
            department: self.department,
            service: self.service,
            subject: self.subject,
            request: self.request,
            limit: Some(self.limit.unwrap_or(100)),
        })
    }
}

/// `GET /admin/v1/audit`.
pub async fn audit_records(
    State(host): State<Arc<Host>>,
    _: Operator,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<Json>, ApiError> {
    let dir = trail_of(&host)?.dir().to_owned();
    let filter = query.filter()?;
    let records = tokio::task::spawn_blocking(move || Trail::read(&dir).map(|t| t.select(&filter)))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(axum::Json(json!({ "records": records })))
}

/// `GET /admin/v1/audit/verify`.
pub async fn audit_verify(
    State(host): State<Arc<Host>>,
    _: Operator,
) -> Result<Response, ApiError> {
    let audit = trail_of(&host)?;
    let dir = audit.dir().to_owned();
    let key = audit.public_key();
    let checked = tokio::task::spawn_blocking(move || {
        Trail::read(&dir).map(|trail| zhongtai_audit::verify(&trail, &key))
    })
    .await?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(match checked {
        Ok(report) => axum::Json(json!({"verified": true, "report": report})).into_response(),
        Err(problem) => (
            StatusCode::CONFLICT,
            axum::Json(
                json!({"verified": false, "problem": problem, "message": problem.to_string()}),
            ),
        )
            .into_response(),
    })
}

/// `GET /admin/v1/audit/files/{file}`.
pub async fn audit_file(
    State(host): State<Arc<Host>>,
    _: Operator,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let audit = trail_of(&host)?;
    let allowed = [
        zhongtai_audit::TRAIL_FILE,
        zhongtai_audit::CHECKPOINTS_FILE,
        zhongtai_audit::PUBLIC_KEY_FILE,
    ];
    if !allowed.contains(&file.as_str()) {
        return Err(ApiError::not_found(format!(
            "the trail's files are {}",
            allowed.join(", ")
        )));
    }
    let path = audit.dir().join(&file);
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await?
        .map_err(|e| ApiError::internal(format!("{file}: {e}")))?;
    Ok(([("content-type", "application/octet-stream")], bytes).into_response())
}
