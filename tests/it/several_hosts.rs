//! Several hosts, one platform: three `zhongtai up` processes on one
//! PostgreSQL database share state, and a deploy or rollback made through
//! any of them is served by the others at once; a host started later
//! catches up.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::json;

use crate::state_postgres::Database;
use crate::support::platform::Platform;

const TOKEN: &str = "operator-token";

fn start(database: &Database, data: &std::path::Path) -> Platform {
    Platform::start_with(
        &support::root().join("examples"),
        data,
        &["--state", &database.url(), "--admin-token", TOKEN],
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
    let url = format!("{}{path}", host.url);
    let request = host
        .agent
        .post(&url)
        .header("Authorization", &format!("Bearer {TOKEN}"));
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
}
