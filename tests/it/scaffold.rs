//! `zhongtai new`: a capability and a department, from an empty directory
//! through build, publish, call, deploy and one HTTP request.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use crate::support;
use crate::support::platform::Platform;
use crate::support::succeeded;

const CITIZEN: &str = "11010519491231002X";

fn zhongtai(dir: &Path, args: &[&str]) -> Output {
    support::zhongtai_in(Some(dir), args)
}

/// The example departments and their policy, copied into `departments`.
fn copy_examples(departments: &Path) {
    for entry in ["market-regulation", "public-security", "taxation"] {
        std::fs::create_dir_all(departments.join(entry)).unwrap();
        std::fs::copy(
            support::root()
                .join("examples")
                .join(entry)
                .join("zhongtai.toml"),
            departments.join(entry).join("zhongtai.toml"),
        )
        .unwrap();
    }
    std::fs::copy(
        support::root().join("examples/policy.toml"),
        departments.join("policy.toml"),
    )
    .unwrap();
}

#[test]
fn a_new_capability_and_department_answer_over_http() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    succeeded(zhongtai(
        dir,
        &["new", "capability", "greeter", "--namespace", "civic"],
    ));
    for file in ["Cargo.toml", "wit/world.wit", "src/lib.rs"] {
        assert!(dir.join("greeter").join(file).is_file(), "{file}");
    }
    let again = zhongtai(
        dir,
        &["new", "capability", "greeter", "--namespace", "civic"],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let bad = zhongtai(dir, &["new", "capability", "Greeter"]);
    assert!(!bad.status.success());

    // Its native test passes as written.
    let tested = Command::new(env!("CARGO"))
        .args(["test", "--quiet", "--manifest-path"])
        .arg(dir.join("greeter/Cargo.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success() && said.contains("1 passed"),
        "{said}{}",
        String::from_utf8_lossy(&tested.stderr)
    );

    // Built for wasm32-wasip2, called, published signed.
    let built = succeeded(zhongtai(dir, &["build", "greeter"]));
    let wasm = built.trim().strip_prefix("greeter: ").unwrap().to_owned();
    let data = tempfile::tempdir().unwrap();
    let called = succeeded(zhongtai(
        dir,
        &[
            "call",
            &wasm,
            "api.hello",
            r#"{"name": "Li Lei"}"#,
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
    ));
    assert!(called.contains("Hello, Li Lei!"), "{called}");
    let key = dir.join("publisher.key");
    succeeded(zhongtai(dir, &["keygen", "--out", key.to_str().unwrap()]));
    let registry = data.path().join("registry");
    succeeded(zhongtai(
        dir,
        &[
            "publish",
            &wasm,
            "--package",
            "civic:greeter",
            "--version",
            "0.1.0",
            "--key",
            key.to_str().unwrap(),
            "--registry",
            registry.to_str().unwrap(),
        ],
    ));

    // A department that calls it, beside the examples, its grants added
    // to their policy.
    let departments = dir.join("departments");
    copy_examples(&departments);
    let made = succeeded(zhongtai(
        dir,
        &[
            "new",
            "department",
            "civic-affairs",
            "--uses",
            "civic:greeter",
            "--dir",
            departments.to_str().unwrap(),
        ],
    ));
    assert!(made.contains("Added the grants of civic-affairs"), "{made}");
    let policy = std::fs::read_to_string(departments.join("policy.toml")).unwrap();
    assert!(policy.contains("[departments.civic-affairs]\n\"zhongtai:auth\" = [\"authn.verify\"]\n\"civic:greeter\" = [\"api.hello\"]"), "{policy}");

    let platform = Platform::start(&departments, data.path());
    let token = platform.register_and_login(
        "/public-security/citizens",
        CITIZEN,
        "Li Lei",
        "tea-and-silk-2026",
    );
    let (status, answer) = platform.send("GET", "/civic-affairs/hello", Some(&token), None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"greeting": "Hello, Li Lei!", "subject": CITIZEN})
    );
    let (status, _) = platform.send("GET", "/civic-affairs/hello", None, None);
    assert_eq!(status, 401);
}

