//! `zhongtai call`, the component developer's inner loop: state persists in
//! the data directory between invocations, and mistakes get clear messages.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value as Json, json};

const CITIZEN: &str = "11010519491231002X";

fn zhongtai(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running zhongtai")
}

fn call(data_dir: &Path, function: &str, args: Json) -> Json {
    let auth = support::guests()["zhongtai-auth"]
        .to_str()
        .unwrap()
        .to_owned();
    let output = zhongtai(
        data_dir,
        &[
            "call",
            &auth,
            "--package",
            "zhongtai:auth",
            function,
            &args.to_string(),
        ],
    );
    assert!(
        output.status.success(),
        "zhongtai call {function} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("zhongtai call prints JSON")
}

/// A data directory where a citizen registered through a file of the auth
/// component (run as `zhongtai:auth`).
fn registered_citizen() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("config.toml"),
        "[components.\"zhongtai:auth\"]\nargon2-memory-kib = 256\nargon2-iterations = 1\n",
    )
    .unwrap();
    let registered = call(
        data.path(),
        "authn.register",
        json!({"kind": "citizen", "id": CITIZEN, "display-name": "Li Lei", "password": "correct-horse-42"}),
    );
    assert_eq!(registered["ok"]["id"], CITIZEN);
    data
}

#[test]
fn a_component_file_uses_a_packages_state_only_when_told_which() {
    let data = registered_citizen();
    let auth = support::guests()["zhongtai-auth"]
        .to_str()
        .unwrap()
        .to_owned();
    let login = format!(r#"{{"id": "{CITIZEN}", "password": "correct-horse-42"}}"#);
    // Without --package the file runs on empty state: the citizen it
    // claims to share state with is not there, and it says why.
    let scratch = zhongtai(data.path(), &["call", &auth, "authn.login", &login]);
    let printed = String::from_utf8_lossy(&scratch.stdout);
    assert!(printed.contains("invalid-credentials"), "{printed}");
    let told = String::from_utf8_lossy(&scratch.stderr);
    assert!(
        told.contains("says it is zhongtai:auth: running it on empty, temporary state")
            && told.contains("--package zhongtai:auth"),
        "{told}"
    );
    // A file cannot be run as another package.
    let other = zhongtai(
        data.path(),
        &[
            "call",
            &auth,
            "--package",
            "zhongtai:payment",
            "authn.login",
            &login,
        ],
    );
    assert!(!other.status.success());
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("--package zhongtai:payment, but"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
}

#[test]
fn register_login_verify_across_invocations() {
    let data = registered_citizen();
    let session = call(
        data.path(),
        "authn.login",
        json!({"id": CITIZEN, "password": "correct-horse-42"}),
    );
    let token = session["ok"]["token"].as_str().expect("a token");
    let claims = call(data.path(), "authn.verify", json!({ "token": token }));
    assert_eq!(claims["ok"]["subject-id"], CITIZEN);
    assert!(
        data.path()
            .join("cache")
            .read_dir()
            .unwrap()
            .next()
            .is_some(),
        "compiled component cached"
    );

    // Each invocation recorded its call, signed at exit.
    let audit = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_zhongtai"))
            .arg("audit")
            .args(args)
            .arg("--dir")
            .arg(data.path().join("audit"))
            .output()
            .unwrap()
    };
    let shown = audit(&["show", "--json"]);
    let records: Vec<Json> = String::from_utf8_lossy(&shown.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let calls: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["function"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [("register", "ok"), ("login", "ok"), ("verify", "ok")]
    );
    assert!(records.iter().all(|r| r["department"] == "developer"
        && r["service"] == "cli"
        && r["package"] == "zhongtai:auth"));
    let verified = audit(&["verify"]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && report.contains("3 records, 3 checkpoints"),
        "{report}"
    );
}

#[test]
fn mistakes_exit_non_zero_with_a_message() {
    let data = tempfile::tempdir().unwrap();
    let auth = support::guests()["zhongtai-auth"]
        .to_str()
        .unwrap()
        .to_owned();
    let examples = support::root().join("examples");
    let examples = examples.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            // A remote registry with nobody trusted is refused before it is
            // asked for anything.
            &[
                "up",
                "--dir",
                examples,
                "--registry",
                "http://127.0.0.1:9",
                "--addr",
                "127.0.0.1:0",
            ],
            "name the publishers to trust with --trust KEY",
        ),
        (
            &[
                "call",
                &auth,
                "authn.verify",
                r#"{"token": "x"}"#,
                "--get",
                "/ok",
            ],
            "the result has nothing at /ok",
        ),
        (
            &["call", &auth, "authn.verify", r#"{"token": 42}"#],
            "argument `token`: expected string, found number 42",
        ),
        (
            &["call", &auth, "authn.verify", "{token"],
            "arguments are not valid JSON",
        ),
        (&["call", &auth, "verify"], "expected interface.function"),
        (
            &["call", "Cargo.toml", "authn.verify"],
            "not a WebAssembly component",
        ),
    ];
    for (args, expected) in cases {
        let output = zhongtai(data.path(), args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_component_from_the_registry_runs_only_when_its_publisher_is_trusted() {
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_zhongtai"))
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .env_remove("ZHONGTAI_REGISTRY")
            .output()
            .expect("running zhongtai")
    };
    assert!(run(&["keygen", "--out", "trusted.key"]).status.success());
    assert!(run(&["keygen", "--out", "other.key"]).status.success());
    let auth = support::guests()["zhongtai-auth"]
        .to_str()
        .unwrap()
        .to_owned();
    let publish = |version: &str, key: Option<&str>| {
        let mut args = vec![
            "publish",
            &auth,
            "--package",
            "zhongtai:auth",
            "--version",
            version,
            "--registry",
            "reg",
        ];
        if let Some(key) = key {
            args.extend(["--key", key]);
        }
        assert!(run(&args).status.success());
    };
    publish("1.0.0", Some("trusted.key"));
    let verify = |component: &str, trust: &str| {
        run(&[
            "call",
            component,
            "authn.verify",
            r#"{"token": "x"}"#,
            "--registry",
            "reg",
            "--trust",
            trust,
            "--data-dir",
            "data",
        ])
    };
    let trusted = verify("zhongtai:auth@^1", "trusted.pub");
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("malformed-token"));

    let untrusted = verify("zhongtai:auth@^1", "other.pub");
    assert!(!untrusted.status.success());
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("not a trusted publisher key"));

    publish("1.0.1", None);
    let unsigned = verify("zhongtai:auth@=1.0.1", "trusted.pub");
    assert!(!unsigned.status.success());
    assert!(String::from_utf8_lossy(&unsigned.stderr).contains("is not signed"));
}

fn inspect(component: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(["inspect", component])
        .env("RUST_LOG", "warn")
        .output()
        .expect("running zhongtai inspect")
}

#[test]
fn inspect_prints_full_wit_types() {
    let license = support::guests()["zhongtai-license"]
        .to_str()
        .unwrap()
        .to_owned();
    let output = inspect(&license);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let (header, wit) = printed.split_once('\n').unwrap();
    assert!(
        header.starts_with("package zhongtai:license  sha256:"),
        "{header}"
    );
    support::assert_golden("inspect-license.txt", wit);
    // Not a component: said so, with why.
    let cargo_toml = support::root().join("Cargo.toml");
    let output = inspect(cargo_toml.to_str().unwrap());
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("Cargo.toml is not a component"), "{said}");
    assert!(said.contains("wasm magic bytes"), "{said}");
}
