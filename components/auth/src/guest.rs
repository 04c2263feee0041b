//! The WIT export layer: binds the domain logic to the platform imports.

use zhongtai_guest::wasm::{Bucket, Host};

use crate::model::{AuthError, Claims, Session, Subject, SubjectKind};
use crate::service::Auth;

zhongtai_guest::capability_bindings!("../../wit/auth", "zhongtai:auth/component");

use exports::zhongtai::auth::{authn, roles};
use zhongtai::auth::types as wit;

struct Component;

fn with_auth<T>(
    f: impl FnOnce(&Auth<'_, Bucket, Host>) -> Result<T, AuthError>,
) -> Result<T, wit::Error> {
    let bucket = Bucket::default();
    f(&Auth::new(&bucket, &Host)).map_err(to_wit_error)
}

fn to_wit_error(error: AuthError) -> wit::Error {
    match error {
        AuthError::InvalidIdentifier(m) => wit::Error::InvalidIdentifier(m),
        AuthError::WeakPassword(m) => wit::Error::WeakPassword(m),
        AuthError::InvalidInput(m) => wit::Error::InvalidInput(m),
        AuthError::AlreadyRegistered => wit::Error::AlreadyRegistered,
        AuthError::UnknownSubject => wit::Error::UnknownSubject,
        AuthError::InvalidCredentials => wit::Error::InvalidCredentials,
        AuthError::LockedOut(until) => wit::Error::LockedOut(until),
        AuthError::MalformedToken => wit::Error::MalformedToken,
        AuthError::BadSignature => wit::Error::BadSignature,
        AuthError::Expired => wit::Error::Expired,
        AuthError::Revoked => wit::Error::Revoked,
        AuthError::Forbidden(m) => wit::Error::Forbidden(m),
        AuthError::Other(m) => wit::Error::Other(m),
    }
}

fn kind_from_wit(kind: wit::SubjectKind) -> SubjectKind {
    match kind {
        wit::SubjectKind::Citizen => SubjectKind::Citizen,
        wit::SubjectKind::LegalEntity => SubjectKind::LegalEntity,
        wit::SubjectKind::Official => SubjectKind::Official,
    }
}

fn kind_to_wit(kind: SubjectKind) -> wit::SubjectKind {
    match kind {
        SubjectKind::Citizen => wit::SubjectKind::Citizen,
        SubjectKind::LegalEntity => wit::SubjectKind::LegalEntity,
        SubjectKind::Official => wit::SubjectKind::Official,
    }
}

fn subject_to_wit(s: Subject) -> wit::Subject {
    wit::Subject {
        id: s.id,
        kind: kind_to_wit(s.kind),
        display_name: s.display_name,
        roles: s.roles,
        registered_at: s.registered_at,
    }
}

fn claims_to_wit(c: Claims) -> wit::Claims {
    wit::Claims {
        subject_id: c.subject_id,
        kind: kind_to_wit(c.kind),
        display_name: c.display_name,
        roles: c.roles,
        session_id: c.session_id,
        issued_at: c.issued_at,
        expires_at: c.expires_at,
    }
}

fn session_to_wit(s: Session) -> wit::Session {
    wit::Session {
        token: s.token,
        claims: claims_to_wit(s.claims),
    }
}

impl authn::Guest for Component {
    fn register(
        kind: wit::SubjectKind,
        id: String,
        display_name: String,
        password: String,
    ) -> Result<wit::Subject, wit::Error> {
        with_auth(|auth| auth.register(kind_from_wit(kind), &id, &display_name, &password))
            .map(subject_to_wit)
    }

    fn login(id: String, password: String) -> Result<wit::Session, wit::Error> {
        with_auth(|auth| auth.login(&id, &password)).map(session_to_wit)
    }

    fn login_from(
        id: String,
        password: String,
        client: String,
    ) -> Result<wit::Session, wit::Error> {
        with_auth(|auth| auth.login_from(&id, &password, &client)).map(session_to_wit)
    }

    fn verify(token: String) -> Result<wit::Claims, wit::Error> {
        with_auth(|auth| auth.verify(&token)).map(claims_to_wit)
    }

    fn logout(token: String) -> Result<(), wit::Error> {
        with_auth(|auth| auth.logout(&token))
    }

    fn get_subject(id: String) -> Result<wit::Subject, wit::Error> {
        with_auth(|auth| auth.get_subject(&id)).map(subject_to_wit)
    }
}

impl roles::Guest for Component {
    fn grant(
        admin_token: String,
        subject_id: String,
        role: String,
    ) -> Result<wit::Subject, wit::Error> {
        with_auth(|auth| auth.grant(&admin_token, &subject_id, &role)).map(subject_to_wit)
    }

    fn revoke(
        admin_token: String,
        subject_id: String,
        role: String,
    ) -> Result<wit::Subject, wit::Error> {
        with_auth(|auth| auth.revoke(&admin_token, &subject_id, &role)).map(subject_to_wit)
    }
}

export!(Component);
