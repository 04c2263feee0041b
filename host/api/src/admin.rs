//! The admin API (bearer token): deploy, upgrade and roll back one
//! department's manifest while serving.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /admin/v1/departments` | departments, revisions and component versions |
//! | `POST /admin/v1/departments/{department}/manifest` | deploy a manifest (body: its TOML); a manifest that fails any check is refused and the running one stays |
//! | `POST /admin/v1/departments/{department}/rollback` | return to the previous deployment |
//!
//! A switch is one pointer swap: requests in flight finish on the
//! deployment they started with.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use zhongtai_registry::{Registry, TrustPolicy};

use crate::server::{Host, error};

/// What the admin API needs besides the host.
pub struct Admin {
    /// Where components come from.
    pub registry: Arc<dyn Registry>,
    /// Whose components are accepted.
    pub trust: TrustPolicy,
    /// The operator's token; without one the admin API refuses everything.
    pub token: Option<String>,
}

fn authorized(admin: &Admin, headers: &HeaderMap) -> bool {
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

fn refuse() -> Response {
    error(
        401,
        "unauthorized",
        "the admin API needs the operator's token (Authorization: Bearer …)",
    )
}

/// `GET /admin/v1/departments`.
pub async fn list(State(host): State<Arc<Host>>, headers: HeaderMap) -> Response {
    let Some(admin) = host.admin() else {
        return refuse();
    };
    if !authorized(admin, &headers) {
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
    let Some(admin) = host.admin() else {
        return refuse();
    };
    if !authorized(admin, &headers) {
        return refuse();
    }
    let text = String::from_utf8_lossy(&body).into_owned();
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
        let deployment = crate::deploy(
            checked,
            &file,
            None,
            admin.registry.as_ref(),
            &admin.trust,
            worker_host.runtime(),
        )
        .map_err(|e| e.to_string())?;
        Ok(worker_host.install(deployment))
    })
    .await;
    match outcome {
        Ok(Ok(revision)) => {
            tracing::info!(revision, "deployed");
            axum::Json(json!({"deployed": revision})).into_response()
        }
        Ok(Err(problems)) => error(422, "invalid-manifest", problems),
        Err(e) => error(500, "internal", format!("deploy worker failed: {e}")),
    }
}

/// `POST /admin/v1/departments/{department}/rollback`.
pub async fn rollback(
    State(host): State<Arc<Host>>,
    Path(department): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(admin) = host.admin() else {
        return refuse();
    };
    if !authorized(admin, &headers) {
        return refuse();
    }
    match host.rollback(&department) {
        Some(revision) => axum::Json(json!({"rolled-back-to": revision})).into_response(),
        None => error(
            409,
            "no-previous-deployment",
            format!("{department} has no earlier deployment to roll back to"),
        ),
    }
}
