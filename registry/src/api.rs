//! The registry's HTTP API, on axum.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /api/v1/packages?q=` | search packages by name |
//! | `GET /api/v1/packages/{name}` | a package's versions: digests, yanked, publisher, WIT imports and exports |
//! | `GET /api/v1/blobs/{digest}` | a blob's bytes |
//! | `PUT /api/v1/packages/{name}/{version}` | publish (bearer token; body: the component; optional `X-Zhongtai-Signature` and `X-Zhongtai-Public-Key`) |
//! | `PUT`/`DELETE /api/v1/packages/{name}/{version}/yank` | yank / restore (bearer token) |
//!
//! Errors are `{"error": {"code": "...", "message": "..."}}` with the status
//! of [`RegistryError::status`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;

use crate::client::{LocalRegistry, Registry};
use crate::error::RegistryError;
use crate::name::{Digest, PackageName, parse_version};
use crate::signing::{PublicKey, Signed};
use crate::store::PublishRequest;
use crate::validate::MAX_COMPONENT_BYTES;

/// What the API's handlers share.
pub struct ApiState {
    /// The registry served.
    pub registry: LocalRegistry,
    /// The token publishers present; `None` refuses every publish and yank.
    pub token: Option<String>,
}

/// A [`RegistryError`] as an HTTP response.
pub struct ApiError(RegistryError);

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body =
            serde_json::json!({"error": {"code": self.0.code(), "message": self.0.to_string()}});
        (status, axum::Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The API's routes over `state`.
pub fn app(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/packages", get(search))
        .route("/api/v1/packages/{name}", get(package))
        .route("/api/v1/packages/{name}/{version}", put(publish))
        .route(
            "/api/v1/packages/{name}/{version}/yank",
            put(yank).delete(unyank),
        )
        .route("/api/v1/blobs/{digest}", get(blob))
        .layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES + 1024))
        .with_state(state)
}

/// Runs blocking registry work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RegistryError::Storage(format!("worker failed: {e}")))?
        .map_err(ApiError)
}

fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), RegistryError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&state.token, given) {
        (Some(expected), Some(given))
            if expected.len() == given.len()
                && expected
                    .bytes()
                    .zip(given.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0 =>
        {
            Ok(())
        }
        _ => Err(RegistryError::Unauthorized),
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Response> {
    let found = blocking(move || state.registry.search(&query.q)).await?;
    Ok(axum::Json(found).into_response())
}

async fn package(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let name = PackageName::parse(&name).map_err(RegistryError::from)?;
    let info = blocking(move || state.registry.package(&name)).await?;
    Ok(axum::Json(info).into_response())
}

async fn blob(
    State(state): State<Arc<ApiState>>,
    Path(digest): Path<String>,
) -> ApiResult<Response> {
    let digest = Digest::parse(&digest).map_err(RegistryError::from)?;
    let bytes = blocking(move || state.registry.blob(&digest)).await?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], bytes).into_response())
}

async fn publish(
    State(state): State<Arc<ApiState>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    let package = PackageName::parse(&name).map_err(RegistryError::from)?;
    let version = parse_version(&version).map_err(RegistryError::from)?;
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let signed = match (
        header_text("x-zhongtai-signature"),
        header_text("x-zhongtai-public-key"),
    ) {
        (Some(signature), Some(key)) => Some(Signed {
            signature,
            public_key: PublicKey::parse(&key).map_err(RegistryError::from)?,
        }),
        (None, None) => None,
        _ => {
            return Err(
                RegistryError::Signature(crate::signing::SignatureError::BadKey(
                    "X-Zhongtai-Signature and X-Zhongtai-Public-Key go together".into(),
                ))
                .into(),
            );
        }
    };
    let request = PublishRequest {
        package,
        version,
        bytes: body.to_vec(),
        signed,
    };
    let outcome = blocking(move || state.registry.publish(request)).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(outcome)).into_response())
}

async fn set_yanked(
    state: Arc<ApiState>,
    headers: HeaderMap,
    name: String,
    version: String,
    yanked: bool,
) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    let name = PackageName::parse(&name).map_err(RegistryError::from)?;
    let version = parse_version(&version).map_err(RegistryError::from)?;
    let record = blocking(move || state.registry.set_yanked(&name, &version, yanked)).await?;
    Ok(axum::Json(record).into_response())
}

async fn yank(
    State(state): State<Arc<ApiState>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    set_yanked(state, headers, name, version, true).await
}

async fn unyank(
    State(state): State<Arc<ApiState>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    set_yanked(state, headers, name, version, false).await
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
