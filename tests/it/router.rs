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

const TOKEN: &str = "op-router-4Kx9Qm2Zt7Lw3Rv8Bn6Hc1Jd5Sg0Fp";

/// Civil affairs' own admin token.
const CIVIL_TOKEN: &str = "ca-router-8Tb3Nq6Yx1Mv4Kc9Wz2Lp7Hs5Jd0Rg";

/// A host serving the manifest above, with an audit trail and an admin API.
struct Served {
    host: Arc<Host>,
    _dirs: Vec<tempfile::TempDir>,
}

fn serve() -> Served {
    serve_with(RuntimeLimits::default(), &["civil-affairs"], |host| host)
}

/// A host serving `departments`, each with the manifest of civil affairs,
/// under `limits`, set up further by `setup`.
fn serve_with(
    limits: RuntimeLimits,
    departments: &[&str],
    setup: impl FnOnce(Host) -> Host,
) -> Served {
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(support::sampler_registry(registry_dir.path()));
    let (runtime, state) = support::runtime(limits, HostConfig::default());
    let runtime = Arc::new(runtime);
    let deploy = |text: &str, file: &str| {
        let checked = zhongtai_manifest::parse(text, file).unwrap();
        zhongtai_api::deploy(
            checked,
            file,
            None,
            registry.as_ref(),
            &TrustPolicy::default(),
            &runtime,
        )
        .unwrap()
    };
    let deployments: Vec<_> = departments
        .iter()
        .map(|department| {
            deploy(
                &MANIFEST.replace("\"civil-affairs\"", &format!("{department:?}")),
                &format!("{department}.toml"),
            )
        })
        .collect();
    let trail = tempfile::tempdir().unwrap();
    let audit = Arc::new(AuditLog::open(trail.path(), None, AuditOptions::default()).unwrap());
    let tokens = zhongtai_api::admin::AdminTokens::parse(
        &format!("operator = \"{TOKEN}\"\n[departments]\ncivil-affairs = \"{CIVIL_TOKEN}\"\n"),
        "tokens.toml",
    )
    .unwrap();
    let admin = Admin::new(registry, TrustPolicy::default(), tokens);
    let host = setup(Host::with_admin(runtime, Some(admin)).with_audit(audit));
    for deployment in deployments {
        host.install(deployment).unwrap();
    }
    Served {
        host: Arc::new(host),
        _dirs: vec![registry_dir, state, trail],
    }
}

/// Sends `request` to the app (the admin app for `/admin/…`); returns the
/// status and the JSON body.
fn send(host: &Arc<Host>, request: Request<Body>) -> (StatusCode, Json) {
    let app = if request.uri().path().starts_with("/admin/") {
        zhongtai_api::admin_app(host.clone())
    } else {
        zhongtai_api::app(host.clone())
    };
    send_to(app, request)
}

