//! The auth component through the host runtime: every function's success
//! path and every error case a caller can reach.

use crate::support;

use crate::support::{Capability, runtime, runtime_in};
use serde_json::{Value as Json, json};
use zhongtai_runtime::{HostConfig, Runtime, RuntimeLimits};

const CITIZEN: &str = "11010519491231002X";
const COMPANY: &str = "91350100M000100Y43";
const ADMIN: &str = "civil-affairs/1";
const CLERK: &str = "civil-affairs/2";
const PASSWORD: &str = "s3cret-password";
const KEY_A: &str = "a:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
const KEY_B: &str = "b:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

fn config(extra: &[(&str, &str)]) -> HostConfig {
    let mut config = HostConfig::default();
    // Cheap hashing keeps the suite fast; the defaults are tested natively.
    for (key, value) in [
        ("argon2-memory-kib", "256"),
        ("argon2-iterations", "1"),
        ("bootstrap-admins", ADMIN),
        ("signing-keys", KEY_A),
    ]
    .iter()
    .chain(extra)
    {
        config.set("zhongtai:auth", key, value);
    }
    config
}

struct Auth(Capability);

impl Auth {
    fn new(runtime: Runtime) -> Self {
        Self(Capability::load(runtime, "zhongtai-auth"))
    }

    fn call_as(&self, department: &str, function: &str, args: Json) -> Json {
        self.0.call_as(department, function, args)
    }

    fn call(&self, function: &str, args: Json) -> Json {
        self.call_as("civil-affairs", function, args)
    }

    fn register(&self, kind: &str, id: &str) -> Json {
        self.call(
            "authn.register",
            json!({"kind": kind, "id": id, "display-name": "Someone", "password": PASSWORD}),
        )
    }

    fn login(&self, id: &str, password: &str) -> Json {
        self.call("authn.login", json!({"id": id, "password": password}))
    }

