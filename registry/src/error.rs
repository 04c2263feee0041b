//! The registry's one error type, shared by the store, the HTTP API (which
//! turns each into a status and a JSON body) and the clients.

use crate::name::NameError;
use crate::signing::SignatureError;
use crate::validate::ValidationError;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A name, version, requirement or digest is malformed.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The blob is not an acceptable component.
    #[error(transparent)]
    InvalidComponent(#[from] ValidationError),
    /// A signature or key problem.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The version exists with other bytes; versions never change.
    #[error(
        "{package}@{version} is already published with digest {existing}; a published version never changes, publish a new version"
    )]
    VersionExists {
        /// The package.
        package: String,
        /// The version.
        version: String,
        /// What it holds.
        existing: String,
    },
    /// No such package, version or blob.
    #[error("{0} not found")]
    NotFound(String),
    /// No version satisfies the requirement.
    #[error(
        "no published, non-yanked version of {package} matches {requirement} (published: {published})"
    )]
    NoMatch {
        /// The package.
        package: String,
        /// The requirement.
        requirement: String,
        /// What there is.
        published: String,
    },
    /// A stored blob does not hash to its digest.
    #[error("blob {digest} is damaged: its bytes hash to {actual}")]
    BlobCorrupt {
        /// What it should hash to.
        digest: String,
        /// What it hashes to.
        actual: String,
    },
    /// A publish or yank without a valid token.
    #[error("a valid publisher token is required (Authorization: Bearer …)")]
    Unauthorized,
    /// A publish or yank in a namespace the token does not cover.
    #[error("this publisher token covers {covers}, not the namespace {namespace}")]
    Forbidden {
        /// The namespace asked for.
        namespace: String,
        /// The namespaces the token covers.
        covers: String,
    },
    /// Disk or database failure.
    #[error("registry storage: {0}")]
    Storage(String),
    /// The remote registry could not be reached or answered nonsense.
    #[error("registry at {url}: {message}")]
    Transport {
        /// Where.
        url: String,
        /// What happened.
        message: String,
    },
    /// The remote registry refused the request.
    #[error("registry refused ({code}): {message}")]
    Remote {
        /// HTTP status.
        status: u16,
        /// The error code from its JSON body.
        code: String,
        /// Its message.
        message: String,
    },
}

impl RegistryError {
    /// A stable code for the HTTP API, e.g. `version-exists`.
    pub fn code(&self) -> &str {
        match self {
            RegistryError::InvalidName(_) => "invalid-name",
            RegistryError::InvalidComponent(ValidationError::CoreModule) => "core-module",
            RegistryError::InvalidComponent(ValidationError::MissingImports { .. }) => {
                "missing-imports"
            }
            RegistryError::InvalidComponent(_) => "invalid-component",
            RegistryError::Signature(_) => "bad-signature",
            RegistryError::VersionExists { .. } => "version-exists",
            RegistryError::NotFound(_) => "not-found",
            RegistryError::NoMatch { .. } => "no-matching-version",
            RegistryError::BlobCorrupt { .. } => "blob-corrupt",
            RegistryError::Unauthorized => "unauthorized",
            RegistryError::Forbidden { .. } => "forbidden",
            RegistryError::Storage(_) => "storage",
            RegistryError::Transport { .. } => "transport",
            RegistryError::Remote { code, .. } => code,
        }
    }

    /// The HTTP status the API answers with.
    pub fn status(&self) -> u16 {
        match self {
            RegistryError::InvalidName(_) => 400,
            RegistryError::InvalidComponent(ValidationError::TooLarge { .. }) => 413,
            RegistryError::InvalidComponent(_) | RegistryError::Signature(_) => 422,
            RegistryError::VersionExists { .. } => 409,
            RegistryError::NotFound(_) | RegistryError::NoMatch { .. } => 404,
            RegistryError::Unauthorized => 401,
            RegistryError::Forbidden { .. } => 403,
            RegistryError::BlobCorrupt { .. } | RegistryError::Storage(_) => 500,
            RegistryError::Transport { .. } => 502,
            RegistryError::Remote { status, .. } => *status,
        }
    }
}

impl From<rusqlite::Error> for RegistryError {
    fn from(e: rusqlite::Error) -> Self {
        RegistryError::Storage(e.to_string())
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        RegistryError::Storage(e.to_string())
    }
}
