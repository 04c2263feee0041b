//! `zhongtai:auth` — unified identity authentication.
//!
//! The domain logic ([`service::Auth`]) is plain Rust over two ports,
//! [`model::Storage`] and [`model::Environment`], and is unit-tested natively.
//! When built for `wasm32`, the `guest` module binds those ports to
//! `wasi:keyvalue`, `wasi:config`, the clock, `wasi:random` and the platform
//! context, and exports the `zhongtai:auth/authn` and `zhongtai:auth/roles`
//! interfaces.

pub mod model;
pub mod password;
pub mod service;
pub mod token;

#[cfg(target_arch = "wasm32")]
mod guest;

pub use model::{AuthError, Claims, Environment, Session, Storage, Subject, SubjectKind};
pub use service::Auth;

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    #[derive(Default)]
    struct Memory(RefCell<BTreeMap<String, Vec<u8>>>);

    impl Storage for Memory {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.borrow().get(key).cloned())
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
            self.0.borrow_mut().insert(key.into(), value.to_vec());
            Ok(())
        }
        fn delete(&self, key: &str) -> Result<(), String> {
            self.0.borrow_mut().remove(key);
            Ok(())
        }
    }

    struct Env {
        now: Cell<u64>,
        counter: Cell<u8>,
        config: RefCell<HashMap<&'static str, String>>,
        department: &'static str,
    }

    impl Env {
        fn new() -> Self {
            let config = HashMap::from([
                ("argon2-memory-kib", "64".to_owned()),
                ("argon2-iterations", "1".to_owned()),
                ("bootstrap-admins", "civil-affairs/1".to_owned()),
            ]);
            Self {
                now: Cell::new(1_700_000_000),
                counter: Cell::new(0),
                config: RefCell::new(config),
                department: "civil-affairs",
            }
        }
    }

    impl Environment for Env {
        fn now(&self) -> u64 {
            self.now.get()
        }
        fn random(&self, buf: &mut [u8]) {
            for b in buf {
                self.counter.set(self.counter.get().wrapping_add(1));
                *b = self.counter.get();
            }
        }
        fn config(&self, key: &str) -> Option<String> {
            self.config.borrow().get(key).cloned()
        }
        fn caller_department(&self) -> String {
            self.department.into()
        }
    }

    const CITIZEN: &str = "11010519491231002X";
    const PASSWORD: &str = "s3cret-password";

    #[test]
    fn register_login_verify_logout() {
        let (store, env) = (Memory::default(), Env::new());
        let auth = Auth::new(&store, &env);
        let subject = auth
            .register(
                SubjectKind::Citizen,
                "11010519491231002x",
                "Li Lei",
                PASSWORD,
            )
            .unwrap();
        assert_eq!(subject.id, CITIZEN);
        assert_eq!(
            auth.register(SubjectKind::Citizen, CITIZEN, "Li Lei", PASSWORD),
            Err(AuthError::AlreadyRegistered)
        );
        let session = auth.login(CITIZEN, PASSWORD).unwrap();
        let claims = auth.verify(&session.token).unwrap();
        assert_eq!(claims, session.claims);
        assert_eq!(claims.expires_at - claims.issued_at, 3600);
        auth.logout(&session.token).unwrap();
        assert_eq!(auth.verify(&session.token), Err(AuthError::Revoked));
        auth.logout(&session.token).unwrap();
    }

    #[test]
    fn bad_input_is_refused_precisely() {
        let (store, env) = (Memory::default(), Env::new());
        let auth = Auth::new(&store, &env);
        assert!(matches!(
            auth.register(SubjectKind::Citizen, "110105194912310021", "Li", PASSWORD),
            Err(AuthError::InvalidIdentifier(m)) if m.contains("check character")
        ));
        assert!(matches!(
            auth.register(SubjectKind::Citizen, CITIZEN, "Li", "short1"),
            Err(AuthError::WeakPassword(_))
        ));
        assert!(matches!(
            auth.register(SubjectKind::Citizen, CITIZEN, "", PASSWORD),
            Err(AuthError::InvalidInput(_))
        ));
        assert!(matches!(
            auth.register(SubjectKind::Official, "taxation/7", "Wang", PASSWORD),
            Err(AuthError::Forbidden(_))
        ));
        assert_eq!(
            auth.login(CITIZEN, PASSWORD),
            Err(AuthError::InvalidCredentials)
        );
        assert_eq!(auth.verify("nonsense"), Err(AuthError::MalformedToken));
        assert_eq!(auth.get_subject(CITIZEN), Err(AuthError::UnknownSubject));
    }

    #[test]
    fn tokens_expire() {
        let (store, env) = (Memory::default(), Env::new());
        let auth = Auth::new(&store, &env);
        auth.register(SubjectKind::Citizen, CITIZEN, "Li", PASSWORD)
            .unwrap();
        let session = auth.login(CITIZEN, PASSWORD).unwrap();
        env.now.set(env.now.get() + 3599);
        assert!(auth.verify(&session.token).is_ok());
        env.now.set(env.now.get() + 1);
        assert_eq!(auth.verify(&session.token), Err(AuthError::Expired));
    }

    #[test]
    fn repeated_failures_lock_the_subject_out() {
        let (store, env) = (Memory::default(), Env::new());
        let auth = Auth::new(&store, &env);
        auth.register(SubjectKind::Citizen, CITIZEN, "Li", PASSWORD)
            .unwrap();
        for _ in 0..4 {
            assert_eq!(
                auth.login(CITIZEN, "wrong-password-1"),
                Err(AuthError::InvalidCredentials)
            );
        }
        let until = env.now.get() + 900;
        assert_eq!(
            auth.login(CITIZEN, "wrong-password-1"),
            Err(AuthError::LockedOut(until))
        );
        assert_eq!(
            auth.login(CITIZEN, PASSWORD),
            Err(AuthError::LockedOut(until))
        );
        env.now.set(until);
        assert!(auth.login(CITIZEN, PASSWORD).is_ok());
    }

    #[test]
    fn key_rotation_keeps_listed_keys_only() {
        let (store, env) = (Memory::default(), Env::new());
        let auth = Auth::new(&store, &env);
        let old = service::format_key("old", &[1; 32]);
        let new = service::format_key("new", &[2; 32]);
        env.config.borrow_mut().insert("signing-keys", old.clone());
        auth.register(SubjectKind::Citizen, CITIZEN, "Li", PASSWORD)
            .unwrap();
        let token = auth.login(CITIZEN, PASSWORD).unwrap().token;
        env.config
            .borrow_mut()
            .insert("signing-keys", format!("{new},{old}"));
        assert!(auth.verify(&token).is_ok());
        assert!(
            auth.login(CITIZEN, PASSWORD)
                .unwrap()
                .token
                .starts_with("zt1.new.")
        );
        env.config.borrow_mut().insert("signing-keys", new);
        assert_eq!(auth.verify(&token), Err(AuthError::BadSignature));
    }

    #[test]
    fn only_admin_officials_change_roles() {
        let (store, env) = (Memory::default(), Env::new());
        let auth = Auth::new(&store, &env);
        let admin = auth
            .register(SubjectKind::Official, "civil-affairs/1", "Zhao", PASSWORD)
            .unwrap();
        assert_eq!(admin.roles, ["admin"]);
        auth.register(SubjectKind::Official, "civil-affairs/2", "Qian", PASSWORD)
            .unwrap();
        auth.register(SubjectKind::Citizen, CITIZEN, "Li", PASSWORD)
            .unwrap();
        let admin_token = auth.login("civil-affairs/1", PASSWORD).unwrap().token;
        let clerk_token = auth.login("civil-affairs/2", PASSWORD).unwrap().token;
        let citizen_token = auth.login(CITIZEN, PASSWORD).unwrap().token;

        let granted = auth
            .grant(&admin_token, "civil-affairs/2", "registrar")
            .unwrap();
        assert_eq!(granted.roles, ["registrar"]);
        // Roles show in verify at once, without logging in again.
        assert_eq!(auth.verify(&clerk_token).unwrap().roles, ["registrar"]);
        assert!(matches!(
            auth.grant(&clerk_token, CITIZEN, "admin"),
            Err(AuthError::Forbidden(_))
        ));
        assert!(matches!(
            auth.grant(&citizen_token, CITIZEN, "admin"),
            Err(AuthError::Forbidden(_))
        ));
        assert!(matches!(
            auth.grant(&admin_token, CITIZEN, "Bad Role"),
            Err(AuthError::InvalidInput(_))
        ));
        assert_eq!(
            auth.revoke(&admin_token, "civil-affairs/2", "registrar")
                .unwrap()
                .roles,
            Vec::<String>::new()
        );
    }
}
