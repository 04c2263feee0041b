//! Several hosts, one platform: three `zhongtai up` processes on one
//! PostgreSQL database share state, and a deploy or rollback made through
//! any of them is served by the others at once; a host started later
//! catches up.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::json;

use crate::state_postgres::Database;
use crate::support::platform::{OPERATOR_TOKEN, Platform};

fn start(database: &Database, data: &std::path::Path) -> Platform {
    Platform::start_with(
        &support::root().join("examples"),
        data,
        &["--state", &database.url()],
    )
}

/// Waits until `host` answers `GET path` with `status`; how long it took.
fn until(host: &Platform, path: &str, status: u16) -> Duration {
    let started = Instant::now();
    loop {
        let (got, body) = host.send("GET", path, None, None);
        if got == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} still answers {path} with {got} {body}",
            host.url
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn admin(host: &Platform, path: &str, body: Option<String>) -> (u16, String) {
    let url = format!("{}{path}", host.admin_url);
    let request = host
        .agent
        .post(&url)
        .header("Authorization", &format!("Bearer {OPERATOR_TOKEN}"));
    let mut response = request.send(body.unwrap_or_default()).unwrap();
    (
        response.status().as_u16(),
        response.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn hosts_on_one_database_share_state_and_deployments() {
    let Some(database) = Database::create("hosts_on_one_database_share_state_and_deployments")
    else {
        return;
    };
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let hosts: Vec<Platform> = dirs[..3]
        .iter()
        .map(|d| start(&database, d.path()))
        .collect();

    // State: registered through one host, logged in through another.
    let token = hosts[2].register_and_login(
        "/public-security/citizens",
        "11010519491231002X",
        "Li Lei",
        "tea-and-silk-2026",
    );
    let (status, claims) = hosts[0].send("GET", "/public-security/whoami", Some(&token), None);
    assert_eq!(
        (status, &claims["subject-id"]),
        (200, &json!("11010519491231002X"))
    );

    // A deploy through host 1 is served by hosts 2 and 3.
    let original =
        std::fs::read_to_string(support::root().join("examples/public-security/zhongtai.toml"))
            .unwrap();
    let upgraded = format!(
        "{original}\n[[services]]\nname = \"edition\"\nmethod = \"GET\"\npath = \"/edition\"\npublic = true\n\n[services.response]\nbody = \"{{'edition': 2}}\"\n"
    );
    for host in &hosts {
        assert_eq!(
            host.send("GET", "/public-security/edition", None, None).0,
            404
        );
    }
    let (status, body) = admin(
        &hosts[0],
        "/admin/v1/departments/public-security/manifest",
        Some(upgraded.clone()),
    );
    assert_eq!(status, 200, "{body}");
    for host in &hosts[1..] {
        let took = until(host, "/public-security/edition", 200);
        eprintln!("{} served the deploy after {took:?}", host.url);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    // A rollback through host 2 is followed by hosts 1 and 3.
    let (status, body) = admin(
        &hosts[1],
        "/admin/v1/departments/public-security/rollback",
        None,
    );
    assert_eq!(status, 200, "{body}");
    for host in [&hosts[0], &hosts[2]] {
        let took = until(host, "/public-security/edition", 404);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    // Deployed again through host 3; a host started now catches up.
    let (status, body) = admin(
        &hosts[2],
        "/admin/v1/departments/public-security/manifest",
        Some(upgraded),
    );
    assert_eq!(status, 200, "{body}");
    let late = start(&database, dirs[3].path());
    until(&late, "/public-security/edition", 200);
    for host in &hosts {
        until(host, "/public-security/edition", 200);
    }

    // Audit: each host keeps its own trail, names itself in its records and
    // publishes its checkpoints to the database. An export taken now is
    // cut short once host 1 has recorded more and published a checkpoint.
    let early = dirs[0].path().join("early-export");
    let exported = zhongtai(&[
        "audit",
        "export",
        "--dir",
        &audit_dir(&dirs[0]),
        "--out",
        early.to_str().unwrap(),
    ]);
    assert!(exported.status.success(), "{}", text(&exported));
    for _ in 0..3 {
        hosts[0].send("GET", "/public-security/whoami", Some(&token), None);
    }
    std::thread::sleep(Duration::from_millis(2500));
    drop(hosts);
    drop(late);
    let trails: Vec<String> = dirs.iter().map(audit_dir).collect();
    let verify = |trails: &[&str]| {
        let mut args = vec!["audit", "verify", "--dir", trails[0]];
        for more in &trails[1..] {
            args.extend(["--and", more]);
        }
        let url = database.url();
        args.extend(["--state", url.as_str()]);
        zhongtai(&args)
    };
    let all: Vec<&str> = trails.iter().map(String::as_str).collect();
    let checked = verify(&all);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(text(&checked).contains("4 trails verified against the database"));
    let cut = verify(&[early.to_str().unwrap(), all[1], all[2], all[3]]);
    assert!(!cut.status.success());
    assert!(text(&cut).contains("cut short"), "{}", text(&cut));
    let missing = verify(&all[..3]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("its trail was not given"),
        "{}",
        text(&missing)
    );
    let shown = zhongtai(&["audit", "show", "--json", "--dir", all[0]]);
    let hosts_named: std::collections::BTreeSet<String> = text(&shown)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|r| r["host"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        hosts_named.len(),
        1,
        "one host wrote this trail: {hosts_named:?}"
    );
}

fn audit_dir(dir: &tempfile::TempDir) -> String {
    dir.path().join("audit").display().to_string()
}

fn zhongtai(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The resident identity number of the `n`th test citizen.
fn citizen(n: usize) -> String {
    let first17 = format!("110105199001{:02}{:03}", 1 + n % 28, n);
    let digits: [u8; 17] = first17.as_bytes().try_into().unwrap();
    format!(
        "{first17}{}",
        zhongtai_ids::resident_identity_check(&digits)
    )
}

#[test]
fn a_host_killed_under_load_loses_no_payment_and_issues_no_second_license() {
    let Some(database) = Database::create("a_host_killed_under_load") else {
        return;
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut hosts: Vec<Option<Platform>> = dirs
        .iter()
        .map(|d| Some(start(&database, d.path())))
        .collect();
    let urls: Vec<String> = hosts
        .iter()
        .map(|h| h.as_ref().unwrap().url.clone())
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    const CLIENTS: usize = 64;
    const PASSWORD: &str = "tea-and-silk-2026";

    // One request to the first host that answers, starting at `first`.
    let send = |first: usize, path: &str, token: Option<&str>, body: serde_json::Value| {
        for attempt in 0..urls.len() * 20 {
            let url = &urls[(first + attempt) % urls.len()];
            let mut request = agent.post(&format!("{url}{path}"));
            if let Some(token) = token {
                request = request.header("Authorization", &format!("Bearer {token}"));
            }
            match request.send(body.to_string()) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let text = response.body_mut().read_to_string().unwrap_or_default();
                    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    // A host that died mid-request may have answered 5xx.
                    if status < 500 {
                        return (status, json);
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        panic!("no host answered {path}");
    };

    let finished = std::sync::atomic::AtomicUsize::new(0);
    let answered: Vec<(String, serde_json::Value)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|n| {
                let (send, finished) = (&send, &finished);
                scope.spawn(move || {
                    let id = citizen(n);
                    let (status, body) = send(
                        n,
                        "/public-security/citizens",
                        None,
                        json!({"id": id, "name": format!("Citizen {n}"), "password": PASSWORD}),
                    );
                    // A retry after a lost answer finds the citizen registered.
                    assert!(status == 201 || status == 409, "{status} {body}");
                    let (status, session) = send(
                        n + 1,
                        "/public-security/sessions",
                        None,
                        json!({"id": id, "password": PASSWORD}),
                    );
                    assert_eq!(status, 201, "{session}");
                    let token = session["token"].as_str().unwrap().to_owned();
                    let (status, granted) = send(
                        n + 2,
                        "/market-regulation/business-license-applications",
                        Some(&token),
                        json!({"application-id": format!("LOAD-{n}"), "business-scope": "tea"}),
                    );
                    assert_eq!(status, 201, "{granted}");
                    finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    (id, granted)
                })
            })
            .collect();
        // Mid-load — once a few clients are through — one host dies.
        let waiting = Instant::now();
        while finished.load(std::sync::atomic::Ordering::SeqCst) < 8
            && waiting.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(hosts[1].take());
        let done = finished.load(std::sync::atomic::Ordering::SeqCst);
        eprintln!("host 2 killed with {done} of {CLIENTS} clients done");
        assert!(
            done < CLIENTS,
            "the kill came after the load; nothing was tested"
        );
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });

    // The others kept answering: every client got its license. Each
    // applicant holds exactly one, and each fee is paid once.
    assert_eq!(answered.len(), CLIENTS);
    let store = zhongtai_runtime::PostgresStore::connect(&database.url()).unwrap();
    let licenses = support::bucket_contents(&store, "zhongtai:license/default");
    for (id, granted) in &answered {
        let held = licenses
            .iter()
            .find(|(k, _)| *k == format!("holder/{id}/licenses"))
            .map(|(_, v)| serde_json::from_slice::<Vec<String>>(v).unwrap())
            .unwrap_or_default();
        assert_eq!(
            held,
            [granted["license"]["number"].as_str().unwrap()],
            "{id}"
        );
    }
    let payments = support::bucket_contents(&store, "zhongtai:payment/default");
    let paid: Vec<serde_json::Value> = payments
        .iter()
        .filter(|(k, _)| k.starts_with("order/"))
        .map(|(_, v)| serde_json::from_slice(v).unwrap())
        .filter(|o: &serde_json::Value| o["status"] == "paid")
        .collect();
    assert_eq!(paid.len(), CLIENTS, "one paid fee per application");
    for (_, granted) in &answered {
        assert!(paid.iter().any(|o| o["id"] == granted["fee-order"]));
    }
    let balances: Vec<i64> = payments
        .iter()
        .filter(|(k, _)| k.starts_with("balance/"))
        .map(|(_, v)| serde_json::from_slice(v).unwrap())
        .collect();
    assert_eq!(balances.iter().sum::<i64>(), 0, "the ledger sums to zero");
    let regulator = payments
        .iter()
        .find(|(k, _)| k == "balance/department:market-regulation")
        .map(|(_, v)| serde_json::from_slice::<i64>(v).unwrap());
    assert_eq!(regulator, Some(30_000 * CLIENTS as i64), "each fee once");

    // The killed host comes back, and its trail verifies.
    let restarted = start(&database, dirs[1].path());
    assert_eq!(restarted.send("GET", "/readyz", None, None).0, 200);
    let verified = zhongtai(&["audit", "verify", "--dir", &audit_dir(&dirs[1])]);
    assert!(verified.status.success(), "{}", text(&verified));
}
