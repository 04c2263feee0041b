//! The auth capability under concurrency, through the platform: wrong
//! passwords sent at once are counted one by one, so the account locks at
//! exactly the threshold; and an unknown id is refused like a wrong
//! password.

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
