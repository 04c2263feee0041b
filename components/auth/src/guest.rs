//! The WIT export layer: binds the domain logic to the platform imports.

use std::cell::OnceCell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{AuthError, Claims, Environment, Session, Storage, Subject, SubjectKind};
use crate::service::Auth;

wit_bindgen::generate!({
    path: [
        "../../wit/deps/keyvalue",
        "../../wit/deps/config",
        "../../wit/deps/logging",
        "../../wit/platform",
        "../../wit/auth",
    ],
    world: "zhongtai:auth/component",
    generate_all,
});

use exports::zhongtai::auth::{authn, roles};
use wasi::keyvalue::store;
use zhongtai::auth::types as wit;

struct Component;

/// The package's bucket, opened on first use within a call.
#[derive(Default)]
struct Bucket(OnceCell<store::Bucket>);

impl Bucket {
    fn open(&self) -> Result<&store::Bucket, String> {
        if self.0.get().is_none() {
            let bucket = store::open("default").map_err(|e| format!("keyvalue open: {e:?}"))?;
            let _ = self.0.set(bucket);
        }
        self.0
            .get()
            .ok_or_else(|| "keyvalue bucket unavailable".to_owned())
    }
}

impl Storage for Bucket {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.open()?
            .get(key)
            .map_err(|e| format!("keyvalue get: {e:?}"))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.open()?
            .set(key, value)
            .map_err(|e| format!("keyvalue set: {e:?}"))
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        self.open()?
            .delete(key)
            .map_err(|e| format!("keyvalue delete: {e:?}"))
    }
}

struct Platform;

impl Environment for Platform {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }
    fn random(&self, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            // Without randomness no salt or session id is safe to hand out.
            panic!("wasi:random is unavailable");
        }
    }
    fn config(&self, key: &str) -> Option<String> {
        wasi::config::store::get(key).ok().flatten()
    }
    fn caller_department(&self) -> String {
        zhongtai::platform::context::current().department
    }
}

fn with_auth<T>(
    f: impl FnOnce(&Auth<'_, Bucket, Platform>) -> Result<T, AuthError>,
) -> Result<T, wit::Error> {
    let bucket = Bucket::default();
    f(&Auth::new(&bucket, &Platform)).map_err(to_wit_error)
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