    fn token(&self, id: &str) -> String {
        self.login(id, PASSWORD)["ok"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn ok(value: &Json) -> &Json {
    value
        .get("ok")
        .unwrap_or_else(|| panic!("expected ok, got {value}"))
}

#[test]
fn register_login_verify_logout() {
    let (runtime, _dir) = runtime(RuntimeLimits::default(), config(&[]));
    let auth = Auth::new(runtime);
    let subject = auth.register("citizen", "11010519491231002x");
    assert_eq!(ok(&subject)["id"], CITIZEN);
    assert_eq!(ok(&subject)["kind"], "citizen");
    assert_eq!(
        ok(&auth.register("legal-entity", COMPANY))["kind"],
        "legal-entity"
    );

    let session = auth.login(CITIZEN, PASSWORD);
    let token = ok(&session)["token"].as_str().unwrap();
    assert!(token.starts_with("zt1.a."), "{token}");
    let claims = auth.call("authn.verify", json!({ "token": token }));
    assert_eq!(ok(&claims), &ok(&session)["claims"]);
    assert_eq!(ok(&claims)["subject-id"], CITIZEN);

    let subject = auth.call("authn.get-subject", json!({ "id": CITIZEN }));
    assert_eq!(ok(&subject)["display-name"], "Someone");

    assert_eq!(
        auth.call("authn.logout", json!({ "token": token })),
        json!({"ok": null})
    );
    assert_eq!(
        auth.call("authn.verify", json!({ "token": token })),
        json!({"err": "revoked"})
    );
}

#[test]
fn registration_errors() {
    let (runtime, _dir) = runtime(RuntimeLimits::default(), config(&[]));
    let auth = Auth::new(runtime);
    let bad_check = auth.register("citizen", "110105194912310021");
    assert_eq!(
        bad_check,
        json!({"err": {"invalid-identifier": "resident identity number: check character is '1', expected 'X'"}})
    );
    let bad_code = auth.register("legal-entity", "91350100M000100Y44");
    assert!(
        bad_code["err"]["invalid-identifier"].is_string(),
        "{bad_code}"
    );
    let weak = auth.call(
        "authn.register",
        json!({"kind": "citizen", "id": CITIZEN, "display-name": "Li", "password": "password"}),
    );
    assert_eq!(
        weak,
        json!({"err": {"weak-password": "at least 10 characters are required"}})
    );
    let no_name = auth.call(
        "authn.register",
        json!({"kind": "citizen", "id": CITIZEN, "display-name": " ", "password": PASSWORD}),
    );
    assert!(no_name["err"]["invalid-input"].is_string(), "{no_name}");
    ok(&auth.register("citizen", CITIZEN));
    assert_eq!(
        auth.register("citizen", CITIZEN),
        json!({"err": "already-registered"})
    );
    let foreign_official = auth.call_as(
        "taxation",
        "authn.register",
        json!({"kind": "official", "id": ADMIN, "display-name": "Zhao", "password": PASSWORD}),
    );
    assert!(
        foreign_official["err"]["forbidden"].is_string(),
        "{foreign_official}"
    );
    assert_eq!(
        auth.call("authn.get-subject", json!({ "id": COMPANY })),
        json!({"err": "unknown-subject"})
    );
}

#[test]
fn login_errors_and_lockout() {
    let (runtime, _dir) = runtime(
        RuntimeLimits::default(),
        config(&[("lockout-threshold", "3"), ("lockout-seconds", "600")]),
    );
    let auth = Auth::new(runtime);
    ok(&auth.register("citizen", CITIZEN));
    assert_eq!(
        auth.login(COMPANY, PASSWORD),
        json!({"err": "invalid-credentials"})
    );
    assert_eq!(
        auth.login(CITIZEN, "wrong-password-1"),
        json!({"err": "invalid-credentials"})
    );
    assert_eq!(
        auth.login(CITIZEN, "wrong-password-1"),
        json!({"err": "invalid-credentials"})
    );
    let locked = auth.login(CITIZEN, "wrong-password-1");
    let until = locked["err"]["locked-out"]
        .as_u64()
        .unwrap_or_else(|| panic!("{locked}"));
    // Even the right password is refused while locked.
    assert_eq!(
        auth.login(CITIZEN, PASSWORD),
        json!({"err": {"locked-out": until}})
    );
}

#[test]
fn verify_errors() {
    let (runtime, _dir) = runtime(RuntimeLimits::default(), config(&[]));
    let auth = Auth::new(runtime);
    ok(&auth.register("citizen", CITIZEN));
    let token = auth.token(CITIZEN);
    assert_eq!(
        auth.call("authn.verify", json!({"token": "Bearer abc"})),
        json!({"err": "malformed-token"})
    );
    // Alter the signature's first character: six bits of signature, unlike
    // the last character, part of which is padding.
    let signature_at = token.rfind('.').unwrap() + 1;
    let mut forged = token.clone();
    let altered = if token[signature_at..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    forged.replace_range(signature_at..signature_at + 1, altered);
    assert_eq!(
        auth.call("authn.verify", json!({ "token": forged })),
        json!({"err": "bad-signature"})
    );

    let (expiring, _expiring_dir) = support::runtime(
        RuntimeLimits::default(),
        config(&[("token-ttl-seconds", "0")]),
    );
    let expiring = Auth::new(expiring);
    ok(&expiring.register("citizen", CITIZEN));
    let token = expiring.token(CITIZEN);
    assert_eq!(
        expiring.call("authn.verify", json!({ "token": token })),
        json!({"err": "expired"})
    );
}

#[test]
fn tokens_survive_a_restart_and_die_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let token = {
        let auth = Auth::new(runtime_in(
            dir.path(),
            RuntimeLimits::default(),
            config(&[]),
        ));
        ok(&auth.register("citizen", CITIZEN));
        auth.token(CITIZEN)
    };
    // Restarted with the same key: still valid.
    let auth = Auth::new(runtime_in(
        dir.path(),
        RuntimeLimits::default(),
        config(&[]),
    ));
    ok(&auth.call("authn.verify", json!({ "token": token })));
    drop(auth);
    // Rotated, old key still listed: valid; new tokens use the new key.
    let both = format!("{KEY_B},{KEY_A}");
    let auth = Auth::new(runtime_in(
        dir.path(),
        RuntimeLimits::default(),
        config(&[("signing-keys", &both)]),
    ));
    ok(&auth.call("authn.verify", json!({ "token": token })));
    assert!(auth.token(CITIZEN).starts_with("zt1.b."));
    drop(auth);
    // Old key removed: refused.
    let auth = Auth::new(runtime_in(
        dir.path(),
        RuntimeLimits::default(),
        config(&[("signing-keys", KEY_B)]),
    ));
    assert_eq!(
        auth.call("authn.verify", json!({ "token": token })),
        json!({"err": "bad-signature"})
    );
}

#[test]
fn only_admin_officials_grant_and_revoke_roles() {
    let (runtime, _dir) = runtime(RuntimeLimits::default(), config(&[]));
    let auth = Auth::new(runtime);
    assert_eq!(
        ok(&auth.register("official", ADMIN))["roles"],
        json!(["admin"])
    );
    ok(&auth.register("official", CLERK));
    ok(&auth.register("citizen", CITIZEN));
    let admin = auth.token(ADMIN);
    let clerk = auth.token(CLERK);

    let granted = auth.call(
        "roles.grant",
        json!({"admin-token": admin, "subject-id": CLERK, "role": "registrar"}),
    );
    assert_eq!(ok(&granted)["roles"], json!(["registrar"]));
    assert_eq!(
        ok(&auth.call("authn.verify", json!({ "token": clerk })))["roles"],
        json!(["registrar"])
    );

    let refused = auth.call(
        "roles.grant",
        json!({"admin-token": clerk, "subject-id": CITIZEN, "role": "admin"}),
    );
    assert!(refused["err"]["forbidden"].is_string(), "{refused}");
    let bad_role = auth.call(
        "roles.grant",
        json!({"admin-token": admin, "subject-id": CITIZEN, "role": "Head Of"}),
    );
    assert!(bad_role["err"]["invalid-input"].is_string(), "{bad_role}");
    let unknown = auth.call(
        "roles.grant",
        json!({"admin-token": admin, "subject-id": COMPANY, "role": "x"}),
    );
    assert_eq!(unknown, json!({"err": "unknown-subject"}));

    let revoked = auth.call(
        "roles.revoke",
        json!({"admin-token": admin, "subject-id": CLERK, "role": "registrar"}),
    );
    assert_eq!(ok(&revoked)["roles"], json!([]));
    let refused = auth.call(
        "roles.revoke",
        json!({"admin-token": clerk, "subject-id": ADMIN, "role": "admin"}),
    );
    assert!(refused["err"]["forbidden"].is_string(), "{refused}");
}

#[test]
fn a_misconfigured_key_is_reported_as_other() {
    let (runtime, _dir) = runtime(
        RuntimeLimits::default(),
        config(&[("signing-keys", "k:c2hvcnQ=")]),
    );
    let auth = Auth::new(runtime);
    ok(&auth.register("citizen", CITIZEN));
    let refused = auth.login(CITIZEN, PASSWORD);
    let message = refused["err"]["other"]
        .as_str()
        .unwrap_or_else(|| panic!("{refused}"));
    assert!(message.contains("at least 32 are needed"), "{message}");
}

#[test]
fn a_generated_key_is_used_when_none_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let mut unkeyed = HostConfig::default();
    unkeyed.set("zhongtai:auth", "argon2-memory-kib", "256");
    unkeyed.set("zhongtai:auth", "argon2-iterations", "1");
    let token = {
        let auth = Auth::new(runtime_in(
            dir.path(),
            RuntimeLimits::default(),
            unkeyed.clone(),
        ));
        ok(&auth.register("citizen", CITIZEN));
        auth.token(CITIZEN)
    };
    assert!(token.starts_with("zt1.local."), "{token}");
    let auth = Auth::new(runtime_in(dir.path(), RuntimeLimits::default(), unkeyed));
    ok(&auth.call("authn.verify", json!({ "token": token })));
}
