//! `/metrics` on a running `zhongtai up`: who may read it, and counts that
//! match a known sequence of requests and admin actions — and the audit
//! trail.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::support;
use crate::support::platform::{OPERATOR_TOKEN, Platform};

const METRICS_TOKEN: &str = "mt-4Hq8Zr2Wc6Lp0Xv3Jn7Tb5Ky9Fd1Sg";
const TAXATION_TOKEN: &str = "tx-9Pk3Vb7Nz1Qw5Rm8Gc2Hy6Lf0Dj4Ts";
const CITIZEN: &str = "11010519491231002X";

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

/// Every sample of `family` (`zhongtai_component_calls_total`), by labels.
fn samples(text: &str, family: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|line| line.strip_prefix(family)?.strip_prefix('{'))
        .map(|rest| {
            let (labels, value) = rest.rsplit_once("} ").unwrap();
            (labels.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn scrape(platform: &Platform) -> String {
    let (status, text) = platform.admin("GET", "/metrics", Some(METRICS_TOKEN), None);
    assert_eq!(status, 200, "{text}");
    text
}

#[test]
fn metrics_count_requests_calls_deploys_and_syncs_and_need_a_token() {
    let data = tempfile::tempdir().unwrap();
    let tokens = data.path().join("admin-tokens.toml");
    std::fs::write(
        &tokens,
        format!("metrics = \"{METRICS_TOKEN}\"\n[departments]\ntaxation = \"{TAXATION_TOKEN}\"\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let examples = support::root().join("examples");
    let platform = Platform::start_with(
        &examples,
        data.path(),
        &["--admin-tokens", tokens.to_str().unwrap()],
    );

    // Who may read: the operator and the metrics token; the metrics
    // token opens nothing else.
    for token in [
        None,
        Some(TAXATION_TOKEN),
        Some("mt-not-the-token-at-all-0123456789"),
    ] {
        let (status, body) = platform.admin("GET", "/metrics", token, None);
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(body.contains("metrics token"), "{body}");
    }
    assert_eq!(
        platform
            .admin("GET", "/metrics", Some(OPERATOR_TOKEN), None)
            .0,
        200
    );
    for path in [
        "/admin/v1/departments",
        "/admin/v1/audit",
        "/admin/v1/policy",
    ] {
        assert_eq!(
            platform.admin("GET", path, Some(METRICS_TOKEN), None).0,
            401,
            "{path}"
        );
    }
    assert_eq!(
        platform
            .admin(
                "POST",
                "/admin/v1/departments/taxation/rollback",
                Some(METRICS_TOKEN),
                None
            )
            .0,
        401
    );

    let start = scrape(&platform);
    for department in ["market-regulation", "public-security", "taxation"] {
        assert_eq!(
            sample(
                &start,
                &format!(
                    "zhongtai_department_changes_total{{department=\"{department}\",action=\"deploy\"}}"
                )
            ),
            Some(1.0),
            "{start}"
        );
    }
    assert!(
        start.contains("# TYPE zhongtai_department_changes counter"),
        "{start}"
    );

    // A known sequence of requests.
    for _ in 0..3 {
        let (status, _) = platform.send(
            "GET",
            "/public-security/whoami",
            Some("not-a-session"),
            None,
        );
        assert_eq!(status, 401);
    }
    let session = platform.register_and_login(
        "/public-security/citizens",
        CITIZEN,
        "Li Lei",
        "tea-and-silk-2026",
    );
    for _ in 0..2 {
        let (status, _) = platform.send("GET", "/public-security/whoami", Some(&session), None);
        assert_eq!(status, 200);
    }
    assert_eq!(
        platform.send("GET", "/no-such-department/x", None, None).0,
        404
    );
    assert_eq!(
        platform
            .send("GET", "/public-security/nowhere", None, None)
            .0,
        404
    );
    assert_eq!(
        platform
            .send("POST", "/public-security/whoami", None, None)
            .0,
        405
    );

    // Admin changes: an upgrade, a rollback and two refused deploys.
    let manifest = std::fs::read_to_string(examples.join("taxation/zhongtai.toml")).unwrap();
    let deploy = |text: &str| {
        platform.admin(
            "POST",
            "/admin/v1/departments/taxation/manifest",
            Some(TAXATION_TOKEN),
            Some(text),
        )
    };
    assert_eq!(deploy(&manifest).0, 200);
    assert_eq!(
        platform
            .admin(
                "POST",
                "/admin/v1/departments/taxation/rollback",
                Some(TAXATION_TOKEN),
                None
            )
            .0,
        200
    );
    assert_eq!(deploy("manifest-version = 1\ndepartment = ").0, 422);
    let unknown = manifest.replace("zhongtai:credit", "zhongtai:no-such-capability");
    assert_ne!(unknown, manifest, "the taxation example uses credit");
    assert!(deploy(&unknown).0 >= 400);

    // The audit writer reports a sync after answering its appenders:
    // wait for the last one.
    let records = {
        let (status, page) = platform.admin(
            "GET",
            "/admin/v1/audit?limit=1000",
            Some(OPERATOR_TOKEN),
            None,
        );
        assert_eq!(status, 200);
        let page: Json = serde_json::from_str(&page).unwrap();
        page["records"].as_array().unwrap().clone()
    };
    let written = records.last().unwrap()["seq"].as_u64().unwrap() + 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&platform);
        if sample(&text, "zhongtai_audit_sync_records_sum") == Some(written as f64)
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let count = |series: &str| sample(&text, series).unwrap_or(0.0);

    assert_eq!(
        count(
            r#"zhongtai_requests_total{department="public-security",service="whoami",status="401"}"#
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        count(
            r#"zhongtai_requests_total{department="public-security",service="whoami",status="200"}"#
        ),
        2.0
    );
    assert_eq!(
        count(
            r#"zhongtai_requests_total{department="public-security",service="register-citizen",status="201"}"#
        ) + count(
            r#"zhongtai_requests_total{department="public-security",service="open-session",status="201"}"#
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        count(
            r#"zhongtai_request_duration_seconds_count{department="public-security",service="whoami"}"#
        ),
        5.0
    );
    assert_eq!(
        count(r#"zhongtai_unmatched_requests_total{status="404"}"#),
        2.0
    );
    assert_eq!(
        count(r#"zhongtai_unmatched_requests_total{status="405"}"#),
        1.0
    );
    assert!(
        !text.contains("no-such-department") && !text.contains("nowhere"),
        "a path no service answers never becomes a label"
    );

    assert_eq!(
        count(r#"zhongtai_department_changes_total{department="taxation",action="upgrade"}"#),
        1.0
    );
    assert_eq!(
        count(r#"zhongtai_department_changes_total{department="taxation",action="rollback"}"#),
        1.0
    );
    assert_eq!(
        count(r#"zhongtai_refused_deploys_total{department="taxation",reason="invalid"}"#),
        2.0,
        "{text}"
    );

    // Component calls agree with the trail's call records, series by series.
    let mut from_trail = BTreeMap::new();
    for record in records.iter().filter(|r| r["kind"] == "call") {
        let field = |name: &str| record[name].as_str().unwrap_or_default().to_owned();
        let labels = format!(
            "package=\"{}\",version=\"{}\",function=\"{}\",outcome=\"{}\"",
            field("package"),
            field("version"),
            field("function"),
            field("outcome")
        );
        *from_trail.entry(labels).or_insert(0.0) += 1.0;
    }
    assert!(from_trail.len() >= 3, "{from_trail:?}");
    assert_eq!(samples(&text, "zhongtai_component_calls_total"), from_trail);

    // Every record written went through a sync; state was committed.
    assert_eq!(
        count("zhongtai_audit_sync_records_sum"),
        written as f64,
        "{text}"
    );
    assert!(count("zhongtai_audit_sync_duration_seconds_count") >= 1.0);
    assert_eq!(count("zhongtai_audit_sync_failures_total"), 0.0);
    assert!(
        count("zhongtai_state_commit_duration_seconds_count") >= 2.0,
        "{text}"
    );
    assert!(count("zhongtai_state_commit_writes_sum") >= 2.0);
    assert_eq!(count("zhongtai_instances_in_use"), 0.0);
    assert!(count("zhongtai_instances_max") >= 1.0);
    // Slots still waiting for a batched decommit are not counted yet, so a
    // few calls may leave it at zero.
    assert!(
        sample(&text, "zhongtai_pool_resident_bytes").is_some_and(|bytes| bytes >= 0.0),
        "{text}"
    );
}
