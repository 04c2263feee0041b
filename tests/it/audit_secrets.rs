//! Nothing secret can be derived from what is handed to auditors: a
//! password sent to `authn.login` cannot be recovered from the trail by
//! guessing (the digests are keyed by a secret the host keeps); the trail,
//! its keys and the state are owner-only; and for one case the operator can
//! disclose a request's key, with which an auditor recomputes that
//! request's digests and no other.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::platform::Platform;
use serde_json::json;
use zhongtai_audit::{Filter, Trail, hash_json};

const CITIZEN: &str = "11010519491231002X";
const PASSWORD: &str = "tea-and-silk-2026";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn zhongtai(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_password_cannot_be_guessed_from_the_trail_and_one_case_can_be_disclosed() {
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start(&support::root().join("examples"), data.path());
    platform.register_and_login("/public-security/citizens", CITIZEN, "Li Lei", PASSWORD);
    let audit = data.path().join("audit");
    drop(platform);

    // The attack: hash each guess the way arguments used to be hashed and
    // look for it in the trail.
    let records = Trail::read(&audit).unwrap().select(&Filter::default());
    let login = records
        .iter()
        .find(|r| r.entry.function.as_deref() == Some("login-from"))
        .expect("the login is recorded");
    let guesses = [
        "123456",
        "password",
        "tea-and-silk-2026",
        "correct-horse-42",
    ];
    for record in &records {
        for guess in guesses {
            for args in [
                json!({"id": CITIZEN, "password": guess}),
                json!({"id": CITIZEN, "password": guess, "client": "127.0.0.1"}),
                json!({"id": CITIZEN, "display-name": "Li Lei", "kind": "citizen", "password": guess}),
            ] {
                let plain = hash_json(&args);
                let digests = [&record.entry.args, &record.entry.result];
                assert!(
                    digests
                        .iter()
                        .all(|d| d.as_deref().is_none_or(|d| !d.contains(&plain))),
                    "record {} gives the password away",
                    record.seq
                );
            }
        }
    }
    let args_digest = login.entry.args.clone().unwrap();
    assert!(args_digest.starts_with("hmac-sha256:"), "{args_digest}");

    // Owner-only: the data directory, the trail directory, its files, the state.
    assert_eq!(mode(data.path()), 0o700);
    assert_eq!(mode(&audit), 0o700);
    assert_eq!(mode(&data.path().join("state.db")), 0o600);
    for file in ["trail.jsonl", "checkpoints.jsonl", "host.key", "digest.key"] {
        assert_eq!(mode(&audit.join(file)), 0o600, "{file}");
    }

    // An export for auditors leaves the digest secret behind.
    let export = tempfile::tempdir().unwrap();
    let out = export.path().join("for-auditor");
    zhongtai(&[
        "audit",
        "export",
        "--dir",
        audit.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(out.join("trail.jsonl").is_file());
    assert!(!out.join("digest.key").exists());

    // One case disclosed: the auditor, holding the arguments of that
    // request, recomputes its digest; another request's key does not match.
    let request = login.entry.request.clone().unwrap();
    let key = zhongtai(&[
        "audit",
        "disclose",
        "--dir",
        audit.to_str().unwrap(),
        "--request",
        &request,
    ]);
    let args = json!({"id": CITIZEN, "password": PASSWORD, "client": "127.0.0.1"}).to_string();
    assert_eq!(
        zhongtai(&["audit", "digest", "--key", &key, &args]),
        args_digest
    );
    let other = zhongtai(&[
        "audit",
        "disclose",
        "--dir",
        audit.to_str().unwrap(),
        "--request",
        "some-other-request",
    ]);
    assert_ne!(
        zhongtai(&["audit", "digest", "--key", &other, &args]),
        args_digest
    );
}
