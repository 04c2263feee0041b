//! The auth capability's operations over its [`Storage`] and [`Platform`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zhongtai_ids::{SubjectId, SubjectKind};

use zhongtai_guest::{Platform, Storage};

use crate::model::{AuthError, Claims, Failures, Session, StoredSession, StoredSubject, Subject};
use crate::password::{self, Cost, PasswordHash};
use crate::token::{self, SigningKey, TokenClaims};

/// The role that may grant and revoke roles.
pub const ADMIN_ROLE: &str = "admin";
const GENERATED_KEY: &str = "keys/generated";

/// The auth capability bound to its storage and platform for one call.
pub struct Auth<'a, S: Storage, P: Platform> {
    store: &'a S,
    env: &'a P,
}

fn other(e: impl std::fmt::Display) -> AuthError {
    AuthError::Other(e.to_string())
}

fn load<T: serde::de::DeserializeOwned>(
    store: &impl Storage,
    key: &str,
) -> Result<Option<T>, AuthError> {
    zhongtai_guest::load_json(store, key).map_err(AuthError::Other)
}

fn save<T: serde::Serialize>(store: &impl Storage, key: &str, value: &T) -> Result<(), AuthError> {
    let bytes = zhongtai_guest::to_json(value).map_err(AuthError::Other)?;
    store.set(key, &bytes).map_err(other)
}

fn check_role(role: &str) -> Result<(), AuthError> {
    let valid = (1..=64).contains(&role.len())
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(AuthError::InvalidInput(format!(
            "role {role:?} must be 1 to 64 lowercase letters, digits or '-'"
        )))
    }
}

/// One count of failed logins: its key, and how many failures within the
/// window lock it.
struct Counter {
    key: String,
    threshold: u32,
    cleared_by_success: bool,
}

fn subject_key(id: &str) -> String {
    format!("subject/{id}")
}

fn credential_key(id: &str) -> String {
    format!("credential/{id}")
}

impl<'a, S: Storage, P: Platform> Auth<'a, S, P> {
    /// Binds the capability to `store` and `env`.
    pub fn new(store: &'a S, env: &'a P) -> Self {
        Self { store, env }
    }

    fn config_u64(&self, key: &str, default: u64) -> Result<u64, AuthError> {
        match self.env.config(key) {
            Some(text) => text.trim().parse().map_err(|_| {
                AuthError::Other(format!(
                    "configuration {key}: {text:?} is not a whole number"
                ))
            }),
            None => Ok(default),
        }
    }

    fn config_u32(&self, key: &str, default: u32) -> Result<u32, AuthError> {
        let value = self.config_u64(key, u64::from(default))?;
        u32::try_from(value)
            .map_err(|_| AuthError::Other(format!("configuration {key}: {value} is too large")))
    }

    fn cost(&self) -> Result<Cost, AuthError> {
        let default = Cost::default();
        Ok(Cost {
            memory_kib: self.config_u32("argon2-memory-kib", default.memory_kib)?,
            iterations: self.config_u32("argon2-iterations", default.iterations)?,
            parallelism: self.config_u32("argon2-parallelism", default.parallelism)?,
        })
    }

    /// The signing keys: configured ones, else one generated on first use and
    /// kept in the bucket.
    fn keys(&self) -> Result<Vec<SigningKey>, AuthError> {
        if let Some(text) = self.env.config("signing-keys") {
            return token::parse_keys(&text);
        }
        if let Some(bytes) = self.store.get(GENERATED_KEY).map_err(other)? {
            return Ok(vec![SigningKey::new("local", bytes)]);
        }
        // The first use on any host makes the key, once: concurrent first
        // uses take turns and the later ones find it made.
        let _making = self.env.lock(GENERATED_KEY).map_err(AuthError::Other)?;
        if let Some(bytes) = self.store.get(GENERATED_KEY).map_err(other)? {
            return Ok(vec![SigningKey::new("local", bytes)]);
        }
        let mut secret = vec![0u8; 32];
        self.env.random(&mut secret);
        self.store.set(GENERATED_KEY, &secret).map_err(other)?;
        Ok(vec![SigningKey::new("local", secret)])
    }

