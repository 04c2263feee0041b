//! OpenTelemetry traces, exported over OTLP (HTTP, protobuf) when the
//! operator configures a collector; off otherwise, at no cost.
//!
//! Each request of a deployed service is one server span, named
//! `<method> /<department><service path>`; a W3C `traceparent` header makes
//! it a child of the caller's span, and the answer carries the request
//! span's own `traceparent` back. Under it, one span per step
//! (`step <name>`, and `step authenticate` for the caller's token) and
//! under each step one per component call (`call <package>/<interface>.<function>`).
//! Every span has the department, the service, the request id — the one
//! the request's audit records carry, which links a trace to its records —
//! and, when it ends, its outcome (`ok`, the error code, or the call's
//! outcome as its audit record says).
//!
//! A [`Trace`] is a span with what is needed to start its children; it
//! travels with the request ([`crate::workflow::RequestData::trace`]) to
//! the blocking thread that runs the steps.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// The tracer of a host and the provider that exports its spans.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Traces")
    }
}

impl Traces {
    /// Spans exported in batches over OTLP/HTTP to `endpoint` (a base URL
    /// such as `http://127.0.0.1:4318`; `/v1/traces` is added), or, without
    /// one, where the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` says. Batching follows the standard
    /// `OTEL_BSP_*` variables. Build it outside any async runtime.
    pub fn otlp(endpoint: Option<&str>) -> anyhow::Result<Self> {
        use opentelemetry_otlp::WithExportConfig as _;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
        if let Some(base) = endpoint {
            let url = format!("{}/v1/traces", base.trim_end_matches('/'));
            exporter = exporter.with_endpoint(url);
        }
        let exporter = exporter
            .build()
            .map_err(|e| anyhow::anyhow!("the OTLP trace exporter: {e}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("zhongtai")
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Self::with_provider(provider))
    }

    /// Spans handed to `provider` (any exporter).
    pub fn with_provider(provider: SdkTracerProvider) -> Self {
        let tracer = provider.tracer("zhongtai");
        Self { provider, tracer }
    }

    /// The span of one request, named `name`: a child of the span the
    /// request's `traceparent` names, if it names one.
    pub fn request(&self, headers: &HeaderMap, name: String, attributes: Vec<KeyValue>) -> Trace {
        let parent = TraceContextPropagator::new().extract(&Headers(headers));
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        Trace {
            tracer: self.tracer.clone(),
            context: parent.with_span(span),
        }
    }

    /// Exports what is left; the host calls this as it stops.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "traces not all exported");
        }
    }
}

/// Reads `traceparent` and `tracestate` from a request's headers.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// One span in progress, and what its children need.
#[derive(Clone)]
pub struct Trace {
    tracer: SdkTracer,
    context: Context,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("span", &self.context.span().span_context())
            .finish()
    }
}

impl Trace {
    /// Starts a span under this one.
    pub fn child(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) -> Trace {
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &self.context);
        Trace {
            tracer: self.tracer.clone(),
            context: self.context.with_span(span),
        }
    }

    /// Names the span anew (once the request's service is known).
    pub fn rename(&self, name: String) {
        self.context.span().update_name(name);
    }

    /// Adds attributes to the span.
    pub fn set(&self, attributes: Vec<KeyValue>) {
        self.context.span().set_attributes(attributes);
    }

    /// Ends the span with `outcome` (`ok`, or what went wrong); `failed`
    /// marks it as an error, with `message`.
    pub fn end(&self, outcome: &str, failed: Option<&str>) {
        let span = self.context.span();
        span.set_attribute(KeyValue::new("zhongtai.outcome", outcome.to_owned()));
        if let Some(message) = failed {
            span.set_status(Status::error(message.to_owned()));
        }
        span.end();
    }

    /// The W3C `traceparent` of this span, for the answer's headers.
    pub fn traceparent(&self) -> Option<String> {
        let mut headers = HashMap::new();
        TraceContextPropagator::new().inject_context(&self.context, &mut headers);
        headers.remove("traceparent")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    #[test]
    fn a_traceparent_makes_the_request_span_its_child_and_steps_nest_under_it() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let traces = Traces::with_provider(provider);
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let request = traces.request(&headers, "GET /d/x".into(), vec![]);
        let step = request.child("step one", vec![KeyValue::new("zhongtai.step", "one")]);
        step.end("ok", None);
        let answer = request.traceparent().unwrap();
        request.end("error", Some("refused"));
        let spans = exporter.get_finished_spans().unwrap();
        let [step, request] = &spans[..] else {
            panic!("{spans:?}")
        };
        assert_eq!(
            request.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(request.parent_span_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(step.parent_span_id, request.span_context.span_id());
        assert!(answer.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(answer.contains(&request.span_context.span_id().to_string()));
        assert_eq!(request.status, Status::error("refused"));
    }
}
