//! The platform end to end: `zhongtai up` on a loopback port serving the
//! example departments, driven over HTTP — the business license flow and
//! every refusal a department relies on.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value as Json, json};

struct Platform {
    child: Child,
    url: String,
    agent: ureq::Agent,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Platform {
    fn start(departments: &Path, data: &Path) -> Self {
        std::fs::write(
            data.join("config.toml"),
            "[components.\"zhongtai:auth\"]\nargon2-memory-kib = 256\nargon2-iterations = 1\n",
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
            .args(["up", "--addr", "127.0.0.1:0", "--dir"])
            .arg(departments)
            .arg("--data-dir")
            .arg(data)
            .arg("--registry")
            .arg(data.join("registry"))
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting zhongtai up");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("zhongtai up exited before serving")
                .unwrap();
            if line.contains("serving") && line.contains("http://") {
                break line[line.find("http://").unwrap()..].trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Self { child, url, agent }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Json>,
    ) -> (u16, Json) {
        let url = format!("{}{path}", self.url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            (_, body) => {
                let mut request = self.agent.post(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body.map(|b| b.to_string()).unwrap_or_default())
            }
        }
        .expect("request");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::String(text)),
        )
    }
}

const COMPANY: &str = "91350100M000100Y43";
const CITIZEN: &str = "11010519491231002X";
const PASSWORD: &str = "tea-and-silk-2026";

fn departments_with_extra() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for department in ["market-regulation", "public-security", "taxation"] {
        let target = dir.path().join(department);
        std::fs::create_dir_all(&target).unwrap();
        let source = support::root()
            .join("examples")
            .join(department)
            .join("zhongtai.toml");
        std::fs::copy(source, target.join("zhongtai.toml")).unwrap();
    }
    // A department that calls a function its manifest does not grant.
    let nosy = dir.path().join("nosy");
    std::fs::create_dir_all(&nosy).unwrap();
    std::fs::write(
        nosy.join("zhongtai.toml"),
        r#"manifest-version = 1
department = "nosy"

[components]
auth = { package = "zhongtai:auth", version = "^1", grants = ["authn.verify"] }

[[services]]
name = "peek"
method = "GET"
path = "/subjects/{id}"

[[services.steps]]
name = "subject"
call = "auth.authn.get-subject"
args = { id = "request.path.id" }

[services.response]
body = "steps.subject"
"#,
    )
    .unwrap();
    dir
}

