//! `zhongtai:auth` — unified identity authentication.
//!
//! The domain logic ([`service::Auth`]) is plain Rust over the ports of
//! `zhongtai-guest` and is unit-tested natively. When built for `wasm32`, the
//! `guest` module exports the `zhongtai:auth/authn` and `zhongtai:auth/roles`
//! interfaces on the platform's imports.

pub mod model;
pub mod password;
pub mod service;
pub mod token;

#[cfg(target_arch = "wasm32")]
mod guest;

pub use model::{AuthError, Claims, Session, Subject, SubjectKind};
pub use service::Auth;

#[cfg(test)]
mod tests {
    use zhongtai_guest::testing::{FakePlatform, MemoryStore};

    use super::*;

    type Memory = MemoryStore;

    struct Env;

    impl Env {
        #[allow(clippy::new_ret_no_self)]
        fn new() -> FakePlatform {
            let platform = FakePlatform::new("civil-affairs");
            platform.set_config("argon2-memory-kib", "64");
            platform.set_config("argon2-iterations", "1");
            platform.set_config("bootstrap-admins", "civil-affairs/1");
            platform
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
    fn a_stranger_locks_out_only_their_own_client() {
        let (store, env) = (Memory::default(), Env::new());
        env.set_config("lockout-id-threshold", "8");
        let auth = Auth::new(&store, &env);
        auth.register(SubjectKind::Citizen, CITIZEN, "Li", PASSWORD)
            .unwrap();
        let (stranger, owner) = ("203.0.113.9", "198.51.100.7");
        for _ in 0..4 {
            assert_eq!(
                auth.login_from(CITIZEN, "wrong-password-1", stranger),
                Err(AuthError::InvalidCredentials)
            );
        }
        let until = env.now.get() + 900;
        assert_eq!(
            auth.login_from(CITIZEN, "wrong-password-1", stranger),
            Err(AuthError::LockedOut(until))
        );
        assert_eq!(
            auth.login_from(CITIZEN, PASSWORD, stranger),
            Err(AuthError::LockedOut(until)),
            "the stranger's client stays locked, even with the right password"
        );
        assert!(
            auth.login_from(CITIZEN, PASSWORD, owner).is_ok(),
            "the owner, from their own client, is not locked out"
        );
        // Guessing spread over many clients hits the per-id limit: 5 from
        // the stranger and 3 more from others make 8.
        for n in 0..2 {
            assert_eq!(
                auth.login_from(CITIZEN, "wrong-password-1", &format!("192.0.2.{n}")),
                Err(AuthError::InvalidCredentials)
            );
        }
        assert_eq!(
            auth.login_from(CITIZEN, "wrong-password-1", "192.0.2.2"),
            Err(AuthError::LockedOut(until))
        );
        assert_eq!(
            auth.login_from(CITIZEN, PASSWORD, owner),
            Err(AuthError::LockedOut(until)),
            "past the per-id limit the id is locked for everyone"
        );
        // A client string is only a key: junk in it changes nothing else.
        env.now.set(until);
        assert!(auth.login_from(CITIZEN, PASSWORD, "\u{0}\n../../x").is_ok());
    }

    #[test]
    fn key_rotation_keeps_listed_keys_only() {
        let (store, env) = (Memory::default(), Env::new());
        let auth = Auth::new(&store, &env);
        let old = service::format_key("old", &[1; 32]);
        let new = service::format_key("new", &[2; 32]);
        env.set_config("signing-keys", &old);
        auth.register(SubjectKind::Citizen, CITIZEN, "Li", PASSWORD)
            .unwrap();
        let token = auth.login(CITIZEN, PASSWORD).unwrap().token;
        env.set_config("signing-keys", &format!("{new},{old}"));
        assert!(auth.verify(&token).is_ok());
        assert!(
            auth.login(CITIZEN, PASSWORD)
                .unwrap()
                .token
                .starts_with("zt1.new.")
        );
        env.set_config("signing-keys", &new);
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
