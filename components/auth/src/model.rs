//! The auth capability's records and errors.

use serde::{Deserialize, Serialize};
pub use zhongtai_ids::SubjectKind;

/// A registered subject as callers see it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Canonical identifier.
    pub id: String,
    /// Kind of subject.
    pub kind: SubjectKind,
    /// Name for display.
    pub display_name: String,
    /// Roles held, sorted.
    pub roles: Vec<String>,
    /// Unix seconds.
    pub registered_at: u64,
}

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Canonical identifier of the subject.
    pub subject_id: String,
    /// Kind of subject.
    pub kind: SubjectKind,
    /// Name for display.
    pub display_name: String,
    /// Roles held now.
    pub roles: Vec<String>,
    /// Session the token belongs to.
    pub session_id: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A new session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// What it carries.
    pub claims: Claims,
}

/// Why an auth operation failed; mirrors the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Malformed identifier, with the reason.
    InvalidIdentifier(String),
    /// Password policy not met, with the rule.
    WeakPassword(String),
    /// Another argument out of bounds.
    InvalidInput(String),
    /// Identifier taken.
    AlreadyRegistered,
    /// No such subject.
    UnknownSubject,
    /// Wrong identifier or password.
    InvalidCredentials,
    /// Locked until this Unix second.
    LockedOut(u64),
    /// Not a zhongtai token.
    MalformedToken,
    /// Signature mismatch or untrusted key.
    BadSignature,
    /// Past its expiry.
    Expired,
    /// Session ended.
    Revoked,
    /// Not allowed, with the reason.
    Forbidden(String),
    /// Storage or configuration failure.
    Other(String),
}

/// A subject as stored (key `subject/<id>`). Its password hash is kept
/// apart (key `credential/<id>`) so that verifying a token, the hot path,
/// never reads or parses it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSubject {
    pub id: String,
    pub kind: StoredKind,
    pub display_name: String,
    pub roles: Vec<String>,
    pub registered_at: u64,
}

/// [`SubjectKind`] as stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum StoredKind {
    Citizen,
    LegalEntity,
    Official,
}

impl From<SubjectKind> for StoredKind {
    fn from(kind: SubjectKind) -> Self {
        match kind {
            SubjectKind::Citizen => StoredKind::Citizen,
            SubjectKind::LegalEntity => StoredKind::LegalEntity,
            SubjectKind::Official => StoredKind::Official,
        }
    }
}

impl From<StoredKind> for SubjectKind {
    fn from(kind: StoredKind) -> Self {
        match kind {
            StoredKind::Citizen => SubjectKind::Citizen,
            StoredKind::LegalEntity => SubjectKind::LegalEntity,
            StoredKind::Official => SubjectKind::Official,
        }
    }
}

impl StoredSubject {
    pub(crate) fn public(&self) -> Subject {
        Subject {
            id: self.id.clone(),
            kind: self.kind.into(),
            display_name: self.display_name.clone(),
            roles: self.roles.clone(),
            registered_at: self.registered_at,
        }
    }
}

/// An open session (key `session/<session-id>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSession {
    pub subject_id: String,
    pub expires_at: u64,
}

/// Failed logins of one subject (key `failures/<id>`), or of one subject
/// from one client (`failures/<id>/from/<client>`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Failures {
    pub count: u32,
    pub window_start: u64,
    pub locked_until: u64,
}
