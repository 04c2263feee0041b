//! The HTTP host in process, without a socket (`tower::ServiceExt::oneshot`
//! against `zhongtai_api::app`): routing refusals, the one JSON error shape,
//! request ids carried into the audit trail, path and query decoding, and
//! the admin API's token.

use crate::support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value as Json, json};
use tower::ServiceExt;
use zhongtai_api::{Admin, Host};
use zhongtai_audit::{AuditLog, AuditOptions, Filter, Trail};
use zhongtai_registry::TrustPolicy;
use zhongtai_runtime::{HostConfig, RuntimeLimits};

const MANIFEST: &str = include_str!("../manifests/sampler/civil-affairs.toml");

const TOKEN: &str = "operator-token-for-router-tests";

/// A host serving the manifest above, with an audit trail and an admin API.
struct Served {
    host: Arc<Host>,
    _dirs: Vec<tempfile::TempDir>,
}

fn serve() -> Served {
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(support::sampler_registry(registry_dir.path()));
    let (runtime, state) = support::runtime(RuntimeLimits::default(), HostConfig::default());
    let runtime = Arc::new(runtime);
    let checked = zhongtai_manifest::parse(MANIFEST, "civil-affairs.toml").unwrap();
    let deployment = zhongtai_api::deploy(
        checked,
        "civil-affairs.toml",
        None,
        registry.as_ref(),
        &TrustPolicy::default(),
        &runtime,
    )
    .unwrap();
    let trail = tempfile::tempdir().unwrap();
    let audit = Arc::new(AuditLog::open(trail.path(), None, AuditOptions::default()).unwrap());
    let admin = Admin {
        registry,
        trust: TrustPolicy::default(),
        token: Some(TOKEN.to_owned()),
    };
    let host = Host::with_admin(runtime, Some(admin)).with_audit(audit);
    host.install(deployment).unwrap();
    Served {
        host: Arc::new(host),
        _dirs: vec![registry_dir, state, trail],
    }
}

/// Sends `request` to the app; returns the status and the JSON body.
fn send(host: &Arc<Host>, request: Request<Body>) -> (StatusCode, Json) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = zhongtai_api::app(host.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
        (status, body)
    })
}

fn request(method: &str, uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[test]
fn refusals_share_one_error_shape() {
    let served = serve();
    let cases = [
        (request("GET", "/nowhere", ""), 404, "not-found"),
        (request("GET", "/transport/count", ""), 404, "not-found"),
        (
            request("POST", "/civil-affairs/counting", ""),
            404,
            "not-found",
        ),
        (
            request("GET", "/civil-affairs/count", ""),
            405,
            "method-not-allowed",
        ),
        (
            request("POST", "/civil-affairs/count", "{not json"),
            400,
            "bad-request",
        ),
    ];
    for (request, status, code) in cases {
        let uri = request.uri().to_string();
        let (got, body) = send(&served.host, request);
        assert_eq!(got.as_u16(), status, "{uri}: {body}");
        let error = body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("{uri}: {body}"));
        assert_eq!(error["code"], code, "{uri}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(!error.contains_key("step"), "{uri}: no step failed");
    }
}

#[test]
fn an_error_case_names_its_step() {
    let served = serve();
    let (status, body) = send(&served.host, request("POST", "/civil-affairs/odd", ""));
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({"error": {"code": "err", "message": "odd", "step": "c"}})
    );
}

#[test]
fn a_sensible_request_id_is_kept_and_reaches_the_trail() {
    let served = serve();
    let mut given = request("POST", "/civil-affairs/count", "");
    given
        .headers_mut()
        .insert("x-request-id", "case-2026-0042".parse().unwrap());
    let (status, body) = send(&served.host, given);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["request"], "case-2026-0042");

    let mut odd = request("POST", "/civil-affairs/count", "");
    odd.headers_mut()
        .insert("x-request-id", "has spaces and ;".parse().unwrap());
    let (_, body) = send(&served.host, odd);
    let fresh = body["request"].as_str().unwrap();
    assert_eq!(
        fresh.len(),
        32,
        "a fresh id replaces an unusable one: {fresh}"
    );

    let audit = served.host.audit().unwrap();
    let records = Trail::read(audit.dir()).unwrap().select(&Filter {
        request: Some("case-2026-0042".into()),
        ..Filter::default()
    });
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].entry.function.as_deref(), Some("count"));
}

