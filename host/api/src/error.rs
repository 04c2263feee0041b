//! The one error answer of the HTTP host: a status and the JSON body
//! `{"error": {"code": "...", "message": "...", "step": "..."}}` (`step`
//! only when a workflow step failed). Every handler returns
//! `Result<_, ApiError>` and uses `?`; refusals of services, of the admin
//! API and of deploys all come out through [`ApiError::into_response`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use zhongtai_audit::AuditError;
use zhongtai_manifest::ManifestErrors;
use zhongtai_runtime::CallError;

/// A refusal or failure, answered with its status and the JSON error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code: an error case of a component, `check-failed`,
    /// `not-granted`, `not-found`, `unauthorized`, `invalid-manifest`, …
    pub code: String,
    /// For people: what was wrong and what was expected.
    pub message: String,
    /// The workflow step that failed, if one did.
    pub step: Option<String>,
    /// For a 405: the methods the path accepts (the `Allow` header).
    pub allow: Option<String>,
}

impl ApiError {
    /// An error with `status` (an out-of-range status becomes 500).
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.to_owned(),
            message: message.into(),
            step: None,
            allow: None,
        }
    }

    /// The same error, naming the workflow step it came from.
    pub fn at_step(mut self, step: Option<&str>) -> Self {
        self.step = step.map(str::to_owned);
        self
    }

    /// 400 `bad-request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad-request", message)
    }

    /// 404 `not-found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not-found", message)
    }

    /// 500 `internal`: a bug or a failure of the host itself.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> Json {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(step) = &self.step {
            error["step"] = Json::String(step.clone());
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// Every `503` is a passing state (busy, storage low, the trail
/// unavailable): it says when to try again.
/// The [`ApiError::code`] of an error response, kept in its extensions
/// for the request's metrics and trace.
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        response
            .extensions_mut()
            .insert(ErrorCode(self.code.clone()));
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| axum::http::HeaderValue::from_str(a).ok())
        {
            response
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// A capability call that failed in the host (not an error case the
/// component returned): bad arguments are the caller's fault (400), a
/// deadline is 504, a full instance pool 503, anything else 500.
impl From<CallError> for ApiError {
    fn from(error: CallError) -> Self {
        let status = match &error {
            CallError::Arguments { .. } => 400,
            CallError::Timeout { .. } => 504,
            CallError::Busy { .. } => 503,
            _ => 500,
        };
        Self::new(status, error.code(), error.to_string())
    }
}

/// A write to the audit trail failed: the action is refused, since nothing
/// happens unrecorded.
impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        Self::new(503, "audit-unavailable", error.to_string())
    }
}

/// A manifest refused by its checks or at deploy: 422 with every problem,
/// one per line, each naming file, line, column and field.
impl From<ManifestErrors> for ApiError {
    fn from(errors: ManifestErrors) -> Self {
        Self::new(422, "invalid-manifest", errors.to_string())
    }
}

/// A request's steps panicked or could not be run.
impl From<zhongtai_runtime::StepsFailed> for ApiError {
    fn from(error: zhongtai_runtime::StepsFailed) -> Self {
        Self::internal(error.to_string())
    }
}

/// A blocking worker of the host panicked or was cancelled.
impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::internal(format!("the request's worker failed: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_the_step_only_when_there_is_one() {
        let plain = ApiError::not_found("no such thing");
        assert_eq!(
            plain.body(),
            json!({"error": {"code": "not-found", "message": "no such thing"}})
        );
        let at = ApiError::new(403, "check-failed", "officials only").at_step(Some("official"));
        assert_eq!(at.body()["error"]["step"], "official");
        assert_eq!(at.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn an_impossible_status_is_a_server_error() {
        assert_eq!(
            ApiError::new(42, "x", "y").status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