#[test]
fn departments_serve_their_services_and_refuse_what_they_must() {
    support::guests();
    let departments = departments_with_extra();
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start(departments.path(), data.path());

    let (status, ready) = platform.send("GET", "/readyz", None, None);
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        ready["departments"],
        json!(["market-regulation", "nosy", "public-security", "taxation"])
    );

    // Identities.
    let register = |path: &str, id: &str, name: &str| {
        platform.send(
            "POST",
            path,
            None,
            Some(json!({"id": id, "name": name, "password": PASSWORD})),
        )
    };
    assert_eq!(
        register(
            "/public-security/legal-entities",
            COMPANY,
            "Fuzhou Example Trading Co., Ltd."
        )
        .0,
        201
    );
    assert_eq!(
        register("/public-security/citizens", CITIZEN, "Li Lei").0,
        201
    );
    let (status, duplicate) = register("/public-security/citizens", CITIZEN, "Li Lei");
    assert_eq!(
        (status, duplicate["error"]["code"].as_str()),
        (409, Some("already-registered"))
    );
    let login = |id: &str| {
        let (status, session) = platform.send(
            "POST",
            "/public-security/sessions",
            None,
            Some(json!({"id": id, "password": PASSWORD})),
        );
        assert_eq!(status, 201, "{session}");
        session["token"].as_str().unwrap().to_owned()
    };
    let company = login(COMPANY);
    let citizen = login(CITIZEN);

    // The business license: applied for, paid once, issued, verified elsewhere.
    let application = json!({
        "application-id": "APP-2026-0001",
        "fields": [{"name": "business-scope", "value": "wholesale of tea"}],
        "valid-from": "2026-01-01",
        "valid-until": "2045-12-31",
    });
    let apply = |token: &str, body: &Json| {
        platform.send(
            "POST",
            "/market-regulation/business-license-applications",
            Some(token),
            Some(body.clone()),
        )
    };
    let (status, granted) = apply(&company, &application);
    assert_eq!(status, 201, "{granted}");
    let number = granted["license"]["number"].as_str().unwrap().to_owned();
    assert!(number.starts_with("BL-"), "{number}");
    let (status, verified) = platform.send(
        "GET",
        &format!("/public-security/licenses/{number}"),
        None,
        None,
    );
    assert_eq!(
        (status, &verified["valid"]),
        (200, &json!(true)),
        "{verified}"
    );
    let (_, retried) = apply(&company, &application);
    assert_eq!(
        retried["fee-order"], granted["fee-order"],
        "a retried application is charged once"
    );

    // A bad token.
    let (status, refused) = apply("zt1.forged", &application);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("malformed-token")),
        "{refused}"
    );

    // Serious arrears put the citizen at level D: no license.
    let (status, event) = platform.send(
        "POST",
        "/taxation/tax-bills/TB-2025-77/arrears",
        None,
        Some(json!({"payer": CITIZEN, "due-date": "2025-12-31", "severity": "severe"})),
    );
    assert_eq!(status, 201, "{event}");
    let mut second = application.clone();
    second["application-id"] = json!("APP-2026-0002");
    let (status, refused) = apply(&citizen, &second);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("check-failed")),
        "{refused}"
    );
    assert_eq!(refused["error"]["step"], "creditworthy");

    // A tax bill paid twice is charged once; the same bill with another amount is a conflict.
    let bill = json!({"payer": COMPANY, "amount": 128000, "purpose": "stamp duty 2026"});
    let (status, first) = platform.send(
        "POST",
        "/taxation/tax-bills/TB-2026-1/payment",
        None,
        Some(bill.clone()),
    );
    assert_eq!(
        (status, first["status"].as_str()),
        (200, Some("paid")),
        "{first}"
    );
    let (_, again) = platform.send(
        "POST",
        "/taxation/tax-bills/TB-2026-1/payment",
        None,
        Some(bill.clone()),
    );
    assert_eq!(again, first);
    let mut changed = bill.clone();
    changed["amount"] = json!(1);
    let (status, conflict) = platform.send(
        "POST",
        "/taxation/tax-bills/TB-2026-1/payment",
        None,
        Some(changed),
    );
    assert_eq!(
        (status, conflict["error"]["code"].as_str()),
        (409, Some("idempotency-conflict")),
        "{conflict}"
    );

    // A revoked license no longer verifies; only officials may revoke.
    let (status, refused) = platform.send(
        "POST",
        &format!("/market-regulation/licenses/{number}/revocation"),
        Some(&company),
        Some(json!({"reason": "x"})),
    );
    assert_eq!(status, 403, "{refused}");
    assert_eq!(
        register(
            "/market-regulation/officials",
            "market-regulation/0001",
            "Zhao Min"
        )
        .0,
        201
    );
    let official = login("market-regulation/0001");
    let (status, revoked) = platform.send(
        "POST",
        &format!("/market-regulation/licenses/{number}/revocation"),
        Some(&official),
        Some(json!({"reason": "business address does not exist"})),
    );
    assert_eq!(status, 200, "{revoked}");
    let (status, refused) = platform.send(
        "GET",
        &format!("/public-security/licenses/{number}"),
        None,
        None,
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (410, Some("revoked")),
        "{refused}"
    );

    // What the manifest does not grant is refused.
    let (status, refused) = platform.send("GET", &format!("/nosy/subjects/{CITIZEN}"), None, None);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("not-granted")),
        "{refused}"
    );

    // Routing.
    assert_eq!(
        platform
            .send("GET", "/market-regulation/nothing", None, None)
            .0,
        404
    );
    assert_eq!(platform.send("GET", "/nobody/x", None, None).0, 404);
    assert_eq!(
        platform
            .send(
                "GET",
                "/market-regulation/business-license-applications",
                None,
                None
            )
            .0,
        405
    );
    let bad_json = platform
        .agent
        .post(&format!("{}/public-security/citizens", platform.url))
        .send("{not json")
        .unwrap();
    assert_eq!(bad_json.status().as_u16(), 400);
    assert_eq!(platform.send("GET", "/healthz", None, None).0, 200);
}
