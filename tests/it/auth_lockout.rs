//! The auth capability under concurrency, through the platform: wrong
//! passwords sent at once are counted one by one, so the account locks at
//! exactly the threshold; an unknown id is refused like a wrong password;
//! and a stranger's wrong passwords lock out the stranger's address, not
//! the citizen.

use crate::support;

use crate::support::platform::Platform;
use serde_json::json;

const CITIZEN: &str = "11010519491231002X";
const PASSWORD: &str = "tea-and-silk-2026";

#[test]
fn forty_concurrent_wrong_passwords_lock_the_account_at_the_threshold() {
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start(&support::root().join("examples"), data.path());
    platform.register_and_login("/public-security/citizens", CITIZEN, "Li Lei", PASSWORD);

    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let attempts: Vec<_> = (0..40)
            .map(|n| {
                let platform = &platform;
                scope.spawn(move || {
                    let body = json!({"id": CITIZEN, "password": format!("wrong-guess-{n}")});
                    platform
                        .send("POST", "/public-security/sessions", None, Some(body))
                        .0
                })
            })
            .collect();
        attempts.into_iter().map(|a| a.join().unwrap()).collect()
    });
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    // The default threshold is 5: four wrong passwords are refused, the
    // fifth locks the account, and every later attempt finds it locked.
    assert_eq!((refused, locked), (4, 36), "{statuses:?}");

    let (status, body) = platform.send(
        "POST",
        "/public-security/sessions",
        None,
        Some(json!({"id": CITIZEN, "password": PASSWORD})),
    );
    assert_eq!(status, 429, "locked, even for the right password: {body}");
    assert_eq!(body["error"]["code"], "locked-out");

    let (status, body) = platform.send(
        "POST",
        "/public-security/sessions",
        None,
        Some(json!({"id": "11010519491231003X", "password": PASSWORD})),
    );
    assert_eq!(status, 401, "an unknown id is a wrong password: {body}");
    assert_eq!(body["error"]["code"], "invalid-credentials");
}

/// Logs in through a proxy the host trusts, as `client`.
fn login_from(platform: &Platform, client: &str, password: &str) -> (u16, serde_json::Value) {
    let mut response = platform
        .agent
        .post(&format!("{}/public-security/sessions", platform.url))
        .header("X-Forwarded-For", client)
        .send(json!({"id": CITIZEN, "password": password}).to_string())
        .unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

#[test]
fn a_stranger_cannot_lock_a_citizen_out() {
    let data = tempfile::tempdir().unwrap();
    // The test stands in for the load balancer at 127.0.0.1.
    let platform = Platform::start_with(
        &support::root().join("examples"),
        data.path(),
        &["--trusted-proxy", "127.0.0.1"],
    );
    platform.register_and_login("/public-security/citizens", CITIZEN, "Li Lei", PASSWORD);
    let (stranger, citizen) = ("203.0.113.9", "198.51.100.7");
    let statuses: Vec<u16> = (0..8)
        .map(|n| login_from(&platform, stranger, &format!("wrong-guess-{n}")).0)
        .collect();
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429, 429]);
    let (status, _) = login_from(&platform, stranger, PASSWORD);
    assert_eq!(status, 429, "the stranger's address stays locked");
    let (status, session) = login_from(&platform, citizen, PASSWORD);
    assert_eq!(
        status, 201,
        "the citizen logs in from their own address: {session}"
    );
    // The header is believed from the trusted proxy only: a client cannot
    // pick a fresh address per guess when it talks to the host directly.
    drop(platform);
    let direct = Platform::start(&support::root().join("examples"), data.path());
    let statuses: Vec<u16> = (0..6)
        .map(|n| login_from(&direct, &format!("192.0.2.{n}"), "wrong-guess").0)
        .collect();
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429, 429],
        "all counted as 127.0.0.1"
    );
}