/// Sends `request` to `app`; returns the status and the JSON body.
fn send_to(app: axum::Router, request: Request<Body>) -> (StatusCode, Json) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = app.oneshot(request).await.unwrap();
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
fn the_host_makes_request_ids_and_keeps_the_clients_beside_them() {
    let served = serve();
    let mut given = request("POST", "/civil-affairs/count", "");
    given
        .headers_mut()
        .insert("x-request-id", "case-2026-0042".parse().unwrap());
    let (status, body) = send(&served.host, given);
    assert_eq!(status, StatusCode::OK, "{body}");
    let made = body["request"].as_str().unwrap().to_owned();
    assert_eq!(made.len(), 32, "{made}");

    // Another request claiming the same id gets its own, too: the trail
    // cannot be made to mix two requests under one id.
    let mut again = request("POST", "/civil-affairs/count", "");
    again
        .headers_mut()
        .insert("x-request-id", "case-2026-0042".parse().unwrap());
    let (_, body) = send(&served.host, again);
    assert_ne!(body["request"], made);

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

    // The client's id finds both requests; the host's finds one.
    let audit = served.host.audit().unwrap();
    let trail = Trail::read(audit.dir()).unwrap();
    let by_client = trail.select(&Filter {
        request: Some("case-2026-0042".into()),
        ..Filter::default()
    });
    assert_eq!(by_client.len(), 2);
    let by_host = trail.select(&Filter {
        request: Some(made.clone()),
        ..Filter::default()
    });
    assert_eq!(by_host.len(), 1);
    assert_eq!(by_host[0].entry.function.as_deref(), Some("count"));
    assert_eq!(
        by_host[0].entry.client_request.as_deref(),
        Some("case-2026-0042")
    );
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

fn with_token(mut request: Request<Body>, token: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[test]
fn the_public_address_serves_no_admin_api() {
    let served = serve();
    let (status, body) = send_to(
        zhongtai_api::app(served.host.clone()),
        with_token(request("GET", "/admin/v1/departments", ""), TOKEN),
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = send_to(
        zhongtai_api::admin_app(served.host.clone()),
        request("GET", "/civil-affairs/hello/x", ""),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn a_departments_token_changes_that_department_only() {
    let served = serve();
    let as_civil = |method: &str, uri: &str| {
        send(
            &served.host,
            with_token(request(method, uri, ""), CIVIL_TOKEN),
        )
    };
    // Its own rollback passes the token check (there is nothing to roll
    // back to yet); another department's is forbidden.
    let (status, body) = as_civil("POST", "/admin/v1/departments/civil-affairs/rollback");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "no-previous-deployment");
    let (status, body) = as_civil("POST", "/admin/v1/departments/public-security/rollback");
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = as_civil("POST", "/admin/v1/departments/public-security/manifest");
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The policy and the trail are the operator's.
    for uri in [
        "/admin/v1/policy",
        "/admin/v1/audit",
        "/admin/v1/audit/verify",
    ] {
        let (status, body) = as_civil("GET", uri);
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {body}");
    }
    // The list shows its own department only.
    let (status, body) = as_civil("GET", "/admin/v1/departments");
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&String> = body["departments"].as_object().unwrap().keys().collect();
    assert_eq!(listed, ["civil-affairs"]);
    // The forbidden attempts are recorded (one record per client, action
    // and minute), with who tried.
    let refused: Vec<(String, String)> = Trail::read(served.host.audit().unwrap().dir())
        .unwrap()
        .select(&Filter::default())
        .into_iter()
        .filter(|r| r.entry.outcome == "refused")
        .map(|r| {
            (
                r.entry.action.unwrap_or_default(),
                r.entry.case.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("rollback".to_owned(), "forbidden".to_owned()),
            ("deploy".to_owned(), "forbidden".to_owned())
        ]
    );
}

#[test]
fn guessing_admin_tokens_cannot_fill_the_trail() {
    let served = serve();
    let trail = served
        .host
        .audit()
        .unwrap()
        .dir()
        .join(zhongtai_audit::TRAIL_FILE);
    let before = std::fs::metadata(&trail).unwrap().len();
    let long_name = "x".repeat(60_000);
    for attempt in 0..20 {
        let department = if attempt % 2 == 0 {
            "civil-affairs"
        } else {
            &long_name
        };
        let uri = format!("/admin/v1/departments/{department}/rollback");
        let (status, _) = send(
            &served.host,
            with_token(request("POST", &uri, ""), &format!("guess-{attempt}")),
        );
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let grown = std::fs::metadata(&trail).unwrap().len() - before;
    // One record for the first refusal of the minute; the 60 KB name is
    // never written.
    assert!(grown < 2_000, "20 refused requests added {grown} bytes");
    let refused: Vec<_> = Trail::read(served.host.audit().unwrap().dir())
        .unwrap()
        .select(&Filter::default())
        .into_iter()
        .filter(|r| r.entry.outcome == "refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].entry.department.as_deref(),
        Some("civil-affairs")
    );
}

#[test]
fn a_body_is_converted_only_where_the_service_reads_it() {
    let served = serve();
    // 60,000 objects the service never reads: skipped, not converted.
    let padding = vec![json!({"k": "v"}); 60_000];
    let body = json!({"a": 2, "b": 3, "padding": padding}).to_string();
    assert!(body.len() > 600_000);
    let (status, answer) = send(&served.host, request("POST", "/civil-affairs/sum", &body));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!(5));
    // The same objects in a field it reads are refused, by count.
    let body = json!({"a": padding, "b": 3}).to_string();
    let (status, answer) = send(&served.host, request("POST", "/civil-affairs/sum", &body));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 10000 values"),
        "{answer}"
    );
    // A body that is not JSON is refused even where nothing is read.
    let (status, _) = send(
        &served.host,
        request("POST", "/civil-affairs/count", "{not json"),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A department at its limit of requests in progress is answered `busy`
/// at once; another department is served meanwhile, and the department
/// itself again once its requests end.
#[test]
fn a_department_at_its_limit_is_refused_while_others_are_served() {
    let limits = RuntimeLimits {
        deadline: std::time::Duration::from_millis(1_500),
        ..RuntimeLimits::default()
    };
    let served = serve_with(limits, &["civil-affairs", "education"], |host| {
        host.with_department_limit(2)
    });
    let host = served.host.clone();
    two_workers().block_on(async move {
        let spin = || {
            let app = zhongtai_api::app(host.clone());
            tokio::spawn(async move {
                app.oneshot(request("POST", "/civil-affairs/spin", ""))
                    .await
                    .unwrap()
                    .status()
            })
        };
        let spinning = [spin(), spin()];
        while host.gates().in_progress("civil-affairs") < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let sum = |department: &str| {
            request("POST", &format!("/{department}/sum"), r#"{"a": 2, "b": 3}"#)
        };
        let refused = zhongtai_api::app(host.clone())
            .oneshot(sum("civil-affairs"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()["retry-after"], "1");
        let body = refused.into_body().collect().await.unwrap().to_bytes();
        let body: Json = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "department-busy", "{body}");
        assert_eq!(
            body["error"]["message"],
            "civil-affairs already has as many requests in progress as one department may have at once (2); try again shortly"
        );
        let other = zhongtai_api::app(host.clone())
            .oneshot(sum("education"))
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK);
        for spinning in spinning {
            assert_eq!(spinning.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
        }
        assert_eq!(host.gates().in_progress("civil-affairs"), 0);
        let again = zhongtai_api::app(host.clone())
            .oneshot(sum("civil-affairs"))
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK);
    });
}

/// A call that runs long gives its place on the step pool up: with a
/// single place, another department's request is answered while a guest
/// loops until its deadline, not after it.
#[test]
fn a_looping_call_does_not_keep_the_step_pool_from_others() {
    let limits = RuntimeLimits {
        deadline: std::time::Duration::from_millis(1_500),
        // Only the pool's own rule frees the place: no demotion.
        demote_after: None,
        step_threads: 1,
        ..RuntimeLimits::default()
    };
    let served = serve_with(limits, &["civil-affairs", "education"], |host| host);
    let host = served.host.clone();
    two_workers().block_on(async move {
        let app = zhongtai_api::app(host.clone());
        let started = std::time::Instant::now();
        let spinning = tokio::spawn(async move {
            app.oneshot(request("POST", "/civil-affairs/spin", ""))
                .await
                .unwrap()
                .status()
        });
        while host.gates().in_progress("civil-affairs") < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let sum = zhongtai_api::app(host.clone())
            .oneshot(request("POST", "/education/sum", r#"{"a": 2, "b": 3}"#))
            .await
            .unwrap();
        assert_eq!(sum.status(), StatusCode::OK);
        let answered = started.elapsed();
        assert!(
            answered < std::time::Duration::from_millis(1_000),
            "answered after {answered:?}, as if waiting for the loop's deadline"
        );
        assert!(!spinning.is_finished(), "the loop still runs");
        assert_eq!(spinning.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
    });
}

/// A Tokio runtime of two workers, as a host has on this machine, for
/// requests sent at once.
fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