#[test]
fn a_plus_is_a_plus_in_a_path_and_a_space_in_a_query() {
    let served = serve();
    let (status, body) = send(
        &served.host,
        request("GET", "/civil-affairs/names/Li+Lei%21?greeting=ni+hao", ""),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["path"], "Li+Lei!");
    assert_eq!(body["query"]["greeting"], "ni hao");
}

#[test]
fn the_admin_api_wants_the_operators_token() {
    let served = serve();
    let (status, body) = send(&served.host, request("GET", "/admin/v1/departments", ""));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");

    let mut wrong = request("POST", "/admin/v1/departments/civil-affairs/rollback", "");
    wrong
        .headers_mut()
        .insert("authorization", "Bearer not-the-token".parse().unwrap());
    let (status, _) = send(&served.host, wrong);
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut right = request("GET", "/admin/v1/departments", "");
    right
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (status, body) = send(&served.host, right);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["departments"]["civil-affairs"]["revision"], 1);

    // The refused rollback is in the trail; the refused listing is not a
    // department action and is not.
    let audit = served.host.audit().unwrap();
    let refused: Vec<_> = Trail::read(audit.dir())
        .unwrap()
        .select(&Filter::default())
        .into_iter()
        .filter(|r| r.entry.outcome == "refused")
        .map(|r| r.entry.action.unwrap_or_default())
        .collect();
    assert_eq!(refused, ["rollback"]);
}

#[test]
fn a_host_with_nothing_deployed_is_not_ready() {
    let (runtime, _state) = support::runtime(RuntimeLimits::default(), HostConfig::default());
    let host = Arc::new(Host::with_admin(Arc::new(runtime), None));
    let (status, body) = send(&host, request("GET", "/readyz", ""));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "not-ready");
    let (status, _) = send(&host, request("GET", "/healthz", ""));
    assert_eq!(status, StatusCode::OK);
}

fn admin_request(method: &str, uri: &str, body: &str) -> Request<Body> {
    let mut request = request(method, uri, body);
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    request
}

#[test]
fn the_operators_policy_decides_what_a_deploy_may_ask_for() {
    let served = serve();
    let deploy = || {
        send(
            &served.host,
            admin_request(
                "POST",
                "/admin/v1/departments/civil-affairs/manifest",
                MANIFEST,
            ),
        )
    };
    // No policy gives nothing: the manifest's grants are refused, each named.
    let (status, body) = deploy();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid-manifest");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("components.sampler.grants: `antics.count` of example:sampler (sampler) is not given to civil-affairs by the platform policy"),
        "{message}"
    );

    // A policy that does not parse is refused; the one in force stays.
    let (status, body) = send(
        &served.host,
        admin_request(
            "PUT",
            "/admin/v1/policy",
            "policy-version = 1\nwho = 'me'\n",
        ),
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid-policy");

    // The operator gives civil affairs what it asks for; the deploy passes.
    let policy = "policy-version = 1\n[departments.civil-affairs]\n\"example:sampler\" = [\"antics.*\", \"shapes.*\"]\n";
    let (status, body) = send(
        &served.host,
        admin_request("PUT", "/admin/v1/policy", policy),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = deploy();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deployed"], 2);

    // Without the operator's token the policy is neither read nor replaced,
    // and the replacement is in the trail.
    let (status, _) = send(&served.host, request("PUT", "/admin/v1/policy", "x"));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let audit = served.host.audit().unwrap();
    let replaced = Trail::read(audit.dir())
        .unwrap()
        .select(&Filter::default())
        .into_iter()
        .filter(|r| r.entry.action.as_deref() == Some("replace-policy"))
        .count();
    assert_eq!(replaced, 1);
}
