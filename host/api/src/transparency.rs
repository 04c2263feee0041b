//! The audit log's public face, on the public address and without
//! authentication: what anyone needs to check that a record is in the log
//! and that the log only grows, and nothing of any record's contents.
//!
//! | route | answer |
//! |---|---|
//! | `GET /audit/v1/checkpoint` | the latest checkpoint (C2SP signed note, `text/plain`) with the witnesses' cosignatures of it |
//! | `GET /audit/v1/checkpoint/witnessed` | the latest checkpoint a witness cosigned, with every cosignature of it |
//! | `GET /audit/v1/proof/inclusion?seq=N[&size=M]` | the leaf hash of record `N` and its inclusion proof in the tree of `M` records (the latest checkpoint's by default), with that checkpoint |
//! | `GET /audit/v1/proof/consistency?from=A[&to=B]` | the proof that the tree of `A` records is a prefix of the tree of `B` (the latest by default), with `B`'s checkpoint |
//! | `POST /audit/v1/cosignature` | a witness hands in its cosignature: the checkpoint it cosigned, with its cosignature line |
//!
//! Every answer of a service carries its receipt — the sequence numbers of
//! its audit records (`zhongtai-audit-records`) and the log they are in
//! (`zhongtai-audit-log`) — with which a department or citizen asks for
//! proofs here. The proofs come from [`zhongtai_audit::AuditLog`]; this
//! module only maps them to HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use zhongtai_audit::{AuditLog, CosignError, ProofError};

use crate::error::ApiError;
use crate::host::Host;

/// The answer's header naming the log its audit records are in (its
/// checkpoints' origin).
pub const AUDIT_LOG: &str = "zhongtai-audit-log";

/// Largest cosignature hand-in accepted, in bytes (a checkpoint with a
/// few signature lines is a few hundred).
const MAX_NOTE_BYTES: usize = 16 * 1024;

/// The routes above, added to the public router.
pub fn routes() -> Router<Arc<Host>> {
    Router::new()
        .route("/audit/v1/checkpoint", get(checkpoint))
        .route("/audit/v1/checkpoint/witnessed", get(witnessed))
        .route("/audit/v1/proof/inclusion", get(inclusion))
        .route("/audit/v1/proof/consistency", get(consistency))
        .route("/audit/v1/cosignature", post(cosignature))
}

fn log(host: &Host) -> Result<Arc<AuditLog>, ApiError> {
    host.audit().cloned().ok_or_else(|| {
        ApiError::not_found("this host keeps no audit trail, so it has no log to prove")
    })
}

fn note(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// The answer to a proof that could not be made.
pub(crate) fn refused(error: ProofError) -> ApiError {
    match error {
        ProofError::Outside(message) => ApiError::new(404, "not-in-log", message),
        ProofError::Unavailable(message) => ApiError::new(503, "proofs-unavailable", message),
    }
}

/// Runs `work` with the log on a blocking thread (proofs read the tree
/// file).
async fn with_log<T: Send + 'static>(
    host: &Host,
    work: impl FnOnce(&AuditLog) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let log = log(host)?;
    tokio::task::spawn_blocking(move || work(&log))
        .await
        .map_err(|e| ApiError::internal(format!("the proof could not be made: {e}")))?
}

async fn checkpoint(State(host): State<Arc<Host>>) -> Result<Response, ApiError> {
    log(&host)?
        .latest_checkpoint()
        .map(note)
        .ok_or_else(|| ApiError::new(404, "no-checkpoint", "the log has no checkpoint yet"))
}

async fn witnessed(State(host): State<Arc<Host>>) -> Result<Response, ApiError> {
    with_log(&host, |log| log.witnessed_checkpoint().map_err(refused))
        .await?
        .map(note)
        .ok_or_else(|| {
            ApiError::new(
                404,
                "not-witnessed",
                "no witness has cosigned a checkpoint of this log yet",
            )
        })
}

/// The number `name` of the query, which must be there when `required`.
fn number(
    query: &BTreeMap<String, String>,
    name: &str,
    required: bool,
) -> Result<Option<u64>, ApiError> {
    match query.get(name) {
        None if required => Err(ApiError::bad_request(format!(
            "the query needs {name}=<number>"
        ))),
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "{name}={text:?} is not a record count or sequence number"
            ))
        }),
    }
}

/// Refuses query parameters the route does not take.
fn only(query: &BTreeMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match query.keys().find(|k| !known.contains(&k.as_str())) {
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown query parameter {other:?}; this route takes {}",
            known.join(" and ")
        ))),
        None => Ok(()),
    }
}

async fn inclusion(
    State(host): State<Arc<Host>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<axum::Json<zhongtai_audit::InclusionProof>, ApiError> {
    only(&query, &["seq", "size"])?;
    let seq = number(&query, "seq", true)?.unwrap_or_default();
    let size = number(&query, "size", false)?;
    with_log(&host, move |log| {
        log.inclusion_proof(seq, size).map_err(refused)
    })
    .await
    .map(axum::Json)
}

async fn consistency(
    State(host): State<Arc<Host>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<axum::Json<zhongtai_audit::ConsistencyProof>, ApiError> {
    only(&query, &["from", "to"])?;
    let from = number(&query, "from", true)?.unwrap_or_default();
    let to = number(&query, "to", false)?;
    with_log(&host, move |log| {
        log.consistency_proof(from, to).map_err(refused)
    })
    .await
    .map(axum::Json)
}

async fn cosignature(
    State(host): State<Arc<Host>>,
    body: axum::body::Bytes,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    if body.len() > MAX_NOTE_BYTES {
        return Err(ApiError::new(
            413,
            "body-too-large",
            format!("a cosigned checkpoint is at most {MAX_NOTE_BYTES} bytes"),
        ));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("a cosigned checkpoint is UTF-8 text"))?;
    let accepted = with_log(&host, move |log| {
        log.add_cosignatures(&text).map_err(|e| match e {
            CosignError::NotOurs(message) => ApiError::new(409, "not-this-log", message),
            CosignError::Unknown(message) => ApiError::new(403, "unknown-witness", message),
        })
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "accepted": accepted })))
}
