//! The platform end to end: `zhongtai up` on a loopback port serving the
//! example departments, driven over HTTP — the business license flow and
//! every refusal a department relies on.

use crate::support;

use crate::support::platform::{
    MARKET_ADMIN, OPERATOR_TOKEN, Platform, SECURITY_ADMIN, register_official_offline,
};

use std::process::Command;

use serde_json::{Value as Json, json};

const COMPANY: &str = "91350100M000100Y43";
const CITIZEN: &str = "11010519491231002X";
const PASSWORD: &str = "tea-and-silk-2026";
const TAX_OFFICIAL: &str = "taxation/T0001";

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
    let mut policy = std::fs::read_to_string(support::root().join("examples/policy.toml")).unwrap();
    policy.push_str("\n[departments.nosy]\n\"zhongtai:auth\" = [\"authn.verify\"]\n");
    std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
    // A department with a step that runs only on a condition.
    let nosy = dir.path().join("nosy");
    std::fs::create_dir_all(&nosy).unwrap();
    std::fs::write(
        nosy.join("zhongtai.toml"),
        r#"manifest-version = 1
department = "nosy"

[components]
auth = { package = "zhongtai:auth", version = "^1", grants = ["authn.verify"] }

[[services]]
name = "maybe"
method = "GET"
path = "/maybe/{word}"
public = true

[[services.steps]]
name = "claims"
if = "request.path.word == 'verify'"
call = "auth.authn.verify"
args = { token = "request.token" }

[services.response]
body = "{'ran': steps.claims != null}"
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
    // The operator creates the first admin of market regulation, and a tax
    // official, before the host starts.
    register_official_offline(data.path(), MARKET_ADMIN, "Wang Fang", PASSWORD);
    register_official_offline(data.path(), TAX_OFFICIAL, "Chen Jing", PASSWORD);
    register_official_offline(data.path(), SECURITY_ADMIN, "Sun Li", PASSWORD);
    let platform = Platform::start(departments.path(), data.path());

    let (status, ready) = platform.send("GET", "/readyz", None, None);
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        ready["departments"],
        json!(["market-regulation", "nosy", "public-security", "taxation"])
    );

    // Identities. Citizens register themselves; an enterprise is registered
    // by an official of public security, never on its own word.
    let register = |token: Option<&str>, path: &str, id: &str, name: &str| {
        platform.send(
            "POST",
            path,
            token,
            Some(json!({"id": id, "name": name, "password": PASSWORD})),
        )
    };
    assert_eq!(
        register(None, "/public-security/citizens", CITIZEN, "Li Lei").0,
        201
    );
    let (status, duplicate) = register(None, "/public-security/citizens", CITIZEN, "Li Lei");
    assert_eq!(
        (status, duplicate["error"]["code"].as_str()),
        (409, Some("already-registered"))
    );
    let login = |id: &str| platform.login(id, PASSWORD);
    let citizen = login(CITIZEN);
    let market_admin = login(MARKET_ADMIN);
    // Attack: another company's code registered under a bank's name.
    let impersonate = |token: Option<&str>| {
        register(
            token,
            "/public-security/legal-entities",
            COMPANY,
            "Bank of China Ltd.",
        )
    };
    for (token, expected) in [
        (None, (401, "unauthenticated")),
        (Some(citizen.as_str()), (403, "forbidden")),
        (Some(market_admin.as_str()), (403, "forbidden")),
    ] {
        let (status, refused) = impersonate(token);
        assert_eq!(
            (status, refused["error"]["code"].as_str().unwrap()),
            expected,
            "{refused}"
        );
    }
    let attempted = platform.send(
        "POST",
        "/public-security/sessions",
        None,
        Some(json!({"id": COMPANY, "password": PASSWORD})),
    );
    assert_eq!(
        attempted.0, 401,
        "no enterprise was registered: {attempted:?}"
    );
    let security_admin = login(SECURITY_ADMIN);
    let (status, registered) = register(
        Some(&security_admin),
        "/public-security/legal-entities",
        COMPANY,
        "Fuzhou Example Trading Co., Ltd.",
    );
    assert_eq!(status, 201, "{registered}");
    let company = login(COMPANY);

    // The business license: applied for, paid once, issued, verified
    // elsewhere. What it says is the department's: the holder is the
    // caller, the applicant gives the business scope, the validity is five
    // years from the day of issue.
    let application = json!({
        "application-id": "APP-2026-0001",
        "business-scope": "wholesale of tea",
    });
    let apply = |token: &str, body: &Json| {
        platform.send(
            "POST",
            "/market-regulation/business-license-applications",
            Some(token),
            Some(body.clone()),
        )
    };
    // An applicant who tries to write the license's fields or validity
    // themselves is refused before any step: the body's type has only
    // the application id and the business scope.
    let mut overreaching = application.clone();
    overreaching["fields"] = json!([{"name": "registered-capital", "value": "1000000000 CNY"}]);
    overreaching["valid-until"] = json!("2126-12-31");
    let (status, refused) = apply(&company, &overreaching);
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid-body");
    assert_eq!(
        refused["error"]["message"],
        "`body.fields`: expected no field by this name (the fields are: application-id, business-scope), found array of 1 elements"
    );
    let (status, granted) = apply(&company, &application);
    assert_eq!(status, 201, "{granted}");
    let license = &granted["license"];
    let number = license["number"].as_str().unwrap().to_owned();
    assert!(number.starts_with("BL-"), "{number}");
    assert_eq!(license["holder-name"], "Fuzhou Example Trading Co., Ltd.");
    assert_eq!(
        license["fields"],
        json!([{"name": "business-scope", "value": "wholesale of tea"}]),
        "only the field the department asks for"
    );
    let day = |field: &str| {
        let text = license[field].as_str().unwrap();
        let (y, m, d) = zhongtai_ids::iso_date(text).unwrap();
        zhongtai_ids::days_from_civil(y, m, d)
    };
    assert_eq!(
        day("valid-until") - day("valid-from"),
        1825,
        "five years from the day of issue, not the applicant's choice: {license}"
    );
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
    // Attack: one fee, several licenses. A retry is the same license and
    // the same fee; the same application with another scope is refused.
    let (_, retried) = apply(&company, &application);
    assert_eq!(
        (&retried["fee-order"], &retried["license"]),
        (&granted["fee-order"], &granted["license"]),
        "a retried application is charged once and licensed once"
    );
    let mut rescoped = application.clone();
    rescoped["business-scope"] = json!("banking and securities");
    let (status, refused) = apply(&company, &rescoped);
    assert_eq!(
        (
            status,
            refused["error"]["code"].as_str(),
            refused["error"]["step"].as_str()
        ),
        (409, Some("application-conflict"), Some("license")),
        "{refused}"
    );
    let mut unscoped = application.clone();
    unscoped["application-id"] = json!("APP-2026-0009");
    unscoped["business-scope"] = json!("x".repeat(501));
    let (status, refused) = apply(&company, &unscoped);
    assert_eq!(
        (status, refused["error"]["step"].as_str()),
        (400, Some("scope"))
    );

    // A bad token.
    let (status, refused) = apply("zt1.forged", &application);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("malformed-token")),
        "{refused}"
    );

    // Serious arrears put the citizen at level D: no license. Only a
    // taxation official records arrears.
    let arrears = json!({"payer": CITIZEN, "due-date": "2025-12-31", "severity": "severe"});
    let record_arrears = |token: Option<&str>| {
        platform.send(
            "POST",
            "/taxation/tax-bills/TB-2025-77/arrears",
            token,
            Some(arrears.clone()),
        )
    };
    let (status, refused) = record_arrears(None);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, refused) = record_arrears(Some(&company));
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{refused}"
    );
    let tax_official = login(TAX_OFFICIAL);
    let (status, event) = record_arrears(Some(&tax_official));
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

    // A tax official issues a bill; its payer pays the stored amount, once;
    // nobody else pays it, and nobody chooses the amount.
    let issue = |token: &str| {
        platform.send(
            "POST",
            "/taxation/tax-bills",
            Some(token),
            Some(json!({"bill": "TB-2026-1", "payer": COMPANY, "amount": 128000, "purpose": "stamp duty 2026"})),
        )
    };
    let (status, refused) = issue(&company);
    assert_eq!(
        status, 403,
        "only taxation officials issue bills: {refused}"
    );
    let (status, bill) = issue(&tax_official);
    assert_eq!(status, 201, "{bill}");
    let bill_id = bill["id"].as_str().unwrap().to_owned();
    let (_, reissued) = issue(&tax_official);
    assert_eq!(reissued["id"], bill["id"], "one reference, one bill");
    let pay = |token: Option<&str>, body: Json| {
        platform.send(
            "POST",
            &format!("/taxation/tax-bills/{bill_id}/payment"),
            token,
            Some(body),
        )
    };
    let (status, refused) = pay(None, json!({}));
    assert_eq!(status, 401, "{refused}");
    let (status, refused) = pay(Some(&citizen), json!({"amount": 1}));
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("check-failed")),
        "someone else cannot pay the bill: {refused}"
    );
    let (status, first) = pay(Some(&company), json!({"amount": 1}));
    assert_eq!(
        (status, first["status"].as_str()),
        (200, Some("paid")),
        "{first}"
    );
    assert_eq!(
        first["amount"]["amount"], 128000,
        "the stored amount is charged"
    );
    assert_eq!(first["payer"], COMPANY);
    let (_, again) = pay(Some(&company), json!({}));
    assert_eq!(again, first, "paid once");
    let (status, _) = platform.send(
        "POST",
        "/taxation/tax-bills/PO99999999999999999999/payment",
        Some(&company),
        None,
    );
    assert_eq!(status, 404, "no such bill");

    // A revoked license no longer verifies; only officials may revoke.
    let (status, refused) = platform.send(
        "POST",
        &format!("/market-regulation/licenses/{number}/revocation"),
        Some(&company),
        Some(json!({"reason": "x"})),
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{refused}"
    );
    // Only an admin official of market regulation registers its officials.
    let register_official = |token: Option<&str>, id: &str| {
        platform.send(
            "POST",
            "/market-regulation/officials",
            token,
            Some(json!({"id": id, "name": "Zhao Min", "password": PASSWORD})),
        )
    };
    let (status, _) = register_official(None, "market-regulation/EVIL1");
    assert_eq!(status, 401, "no token, no official");
    let (status, _) = register_official(Some(&citizen), "market-regulation/EVIL1");
    assert_eq!(status, 403, "a citizen registers no official");
    let admin = login(MARKET_ADMIN);
    let (status, registered) = register_official(Some(&admin), "market-regulation/0001");
    assert_eq!(status, 201, "{registered}");
    let official = login("market-regulation/0001");
    let (status, _) = register_official(Some(&official), "market-regulation/0002");
    assert_eq!(
        status, 403,
        "an official without the admin role registers nobody"
    );
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

    // A step runs only when its condition holds.
    assert_eq!(
        platform.send("GET", "/nosy/maybe/skip", None, None),
        (200, json!({"ran": false}))
    );
    let (status, ran) = platform.send("GET", "/nosy/maybe/verify", Some(&citizen), None);
    assert_eq!((status, ran), (200, json!({"ran": true})));

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

    // Who holds a token, and where the time of a request went.
    let mut whoami = platform
        .agent
        .get(&format!("{}/public-security/whoami", platform.url))
        .header("Authorization", &format!("Bearer {citizen}"))
        .call()
        .unwrap();
    assert_eq!(whoami.status().as_u16(), 200);
    let timing = whoami
        .headers()
        .get("server-timing")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        timing.starts_with("components;dur=")
            && timing.contains(", audit;dur=")
            && timing.contains(", total;dur="),
        "{timing}"
    );
    let claims: Json = serde_json::from_str(&whoami.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(claims["subject-id"], CITIZEN);

    // Everything above left a trail that verifies, while the host runs.
    let trail = data.path().join("audit");
    let verified = audit_cli(&["verify"], &trail);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let records = audit_records(&trail);
    let find = |what: &dyn Fn(&Json) -> bool| records.iter().filter(|r| what(r)).count();
    assert_eq!(
        find(&|r| r["kind"] == "admin" && r["action"] == "deploy"),
        4,
        "each department's deployment is recorded"
    );
    assert!(
        find(&|r| r["function"] == "verify"
            && r["outcome"] == "error"
            && r["case"] == "malformed-token")
            >= 1,
        "an error case is recorded"
    );
    assert!(
        find(&|r| r["service"] == "apply-business-license"
            && r["function"] == "issue-for-application"
            && r["subject"] == COMPANY
            && r["outcome"] == "ok"
            && r["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))
            && r["args"]
                .as_str()
                .is_some_and(|h| h.starts_with("hmac-sha256:"))
            && r["result"]
                .as_str()
                .is_some_and(|h| h.starts_with("hmac-sha256:")))
            >= 1,
        "a license issued for the authenticated company is recorded"
    );
    assert_eq!(
        find(&|r| r["service"] == "register-legal-entity" && r["outcome"] == "refused"),
        3,
        "each refused registration of an enterprise is recorded"
    );
    assert!(
        find(&|r| r["function"] == "issue-for-application"
            && r["case"] == "application-conflict"
            && r["subject"] == COMPANY)
            == 1,
        "the refused second license is recorded"
    );
    let text = std::fs::read_to_string(trail.join("trail.jsonl")).unwrap();
    assert!(
        !text.contains(PASSWORD),
        "arguments are recorded as hashes, never as data"
    );
}

fn audit_cli(args: &[&str], trail: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .arg("audit")
        .args(args)
        .arg("--dir")
        .arg(trail)
        .output()
        .expect("running zhongtai audit")
}

fn audit_records(trail: &std::path::Path) -> Vec<Json> {
    let shown = audit_cli(&["show", "--json"], trail);
    assert!(shown.status.success());
    String::from_utf8_lossy(&shown.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn zhongtai_cli(args: &[&str], host: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(args)
        .env("ZHONGTAI_HOST", host)
        .env("ZHONGTAI_ADMIN_TOKEN", OPERATOR_TOKEN)
        .output()
        .expect("running zhongtai")
}

#[test]
fn a_department_is_upgraded_and_rolled_back_under_load_without_a_failed_request() {
    support::guests();
    let departments = departments_with_extra();
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start(departments.path(), data.path());

    // A license to verify, over and over.
    let token =
        platform.register_and_login("/public-security/citizens", CITIZEN, "Li Lei", PASSWORD);
    let application = json!({"application-id": "APP-1", "business-scope": "tea house"});
    let (_, granted) = platform.send(
        "POST",
        "/market-regulation/business-license-applications",
        Some(&token),
        Some(application),
    );
    let verify_path = format!(
        "/public-security/licenses/{}",
        granted["license"]["number"].as_str().unwrap()
    );

    // The upgrade: the same department, answering with its revision.
    let original =
        std::fs::read_to_string(departments.path().join("public-security/zhongtai.toml")).unwrap();
    let upgraded = original.replace(
        "body = \"{'valid': true, 'license': steps.license}\"",
        "body = \"{'valid': true, 'license': steps.license, 'edition': 2}\"",
    );
    assert_ne!(upgraded, original);
    let upgraded_path = data.path().join("upgraded.toml");
    std::fs::write(&upgraded_path, &upgraded).unwrap();
    let broken_path = data.path().join("broken.toml");
    std::fs::write(
        &broken_path,
        upgraded.replace("license.verification.verify", "license.verification.verfy"),
    )
    .unwrap();

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (served, failed, editions) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let (mut served, mut failed, mut editions) =
                        (0, Vec::new(), std::collections::BTreeSet::new());
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (status, body) = platform.send("GET", &verify_path, None, None);
                        if status == 200 {
                            served += 1;
                            editions.insert(body["edition"].as_i64().unwrap_or(1));
                        } else {
                            failed.push(format!("{status} {body}"));
                        }
                    }
                    (served, failed, editions)
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let url = platform.admin_url.as_str();
        let deployed = zhongtai_cli(&["deploy", upgraded_path.to_str().unwrap()], url);
        assert!(
            deployed.status.success(),
            "{}",
            String::from_utf8_lossy(&deployed.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (_, body) = platform.send("GET", &verify_path, None, None);
        assert_eq!(body["edition"], 2, "the upgrade is in service");

        let refused = zhongtai_cli(&["deploy", broken_path.to_str().unwrap()], url);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("has no function \"verfy\""));
        let (_, body) = platform.send("GET", &verify_path, None, None);
        assert_eq!(
            body["edition"], 2,
            "a bad manifest never replaces a running good one"
        );

        std::thread::sleep(std::time::Duration::from_millis(300));
        let rolled = zhongtai_cli(&["rollback", "public-security"], url);
        assert!(
            rolled.status.success(),
            "{}",
            String::from_utf8_lossy(&rolled.stderr)
        );
        let (_, body) = platform.send("GET", &verify_path, None, None);
        assert_eq!(
            body["edition"],
            Json::Null,
            "rolled back to the first edition"
        );
        let none = zhongtai_cli(&["rollback", "public-security"], url);
        assert!(String::from_utf8_lossy(&none.stderr).contains("no earlier deployment"));
        std::thread::sleep(std::time::Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        workers.into_iter().map(|w| w.join().unwrap()).fold(
            (0, Vec::new(), std::collections::BTreeSet::new()),
            |mut acc, (s, f, e)| {
                acc.0 += s;
                acc.1.extend(f);
                acc.2.extend(e);
                acc
            },
        )
    });
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        served + failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(served > 20, "only {served} requests were served");

    // The operator's actions are in the trail, in order, and the admin
    // API serves the trail and its verification.
    let admin: Vec<(String, String, String)> = audit_records(&data.path().join("audit"))
        .iter()
        .filter(|r| r["kind"] == "admin" && r["department"] == "public-security")
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (text("action"), text("outcome"), text("case"))
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("deploy", "ok", ""),
        ("upgrade", "ok", ""),
        ("deploy", "refused", "invalid-manifest"),
        ("rollback", "ok", ""),
    ]
    .iter()
    .map(|(a, o, c)| (a.to_string(), o.to_string(), c.to_string()))
    .collect();
    assert_eq!(admin, expected);
    let get = |path: &str, token: &str| {
        let mut response = platform
            .agent
            .get(&format!("{}{path}", platform.admin_url))
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap();
        (status, body)
    };
    let (status, body) = get("/admin/v1/audit/verify", OPERATOR_TOKEN);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"verified\":true"), "{body}");
    let (status, body) = get(
        "/admin/v1/audit?department=public-security&service=verify-license&limit=5",
        OPERATOR_TOKEN,
    );
    assert_eq!(status, 200);
    let listed: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["records"].as_array().unwrap().len(), 5);
    assert_eq!(get("/admin/v1/audit", "wrong").0, 401);
    let (status, checkpoints) = get("/admin/v1/audit/files/checkpoints.jsonl", OPERATOR_TOKEN);
    assert_eq!(status, 200);
    assert!(checkpoints.contains("\"signature\""));
    assert_eq!(get("/admin/v1/audit/files/host.key", OPERATOR_TOKEN).0, 404);
    assert_eq!(
        get("/admin/v1/audit/files/segments/../host.key", OPERATOR_TOKEN).0,
        404
    );
    let (status, files) = get("/admin/v1/audit/files", OPERATOR_TOKEN);
    assert_eq!(status, 200);
    let files: Json = serde_json::from_str(&files).unwrap();
    let paths: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["host.pub", "checkpoints.jsonl", "trail.jsonl"]);
    assert_eq!(
        editions.into_iter().collect::<Vec<_>>(),
        [1, 2],
        "requests saw both editions"
    );

    let unauthorized = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(["rollback", "public-security"])
        .env("ZHONGTAI_HOST", &platform.admin_url)
        .env("ZHONGTAI_ADMIN_TOKEN", "guess-guess-guess")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unauthorized.stderr).contains("HTTP 401"));
    // A token on the command line is refused before anything is sent.
    let on_command_line = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args([
            "rollback",
            "public-security",
            "--admin-token",
            OPERATOR_TOKEN,
        ])
        .env("ZHONGTAI_HOST", &platform.admin_url)
        .output()
        .unwrap();
    assert!(!on_command_line.status.success());
    assert!(
        String::from_utf8_lossy(&on_command_line.stderr).contains("ps"),
        "{}",
        String::from_utf8_lossy(&on_command_line.stderr)
    );
    // The admin API is not on the public address.
    let (status, _) = platform.send(
        "POST",
        "/admin/v1/departments/public-security/rollback",
        Some(OPERATOR_TOKEN),
        None,
    );
    assert_eq!(status, 404);
}
