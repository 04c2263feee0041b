//! Typed request bodies and each department's OpenAPI document on a
//! running `zhongtai up`: the document describes what the host does, and
//! `schemathesis` (from PyPI) finds no 5xx and no response the document
//! does not describe.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value as Json, json};

use crate::support;
use crate::support::platform::Platform;

const CITIZEN: &str = "11010519491231002X";
const PASSWORD: &str = "tea-and-silk-2026";

fn document(platform: &Platform, department: &str) -> Json {
    let (status, document) =
        platform.send("GET", &format!("/{department}/openapi.json"), None, None);
    assert_eq!(status, 200, "{document}");
    document
}

#[test]
fn each_department_describes_its_services_and_bodies_are_checked_against_their_types() {
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start(&support::root().join("examples"), data.path());

    let security = document(&platform, "public-security");
    assert_eq!(security["openapi"], "3.1.0");
    let register = &security["paths"]["/public-security/citizens"]["post"];
    assert_eq!(register["operationId"], "register-citizen");
    assert_eq!(register["security"], json!([]));
    assert_eq!(
        register["requestBody"]["content"]["application/json"]["schema"],
        json!({
            "title": "registration",
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "password": {"type": "string"},
            },
            "required": ["id", "name", "password"],
            "additionalProperties": false,
        })
    );
    let responses = register["responses"].as_object().unwrap();
    for status in ["201", "400", "409", "422", "500", "503", "504"] {
        assert!(responses.contains_key(status), "{status}: {responses:?}");
    }
    let whoami = &security["paths"]["/public-security/whoami"]["get"];
    assert_eq!(whoami["security"], json!([{"bearer": []}]));
    assert!(whoami["responses"]["401"].is_object());
    assert!(whoami.get("requestBody").is_none());
    let verify = &security["paths"]["/public-security/licenses/{number}"]["get"];
    assert_eq!(verify["parameters"][0]["name"], "number");
    assert_eq!(verify["parameters"][0]["in"], "path");
    for status in ["404", "409", "410", "422"] {
        assert!(verify["responses"][status].is_object(), "{status}");
    }
    let taxation = document(&platform, "taxation");
    let arrears = &taxation["paths"]["/taxation/tax-bills/{bill}/arrears"]["post"];
    let schema = &arrears["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(schema["required"], json!(["payer", "due-date"]));
    assert_eq!(
        schema["properties"]["severity"],
        json!({"anyOf": [{"type": "null"}, {"type": "string"}]})
    );

    // Bodies are checked against their type before any step runs.
    let refused = [
        (
            json!({"id": 1, "name": "Li", "password": PASSWORD}),
            "`body.id`: expected string, found number 1",
        ),
        (
            json!({"id": CITIZEN, "name": "Li"}),
            "`body.password`: expected string, found nothing (the field is missing)",
        ),
        (
            json!({"id": CITIZEN, "name": "Li", "password": PASSWORD, "kind": "official"}),
            "`body.kind`: expected no field by this name (the fields are: id, name, password), found string \"official\"",
        ),
        (
            json!(["Li"]),
            "`body`: expected record registration, found array of 1 elements",
        ),
    ];
    for (body, message) in refused {
        let (status, answer) = platform.send("POST", "/public-security/citizens", None, Some(body));
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid-body");
        assert_eq!(answer["error"]["message"], message);
    }
    let (status, answer) = platform.send("POST", "/public-security/citizens", None, None);
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["message"],
        "the service takes a body of type record registration, and the request has none"
    );
    // None of them registered anyone: the first real one does.
    let (status, answer) = platform.send(
        "POST",
        "/public-security/citizens",
        None,
        Some(json!({"id": CITIZEN, "name": "Li Lei", "password": PASSWORD})),
    );
    assert_eq!(status, 201, "{answer}");

    // A method the path does not take: 405 with Allow.
    let response = platform
        .agent
        .delete(format!("{}/public-security/whoami", platform.url))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET");
}

/// The `schemathesis` to run: `ZHONGTAI_SCHEMATHESIS`, else one on the
/// `PATH`, else one installed from PyPI into `target/schemathesis` the
/// first time. `None` when none can be had.
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ZHONGTAI_SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    let on_path = Command::new("schemathesis").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return Some(PathBuf::from("schemathesis"));
    }
    let venv = support::root().join("target/schemathesis");
    let installed = venv.join("bin/schemathesis");
    if installed.is_file() {
        return Some(installed);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "schemathesis==4.32.5"])
            .status()
            .is_ok_and(|s| s.success());
    made.then_some(installed)
}

fn run_schemathesis(program: &Path, url: &str, token: &str, dir: &Path) -> (bool, String) {
    let output = Command::new(program)
        .current_dir(dir)
        .args(["run", url, "--max-examples", "40", "--seed", "2026"])
        // What the schema cannot say — an identity number's check digit, a
        // date in the future — a capability refuses with 400 or 422; such
        // a refusal of schema-valid data is correct here.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .env("NO_COLOR", "1")
        .output()
        .expect("running schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_response() {
    let Some(program) = schemathesis() else {
        assert!(
            std::env::var_os("ZHONGTAI_REQUIRE_SCHEMATHESIS").is_none(),
            "schemathesis is required here but could not be found or installed (pip install schemathesis)"
        );
        eprintln!("skipped: schemathesis could not be found or installed from PyPI");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start(&support::root().join("examples"), data.path());
    let token =
        platform.register_and_login("/public-security/citizens", CITIZEN, "Li Lei", PASSWORD);
    for department in ["public-security", "market-regulation", "taxation"] {
        let url = format!("{}/{department}/openapi.json", platform.url);
        let (passed, output) = run_schemathesis(&program, &url, &token, data.path());
        assert!(passed, "{department}:\n{output}");
        assert!(output.contains("generated"), "{output}");
    }
}