#[test]
fn up_says_when_a_built_capability_differs_from_the_registrys_version() {
    let data = tempfile::tempdir().unwrap();
    let key = data.path().join("publisher.key");
    succeeded(zhongtai(
        data.path(),
        &["keygen", "--out", key.to_str().unwrap()],
    ));
    // The registry holds zhongtai:auth@1.1.0 with other bytes than the
    // last build: the same component with a custom section appended.
    let mut bytes = support::guest_bytes("zhongtai-auth");
    bytes.extend_from_slice(&[0x00, 0x06, 0x04, b't', b'e', b's', b't', b'x']);
    let changed = data.path().join("auth-changed.wasm");
    std::fs::write(&changed, &bytes).unwrap();
    let registry = data.path().join("registry");
    succeeded(zhongtai(
        data.path(),
        &[
            "publish",
            changed.to_str().unwrap(),
            "--package",
            "zhongtai:auth",
            "--version",
            "1.1.0",
            "--key",
            key.to_str().unwrap(),
            "--registry",
            registry.to_str().unwrap(),
        ],
    ));
    let platform = Platform::start(&support::root().join("examples"), data.path());
    let warning = platform
        .log
        .iter()
        .find(|line| line.starts_with("Warning: zhongtai:auth built from"))
        .unwrap_or_else(|| panic!("{:#?}", platform.log));
    assert!(
        warning.contains("departments get the registry's"),
        "{warning}"
    );
    assert!(warning.contains("@1.1.1"), "{warning}");
    assert!(
        !platform
            .log
            .iter()
            .any(|l| l.starts_with("Warning: zhongtai:license")),
        "{:#?}",
        platform.log
    );
    // What is served is the registry's version, which still works.
    let (status, _) = platform.send(
        "GET",
        "/public-security/whoami",
        Some("not-a-session"),
        None,
    );
    assert_eq!(status, 401);
}

#[test]
fn up_watch_redeploys_a_changed_manifest_and_keeps_the_running_one_when_it_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let departments = dir.path().join("departments");
    copy_examples(&departments);
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start_with(&departments, data.path(), &["--watch"]);
    let taxation = departments.join("taxation/zhongtai.toml");
    let text = std::fs::read_to_string(&taxation).unwrap();

    // A change: redeployed, a new revision in service.
    std::fs::write(
        &taxation,
        text.replace("Tax payment and arrears", "Tax payment, arrears"),
    )
    .unwrap();
    let said = platform.wait_for_output("Deployed taxation (3 services, revision 4)");
    assert!(said.contains("taxation/zhongtai.toml"), "{said}");
    let (status, departments_now) = platform.admin(
        "GET",
        "/admin/v1/departments",
        Some(crate::support::platform::OPERATOR_TOKEN),
        None,
    );
    assert_eq!(status, 200);
    assert!(
        departments_now.contains("\"revision\":4"),
        "{departments_now}"
    );

    // A broken one: the error with its place, and revision 4 stays.
    std::fs::write(
        &taxation,
        text.replacen("method = \"POST\"", "method = \"FETCH\"", 1),
    )
    .unwrap();
    platform.wait_for_output("was not deployed; what is running stays");
    let place = platform.wait_for_output("services[0].method");
    assert!(
        place.contains("zhongtai.toml:") && place.contains("\"FETCH\" is not one of"),
        "{place}"
    );
    let bill = json!({"bill": "TB-1", "payer": CITIZEN, "amount": 100, "purpose": "test"});
    let (status, _) = platform.send("POST", "/taxation/tax-bills", None, Some(bill));
    assert_eq!(status, 401, "the running deployment still answers");

    // A policy that no longer grants taxation its credit call is taken;
    // a deploy asking for it is then refused.
    let policy = std::fs::read_to_string(departments.join("policy.toml")).unwrap();
    std::fs::write(
        departments.join("policy.toml"),
        policy.replace("\"zhongtai:credit\" = [\"records.add-event\"]\n", ""),
    )
    .unwrap();
    platform.wait_for_output("Took the changed policy");
    std::fs::write(&taxation, text).unwrap();
    platform.wait_for_output("taxation/zhongtai.toml was not deployed");
}
