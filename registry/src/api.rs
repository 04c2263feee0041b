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
//!
//! Publishing and yanking need a publisher token ([`Publishers`]), each
//! covering some namespaces (`zhongtai`, `example`) or all of them. The
//! token and its namespace are checked from the request head, before any
//! of the body is read: a client without a valid token cannot make the
//! registry take in 32 MiB (a client sending `Expect: 100-continue`, as
//! `zhongtai publish` does, gets the refusal before sending the body).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;

use zhongtai_audit::same_secret;

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
    /// Who may publish and yank; without any, nobody may.
    pub publishers: Publishers,
}

/// Publisher tokens and the namespaces each covers.
#[derive(Default)]
pub struct Publishers {
    tokens: Vec<(String, Option<Vec<String>>)>,
}

/// A publishers file: `[[publisher]]` tables with `name`, `token` and
/// `namespaces`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishersFile {
    #[serde(default)]
    publisher: Vec<PublisherEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublisherEntry {
    name: String,
    token: String,
    namespaces: Vec<String>,
}

impl Publishers {
    /// One token for every namespace (`None`: nobody may publish).
    pub fn everything(token: Option<String>) -> Self {
        Self {
            tokens: token.into_iter().map(|t| (t, None)).collect(),
        }
    }

    /// Adds the publishers of a TOML file (`text`, read from `file`):
    ///
    /// ```toml
    /// [[publisher]]
    /// name = "platform team"
    /// token = "…"
    /// namespaces = ["zhongtai"]
    /// ```
    pub fn with_file(mut self, text: &str, file: &str) -> Result<Self, String> {
        let parsed: PublishersFile = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        for entry in parsed.publisher {
            if entry.token.len() < 32 {
                return Err(format!(
                    "{file}: publisher {:?}: the token is shorter than 32 characters",
                    entry.name
                ));
            }
            if self.tokens.iter().any(|(t, _)| *t == entry.token) {
                return Err(format!(
                    "{file}: publisher {:?}: the token is also another publisher's",
                    entry.name
                ));
            }
            if entry.namespaces.is_empty() {
                return Err(format!(
                    "{file}: publisher {:?}: namespaces is empty",
                    entry.name
                ));
            }
            self.tokens.push((entry.token, Some(entry.namespaces)));
        }
        Ok(self)
    }

    /// Whether no token may publish.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Checks that `given` is a token covering `namespace`.
    fn authorize(&self, given: Option<&str>, namespace: &str) -> Result<(), RegistryError> {
        let given = given.ok_or(RegistryError::Unauthorized)?;
        let mut covers = None;
        for (token, namespaces) in &self.tokens {
            if same_secret(token, given) {
                covers = Some(namespaces);
            }
        }
        match covers {
            None => Err(RegistryError::Unauthorized),
            Some(None) => Ok(()),
            Some(Some(namespaces)) if namespaces.iter().any(|n| n == namespace) => Ok(()),
            Some(Some(namespaces)) => Err(RegistryError::Forbidden {
                namespace: namespace.to_owned(),
                covers: namespaces.join(", "),
            }),
        }
    }
}

/// Proof that a publish or yank carries a token covering the package's
/// namespace; checked from the request head, before the body is read.
struct Publisher;

impl axum::extract::FromRequestParts<Arc<ApiState>> for Publisher {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        let Path((name, _)): Path<(String, String)> = Path::from_request_parts(parts, state)
            .await
            .map_err(|e| RegistryError::Storage(format!("path: {e}")))?;
        let package = PackageName::parse(&name).map_err(RegistryError::from)?;
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        state.publishers.authorize(given, package.namespace())?;
        Ok(Publisher)
    }
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
    _: Publisher,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
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
    name: String,
    version: String,
    yanked: bool,
) -> ApiResult<Response> {
    let name = PackageName::parse(&name).map_err(RegistryError::from)?;
    let version = parse_version(&version).map_err(RegistryError::from)?;
    let record = blocking(move || state.registry.set_yanked(&name, &version, yanked)).await?;
    Ok(axum::Json(record).into_response())
}

async fn yank(
    State(state): State<Arc<ApiState>>,
    _: Publisher,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    set_yanked(state, name, version, true).await
}

async fn unyank(
    State(state): State<Arc<ApiState>>,
    _: Publisher,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    set_yanked(state, name, version, false).await
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