    fn random_id(&self) -> String {
        let mut bytes = [0u8; 16];
        self.env.random(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The argon2 work of checking a password, for an id that has none.
    fn dummy_verification(&self, password: &str) -> Result<(), AuthError> {
        PasswordHash::new(self.cost()?, password, [0u8; 16]).map(drop)
    }

    fn subject(&self, id: &str) -> Result<StoredSubject, AuthError> {
        load(self.store, &subject_key(id))?.ok_or(AuthError::UnknownSubject)
    }

    /// Registers a subject; see the WIT docs of `authn.register`.
    pub fn register(
        &self,
        kind: SubjectKind,
        id: &str,
        display_name: &str,
        password: &str,
    ) -> Result<Subject, AuthError> {
        let id = SubjectId::parse_as(kind, id).map_err(AuthError::InvalidIdentifier)?;
        let display_name = display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 128 {
            return Err(AuthError::InvalidInput(
                "display-name must be 1 to 128 characters".into(),
            ));
        }
        password::check_policy(password)?;
        if let Some(department) = id.department() {
            let caller = self.env.caller_department();
            if department != caller {
                return Err(AuthError::Forbidden(format!(
                    "officials of {department} can only be registered by {department}, not {caller}"
                )));
            }
        }
        let key = subject_key(id.as_str());
        if self.store.get(&key).map_err(other)?.is_some() {
            return Err(AuthError::AlreadyRegistered);
        }
        let mut salt = [0u8; 16];
        self.env.random(&mut salt);
        let is_bootstrap_admin = kind == SubjectKind::Official
            && self.env.config("bootstrap-admins").is_some_and(|list| {
                list.split(',')
                    .any(|a| a.trim().eq_ignore_ascii_case(id.as_str()))
            });
        let stored = StoredSubject {
            id: id.as_str().to_owned(),
            kind: kind.into(),
            display_name: display_name.to_owned(),
            roles: if is_bootstrap_admin {
                vec![ADMIN_ROLE.to_owned()]
            } else {
                Vec::new()
            },
            registered_at: self.env.now(),
        };
        let hash = PasswordHash::new(self.cost()?, password, salt)?;
        // The credential first: a subject record never exists without one.
        save(self.store, &credential_key(id.as_str()), &hash)?;
        save(self.store, &key, &stored)?;
        Ok(stored.public())
    }

    /// Opens a session; see the WIT docs of `authn.login`. Failures are
    /// counted per id.
    pub fn login(&self, id: &str, password: &str) -> Result<Session, AuthError> {
        self.open_session(id, password, None)
    }

    /// Opens a session for a login from `client`; see the WIT docs of
    /// `authn.login-from`. Failures are counted per id and client, and per
    /// id with the much higher `lockout-id-threshold`. An empty client
    /// counts as [`Auth::login`] does.
    pub fn login_from(&self, id: &str, password: &str, client: &str) -> Result<Session, AuthError> {
        // Only printable ASCII of a bounded length becomes part of a key.
        let client: String = client
            .chars()
            .filter(char::is_ascii_graphic)
            .take(128)
            .collect();
        if client.is_empty() {
            return self.open_session(id, password, None);
        }
        self.open_session(id, password, Some(&client))
    }

    /// The failure counters a login of `id` from `client` is judged by:
    /// their keys, thresholds, and whether a successful login clears them.
    fn counters(&self, id: &str, client: Option<&str>) -> Result<Vec<Counter>, AuthError> {
        let threshold = self.config_u32("lockout-threshold", 5)?;
        Ok(match client {
            None => vec![Counter {
                key: format!("failures/{id}"),
                threshold,
                cleared_by_success: true,
            }],
            Some(client) => vec![
                Counter {
                    key: format!("failures/{id}/from/{client}"),
                    threshold,
                    cleared_by_success: true,
                },
                // Not cleared by the owner's success, or guessing spread
                // over many clients would restart whenever the owner logs in.
                Counter {
                    key: format!("failures/{id}"),
                    threshold: self.config_u32("lockout-id-threshold", 50)?,
                    cleared_by_success: false,
                },
            ],
        })
    }

    /// Checks the password and opens a session, counting failures.
    ///
    /// Unknown ids cost the same argon2 work as known ones, so the time of
    /// an answer does not tell whether an id is registered. Failures are
    /// counted under the platform lock `failures/<id>`, so concurrent wrong
    /// passwords lock at exactly the threshold.
    fn open_session(
        &self,
        id: &str,
        password: &str,
        client: Option<&str>,
    ) -> Result<Session, AuthError> {
        if password.len() > 1024 {
            return Err(AuthError::InvalidCredentials);
        }
        // Unknown and malformed ids get the same answer as a wrong password,
        // after the same work.
        let subject = match SubjectId::parse(id).map(|id| self.subject(id.as_str())) {
            Ok(Ok(subject)) => subject,
            Ok(Err(AuthError::UnknownSubject)) | Err(_) => {
                self.dummy_verification(password)?;
                return Err(AuthError::InvalidCredentials);
            }
            Ok(Err(e)) => return Err(e),
        };
        let now = self.env.now();
        let counters = self.counters(&subject.id, client)?;
        self.refuse_if_locked(&counters, now)?;
        let credential: PasswordHash =
            load(self.store, &credential_key(&subject.id))?.ok_or_else(|| {
                AuthError::Other(format!("subject {} has no stored credential", subject.id))
            })?;
        let matched = credential.matches(password)?;
        let _counting = self
            .env
            .lock(&format!("failures/{}", subject.id))
            .map_err(AuthError::Other)?;
        // Judge again under the lock: other attempts may have counted since.
        self.refuse_if_locked(&counters, now)?;
        if !matched {
            return Err(self.count_failure(&counters, now)?);
        }
        for counter in counters.iter().filter(|c| c.cleared_by_success) {
            if self.store.get(&counter.key).map_err(other)?.is_some() {
                self.store.delete(&counter.key).map_err(other)?;
            }
        }
        let keys = self.keys()?;
        let ttl = self.config_u64("token-ttl-seconds", 3600)?;
        let claims = TokenClaims {
            sub: subject.id.clone(),
            sid: self.random_id(),
            iat: now,
            exp: now.saturating_add(ttl),
        };
        save(
            self.store,
            &format!("session/{}", claims.sid),
            &StoredSession {
                subject_id: subject.id.clone(),
                expires_at: claims.exp,
            },
        )?;
        let token = token::sign(&keys[0], &claims);
        Ok(Session {
            token,
            claims: claims_of(&subject, &claims),
        })
    }

    /// `locked-out` when any of `counters` is locked at `now`.
    fn refuse_if_locked(&self, counters: &[Counter], now: u64) -> Result<(), AuthError> {
        for counter in counters {
            let failures: Failures = load(self.store, &counter.key)?.unwrap_or_default();
            if failures.locked_until > now {
                return Err(AuthError::LockedOut(failures.locked_until));
            }
        }
        Ok(())
    }

    /// Counts one failed login on every counter and returns the error to
    /// answer: `locked-out` when a counter reached its threshold.
    fn count_failure(&self, counters: &[Counter], now: u64) -> Result<AuthError, AuthError> {
        let window = self.config_u64("lockout-window-seconds", 900)?;
        let lockout = self.config_u64("lockout-seconds", 900)?;
        let mut answer = AuthError::InvalidCredentials;
        for counter in counters {
            let mut failures: Failures = load(self.store, &counter.key)?.unwrap_or_default();
            if now.saturating_sub(failures.window_start) >= window {
                failures = Failures {
                    count: 0,
                    window_start: now,
                    locked_until: 0,
                };
            }
            failures.count += 1;
            if failures.count >= counter.threshold {
                failures.locked_until = now + lockout;
                failures.count = 0;
                answer = AuthError::LockedOut(failures.locked_until);
            }
            save(self.store, &counter.key, &failures)?;
        }
        Ok(answer)
    }

    /// Verifies a token; see the WIT docs of `authn.verify`.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = token::open(&self.keys()?, token)?;
        if self.env.now() >= claims.exp {
            return Err(AuthError::Expired);
        }
        let session: StoredSession =
            load(self.store, &format!("session/{}", claims.sid))?.ok_or(AuthError::Revoked)?;
        if session.subject_id != claims.sub {
            return Err(AuthError::BadSignature);
        }
        let subject = self.subject(&claims.sub)?;
        Ok(claims_of(&subject, &claims))
    }

    /// Ends a session; see the WIT docs of `authn.logout`.
    pub fn logout(&self, token: &str) -> Result<(), AuthError> {
        let claims = token::open(&self.keys()?, token)?;
        self.store
            .delete(&format!("session/{}", claims.sid))
            .map_err(other)
    }

    /// Returns a subject.
    pub fn get_subject(&self, id: &str) -> Result<Subject, AuthError> {
        let id = SubjectId::parse(id).map_err(AuthError::InvalidIdentifier)?;
        Ok(self.subject(id.as_str())?.public())
    }

    fn change_role(
        &self,
        admin_token: &str,
        subject_id: &str,
        role: &str,
        grant: bool,
    ) -> Result<Subject, AuthError> {
        let admin = self.verify(admin_token)?;
        if admin.kind != SubjectKind::Official || !admin.roles.iter().any(|r| r == ADMIN_ROLE) {
            return Err(AuthError::Forbidden(format!(
                "only an official holding the {ADMIN_ROLE} role may change roles; {} does not",
                admin.subject_id
            )));
        }
        check_role(role)?;
        let id = SubjectId::parse(subject_id).map_err(AuthError::InvalidIdentifier)?;
        let mut subject = self.subject(id.as_str())?;
        let held = subject.roles.iter().any(|r| r == role);
        if grant && !held {
            subject.roles.push(role.to_owned());
            subject.roles.sort();
        } else if !grant && held {
            subject.roles.retain(|r| r != role);
        } else {
            return Ok(subject.public());
        }
        save(self.store, &subject_key(&subject.id), &subject)?;
        Ok(subject.public())
    }

    /// Grants a role; see the WIT docs of `roles.grant`.
    pub fn grant(
        &self,
        admin_token: &str,
        subject_id: &str,
        role: &str,
    ) -> Result<Subject, AuthError> {
        self.change_role(admin_token, subject_id, role, true)
    }

    /// Revokes a role; see the WIT docs of `roles.revoke`.
    pub fn revoke(
        &self,
        admin_token: &str,
        subject_id: &str,
        role: &str,
    ) -> Result<Subject, AuthError> {
        self.change_role(admin_token, subject_id, role, false)
    }
}

fn claims_of(subject: &StoredSubject, token: &TokenClaims) -> Claims {
    Claims {
        subject_id: subject.id.clone(),
        kind: subject.kind.into(),
        display_name: subject.display_name.clone(),
        roles: subject.roles.clone(),
        session_id: token.sid.clone(),
        issued_at: token.iat,
        expires_at: token.exp,
    }
}

/// A `signing-keys` value with one fresh key, for operators setting up.
pub fn format_key(id: &str, secret: &[u8]) -> String {
    format!("{id}:{}", STANDARD.encode(secret))
}
