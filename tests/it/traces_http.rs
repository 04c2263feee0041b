//! Traces from a running `zhongtai up` to an OTLP collector in this test
//! process: a span per request, step and component call, the caller's
//! `traceparent` continued, and the request id that links a trace to its
//! audit records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::Value as Json;

use crate::support;
use crate::support::platform::{OPERATOR_TOKEN, Platform};

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct Received {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: i32,
    attributes: BTreeMap<String, String>,
    error: bool,
}

impl Received {
    fn attribute(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

/// An OTLP/HTTP collector (protobuf) on a loopback port, keeping every
/// span it is sent.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    fn start() -> Self {
        let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
        let kept = spans.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new().route(
                    "/v1/traces",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let kept = kept.clone();
                        async move {
                            let request = ExportTraceServiceRequest::decode(body).unwrap();
                            kept.lock().unwrap().extend(flatten(request));
                            (
                                [("content-type", "application/x-protobuf")],
                                ExportTraceServiceResponse::default().encode_to_vec(),
                            )
                        }
                    }),
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { url, spans }
    }

    /// Waits until `enough` holds of the spans of `trace_id`.
    fn trace(&self, trace_id: &str, enough: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans: Vec<Received> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect();
            if enough(&spans) {
                return spans;
            }
            assert!(Instant::now() < deadline, "spans of {trace_id}: {spans:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Received> {
    let mut out = Vec::new();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            for span in scope.spans {
                let attributes = span
                    .attributes
                    .iter()
                    .map(|kv| {
                        let value = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                            Some(AnyValue::StringValue(s)) => s,
                            Some(AnyValue::IntValue(i)) => i.to_string(),
                            Some(AnyValue::BoolValue(b)) => b.to_string(),
                            other => format!("{other:?}"),
                        };
                        (kv.key.clone(), value)
                    })
                    .collect();
                out.push(Received {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent: hex::encode(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes,
                    error: span.status.is_some_and(|s| s.code == 2),
                });
            }
        }
    }
    out
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// GET `path` with headers; status, headers of interest and the body.
fn get(platform: &Platform, path: &str, headers: &[(&str, &str)]) -> (u16, String, String, Json) {
    let mut request = platform.agent.get(format!("{}{path}", platform.url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (traceparent, request_id) = (header("traceparent"), header("x-request-id"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (
        status,
        traceparent,
        request_id,
        serde_json::from_str(&body).unwrap(),
    )
}

#[test]
fn each_request_step_and_call_is_a_span_under_the_callers_trace() {
    let collector = Collector::start();
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start_with_env(
        &support::root().join("examples"),
        data.path(),
        &["--otlp-endpoint", &collector.url],
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    let session = platform.register_and_login(
        "/public-security/citizens",
        "11010519491231002X",
        "Li Lei",
        "tea-and-silk-2026",
    );

    // The caller's trace goes on: the request span is a child of its span.
    let (status, traceparent, request_id, body) = get(
        &platform,
        "/public-security/whoami",
        &[
            ("authorization", &format!("Bearer {session}")),
            ("traceparent", &format!("00-{TRACE_ID}-{PARENT}-01")),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")),
        "the answer carries the request span's traceparent: {traceparent:?}"
    );
    let spans = collector.trace(TRACE_ID, |spans| spans.len() >= 3);
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name}: {spans:#?}"))
    };
    let request = named("GET /public-security/whoami");
    let step = named("step authenticate");
    let call = named("call zhongtai:auth/authn.verify");
    assert_eq!(request.parent, PARENT);
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert!(traceparent.contains(&request.span_id));
    assert_eq!(step.parent, request.span_id);
    assert_eq!(call.parent, step.span_id);
    for span in [request, step, call] {
        assert_eq!(span.attribute("zhongtai.department"), "public-security");
        assert_eq!(span.attribute("zhongtai.service"), "whoami");
        assert_eq!(span.attribute("zhongtai.request_id"), request_id);
        assert_eq!(span.attribute("zhongtai.outcome"), "ok", "{span:?}");
        assert!(!span.error);
    }
    assert_eq!(request.attribute("http.response.status_code"), "200");
    assert_eq!(request.attribute("http.route"), "/public-security/whoami");
    assert_eq!(call.attribute("zhongtai.package"), "zhongtai:auth");
    assert_eq!(call.attribute("zhongtai.function"), "verify");

    // The request id links the trace to the audit record of the call.
    let (status, page) = platform.admin(
        "GET",
        &format!("/admin/v1/audit?request={request_id}"),
        Some(OPERATOR_TOKEN),
        None,
    );
    assert_eq!(status, 200);
    let page: Json = serde_json::from_str(&page).unwrap();
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{page}");
    assert_eq!(records[0]["function"], "verify");

    // Without a traceparent a request starts a trace of its own; a refused
    // call ends its spans with the refusal's code.
    let (status, traceparent, request_id, body) = get(
        &platform,
        "/public-security/whoami",
        &[("authorization", "Bearer not-a-session")],
    );
    assert_eq!(status, 401);
    let trace_id = traceparent.split('-').nth(1).unwrap().to_owned();
    assert_ne!(trace_id, TRACE_ID);
    let spans = collector.trace(&trace_id, |spans| spans.len() >= 3);
    let request = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    assert!(request.parent.is_empty(), "{request:?}");
    assert_eq!(request.attribute("zhongtai.request_id"), request_id);
    assert_eq!(
        request.attribute("zhongtai.outcome"),
        body["error"]["code"].as_str().unwrap()
    );
    assert_eq!(request.attribute("http.response.status_code"), "401");
    let step = spans
        .iter()
        .find(|s| s.name == "step authenticate")
        .unwrap();
    assert_eq!(
        step.attribute("zhongtai.outcome"),
        body["error"]["code"].as_str().unwrap()
    );
    let call = spans.iter().find(|s| s.name.starts_with("call ")).unwrap();
    assert_eq!(call.attribute("zhongtai.outcome"), "error");
}

#[test]
fn every_answer_names_its_audit_records() {
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start(&support::root().join("examples"), data.path());
    let receipt = |token: &str| {
        let response = platform
            .agent
            .get(format!("{}/public-security/whoami", platform.url))
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        (
            header("zhongtai-audit-records"),
            header("x-request-id").unwrap(),
        )
    };
    for _ in 0..3 {
        let (records, request) = receipt("not-a-session");
        let records = records.expect("a receipt on a refused request too");
        let (first, last) = records.split_once('-').unwrap();
        let (first, last): (u64, u64) = (first.parse().unwrap(), last.parse().unwrap());
        assert_eq!(first, last, "whoami makes one call: {records}");
        // The trail holds exactly those records for this request.
        let (status, page) = platform.admin(
            "GET",
            &format!("/admin/v1/audit?request={request}"),
            Some(OPERATOR_TOKEN),
            None,
        );
        assert_eq!(status, 200);
        let page: Json = serde_json::from_str(&page).unwrap();
        let seqs: Vec<u64> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [first]);
    }
    // No records, no receipt: a request that matched no service.
    let response = platform
        .agent
        .get(format!("{}/public-security/nowhere", platform.url))
        .call()
        .unwrap();
    assert!(response.headers().get("zhongtai-audit-records").is_none());
}
