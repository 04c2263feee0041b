//! Prometheus metrics, served at `GET /metrics` on the admin address in the
//! OpenMetrics text format.
//!
//! One [`Metrics`] per host holds every family; the pieces that measure
//! report to it: the server counts each request and its time (in all, and
//! in components) and each component call from the request's audit records
//! ([`Metrics::observe_request`]); the host counts deploys, upgrades,
//! rollbacks and refused deploys; the audit trail's writer reports each
//! sync through [`Metrics::audit_observer`]; the state store is wrapped by
//! [`Metrics::measure_store`] to time each commit; gauges of the runtime
//! (instances in use, calls demoted) are read when scraped.
//!
//! Labels only ever hold names the platform chose — deployed departments
//! and services, packages, versions and functions of deployed components,
//! outcomes and statuses — never text from a request, so a client cannot
//! make the host keep a series of its own: requests that match no service
//! are counted by status alone.

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use zhongtai_audit::{Entry, Kind, SyncObserver, SyncReport};
use zhongtai_runtime::Runtime;
use zhongtai_runtime::state::{KeyPage, KeyValueStore, Mark, Session, StateError, Write};

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A request of a deployed service, by how it was answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    department: String,
    service: String,
    status: u16,
}

/// A deployed service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    department: String,
    service: String,
}

/// A status alone, for requests that matched no service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

/// A function of a deployed component.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    package: String,
    version: String,
    function: String,
}

/// A component call by how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    package: String,
    version: String,
    function: String,
    outcome: String,
}

/// A refusal of a connection or request before routing, by its code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// A department.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DepartmentLabel {
    department: String,
}

/// A change to a department: `deploy`, `upgrade` or `rollback`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    department: String,
    action: String,
}

/// A refused deploy and why: `invalid` (manifest, policy, components),
/// `unrecorded` (the trail could not take its record), `no-registry`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    department: String,
    reason: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds from 0.25 ms to about 8 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Counts from 1 to 4,096, doubling.
fn counts() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

/// Every metric of one host; see the module docs.
pub struct Metrics {
    registry: Registry,
    requests: Family<Answered, Counter>,
    unmatched: Family<StatusLabel, Counter>,
    request_seconds: Histograms<ServiceLabels>,
    component_seconds: Histograms<ServiceLabels>,
    calls: Family<CallLabels, Counter>,
    call_seconds: Histograms<FunctionLabels>,
    department_busy: Family<DepartmentLabel, Counter>,
    connection_refusals: Family<ReasonLabel, Counter>,
    changes: Family<ChangeLabels, Counter>,
    refused_deploys: Family<RefusalLabels, Counter>,
    audit_sync_seconds: Histogram,
    audit_sync_records: Histogram,
    audit_sync_failures: Counter,
    state_commit_seconds: Histogram,
    state_commit_writes: Histogram,
    state_commit_failures: Counter,
    state_flush_wait_seconds: Histogram,
    runtime: Arc<RuntimeGauges>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, all empty.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("zhongtai");
        let requests = Family::<Answered, Counter>::default();
        registry.register(
            "requests",
            "Requests of deployed services, by department, service and status",
            requests.clone(),
        );
        let unmatched = Family::<StatusLabel, Counter>::default();
        registry.register(
            "unmatched_requests",
            "Requests that matched no deployed service (no such department, path or method), by status",
            unmatched.clone(),
        );
        let request_seconds: Histograms<ServiceLabels> = Family::new_with_constructor(seconds);
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its answer, audit record written",
            Unit::Seconds,
            request_seconds.clone(),
        );
        let component_seconds: Histograms<ServiceLabels> = Family::new_with_constructor(seconds);
        registry.register_with_unit(
            "request_component_duration",
            "Time a request spent in component calls",
            Unit::Seconds,
            component_seconds.clone(),
        );
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "component_calls",
            "Component calls made by services, by package, version, function and outcome (ok, error, refused, trap, timeout, memory-limit, busy, …)",
            calls.clone(),
        );
        let call_seconds: Histograms<FunctionLabels> = Family::new_with_constructor(seconds);
        registry.register_with_unit(
            "component_call_duration",
            "Time of one component call, instantiation included",
            Unit::Seconds,
            call_seconds.clone(),
        );
        let department_busy = Family::<DepartmentLabel, Counter>::default();
        registry.register(
            "department_busy",
            "Requests refused because their department had as many in progress as it may (503 department-busy)",
            department_busy.clone(),
        );
        let connection_refusals = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "connection_refusals",
            "Connections and requests refused before routing, by reason: too-many-connections, busy (requests in flight), request-timeout, body-timeout, body-too-large",
            connection_refusals.clone(),
        );
        let changes = Family::<ChangeLabels, Counter>::default();
        registry.register(
            "department_changes",
            "Deploys, upgrades and rollbacks put in service, by department and action",
            changes.clone(),
        );
        let refused_deploys = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refused_deploys",
            "Deploys refused, by department and reason (invalid, unrecorded, no-registry)",
            refused_deploys.clone(),
        );
        let audit_sync_seconds = seconds();
        registry.register_with_unit(
            "audit_sync_duration",
            "Time of one write and fdatasync of the audit trail",
            Unit::Seconds,
            audit_sync_seconds.clone(),
        );
        let audit_sync_records = counts();
        registry.register(
            "audit_sync_records",
            "Records made durable by one sync of the audit trail",
            audit_sync_records.clone(),
        );
        let audit_sync_failures = Counter::default();
        registry.register(
            "audit_sync_failures",
            "Writes of the audit trail that failed (their requests were refused)",
            audit_sync_failures.clone(),
        );
        let state_commit_seconds = seconds();
        registry.register_with_unit(
            "state_commit_duration",
            "Time to apply one commit of component state: until it is durable on PostgreSQL; \
             until it is written to the log on the embedded store, whose flush follows \
             (zhongtai_state_flush_wait_duration_seconds)",
            Unit::Seconds,
            state_commit_seconds.clone(),
        );
        let state_commit_writes = counts();
        registry.register(
            "state_commit_writes",
            "Keys set or deleted by one commit of component state",
            state_commit_writes.clone(),
        );
        let state_commit_failures = Counter::default();
        registry.register(
            "state_commit_failures",
            "Commits of component state that failed",
            state_commit_failures.clone(),
        );
        let state_flush_wait_seconds = seconds();
        registry.register_with_unit(
            "state_flush_wait_duration",
            "Time a call waited, after its commit, for the state it wrote or read to be \
             flushed to disk (embedded store; one flush serves every commit before it)",
            Unit::Seconds,
            state_flush_wait_seconds.clone(),
        );
        let runtime = Arc::new(RuntimeGauges::default());
        registry.register_collector(Box::new(runtime.clone()));
        Self {
            registry,
            requests,
            unmatched,
            request_seconds,
            component_seconds,
            calls,
            call_seconds,
            department_busy,
            connection_refusals,
            changes,
            refused_deploys,
            audit_sync_seconds,
            audit_sync_records,
            audit_sync_failures,
            state_commit_seconds,
            state_commit_writes,
            state_commit_failures,
            state_flush_wait_seconds,
            runtime,
        }
    }

    /// Reads the instance and demotion gauges of `runtime` at each scrape
    /// (without keeping it alive).
    pub fn watch_runtime(&self, runtime: &Arc<Runtime>) {
        let _ = self.runtime.runtime.set(Arc::downgrade(runtime));
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Counts a request that matched `service` of `department` and was
    /// answered with `status` after `total`, of which `components` in
    /// component calls.
    pub fn observe_request(
        &self,
        department: &str,
        service: &str,
        status: u16,
        total: Duration,
        components: Duration,
    ) {
        self.requests
            .get_or_create(&Answered {
                department: department.to_owned(),
                service: service.to_owned(),
                status,
            })
            .inc();
        let labels = ServiceLabels {
            department: department.to_owned(),
            service: service.to_owned(),
        };
        self.request_seconds
            .get_or_create(&labels)
            .observe(total.as_secs_f64());
        self.component_seconds
            .get_or_create(&labels)
            .observe(components.as_secs_f64());
    }

    /// Counts the component calls a request's audit `records` describe
    /// (records of other kinds are passed over).
    pub fn observe_calls(&self, records: &[Entry]) {
        for record in records.iter().filter(|r| r.kind == Kind::Call) {
            let name = |field: &Option<String>| field.clone().unwrap_or_default();
            let function = FunctionLabels {
                package: name(&record.package),
                version: name(&record.version),
                function: name(&record.function),
            };
            self.call_seconds
                .get_or_create(&function)
                .observe(record.duration_us as f64 / 1e6);
            self.calls
                .get_or_create(&CallLabels {
                    package: function.package,
                    version: function.version,
                    function: function.function,
                    outcome: record.outcome.clone(),
                })
                .inc();
        }
    }

    /// Counts a request that matched no service, answered with `status`.
    pub fn observe_unmatched(&self, status: u16) {
        self.unmatched.get_or_create(&StatusLabel { status }).inc();
    }

    /// Counts a request refused because `department` was at its limit.
    pub fn department_busy(&self, department: &str) {
        self.department_busy
            .get_or_create(&DepartmentLabel {
                department: department.to_owned(),
            })
            .inc();
    }

    /// What to give [`crate::ServeLimits::refused`] so that its refusals
    /// are counted here.
    pub fn connection_refusals(self: &Arc<Self>) -> crate::connections::Refused {
        let metrics = Arc::downgrade(self);
        crate::connections::Refused(Arc::new(move |reason| {
            if let Some(metrics) = metrics.upgrade() {
                metrics
                    .connection_refusals
                    .get_or_create(&ReasonLabel { reason })
                    .inc();
            }
        }))
    }

    /// Counts a deploy, upgrade or rollback (`action`) of `department`
    /// put in service.
    pub fn changed(&self, department: &str, action: &str) {
        self.changes
            .get_or_create(&ChangeLabels {
                department: department.to_owned(),
                action: action.to_owned(),
            })
            .inc();
    }

    /// Counts a refused deploy of `department` (a valid department name).
    pub fn refused_deploy(&self, department: &str, reason: &str) {
        self.refused_deploys
            .get_or_create(&RefusalLabels {
                department: department.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts one write of the audit trail.
    pub fn observe_audit_sync(&self, report: SyncReport) {
        if !report.ok {
            self.audit_sync_failures.inc();
            return;
        }
        self.audit_sync_seconds
            .observe(report.duration.as_secs_f64());
        self.audit_sync_records.observe(report.records as f64);
    }

    /// What to give the audit trail's options so that it reports each
    /// sync here.
    pub fn audit_observer(self: &Arc<Self>) -> SyncObserver {
        let metrics = Arc::downgrade(self);
        SyncObserver(Arc::new(move |report| {
            if let Some(metrics) = metrics.upgrade() {
                metrics.observe_audit_sync(report);
            }
        }))
    }

    /// `store`, with every commit timed and counted here.
    pub fn measure_store(
        self: &Arc<Self>,
        store: Arc<dyn KeyValueStore>,
    ) -> Arc<dyn KeyValueStore> {
        Arc::new(MeasuredStore {
            inner: store,
            metrics: self.clone(),
        })
    }

    fn observe_commit<T>(&self, writes: usize, started: Instant, result: &Result<T, StateError>) {
        if result.is_err() {
            self.state_commit_failures.inc();
            return;
        }
        self.state_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.state_commit_writes.observe(writes as f64);
    }
}

/// Gauges read from the runtime when scraped.
#[derive(Debug, Default)]
struct RuntimeGauges {
    runtime: OnceLock<Weak<Runtime>>,
}

impl Collector for RuntimeGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(runtime) = self.runtime.get().and_then(Weak::upgrade) else {
            return Ok(());
        };
        read_at_scrape(
            &mut encoder,
            "instances_in_use",
            "Component instances alive now",
            ConstGauge::new(runtime.instances_in_use() as i64),
        )?;
        read_at_scrape(
            &mut encoder,
            "pool_resident_bytes",
            "Memory idle instance slots keep resident, zeroed, for the next instance",
            ConstGauge::new(runtime.pool_resident_bytes() as i64),
        )?;
        read_at_scrape(
            &mut encoder,
            "instances_max",
            "Component instances that may be alive at once; beyond them calls are refused as busy",
            ConstGauge::new(runtime.limits().max_concurrent_instances as i64),
        )?;
        read_at_scrape(
            &mut encoder,
            "demoted_calls",
            "Calls that went on, or started, at idle CPU priority because they ran long",
            ConstCounter::new(runtime.demoted_calls()),
        )?;
        Ok(())
    }
}

/// Encodes `metric`, a value read from the runtime for this scrape, as
/// `name` with `help`.
fn read_at_scrape(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A state store whose commits are timed (see [`Metrics::measure_store`]).
struct MeasuredStore {
    inner: Arc<dyn KeyValueStore>,
    metrics: Arc<Metrics>,
}

impl KeyValueStore for MeasuredStore {
    fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(bucket, key)
    }

    fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError> {
        self.inner.list_keys(bucket, cursor, limit)
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError> {
        self.inner.increment(bucket, key, delta)
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StateError> {
        let (count, started) = (writes.len(), Instant::now());
        let result = self.inner.commit(writes);
        self.metrics.observe_commit(count, started, &result);
        result
    }

    fn apply(&self, writes: Vec<Write>) -> Result<Mark, StateError> {
        let (count, started) = (writes.len(), Instant::now());
        let result = self.inner.apply(writes);
        self.metrics.observe_commit(count, started, &result);
        result
    }

    fn applied_mark(&self, package: &str) -> Mark {
        self.inner.applied_mark(package)
    }

    fn wait_durable(&self, mark: Mark) -> Result<(), StateError> {
        let started = Instant::now();
        let result = self.inner.wait_durable(mark);
        if result.is_ok() {
            self.metrics
                .state_flush_wait_seconds
                .observe(started.elapsed().as_secs_f64());
        } else {
            self.metrics.state_commit_failures.inc();
        }
        result
    }

    fn session(self: Arc<Self>, deadline: Instant) -> Result<Box<dyn Session>, StateError> {
        Ok(Box::new(MeasuredSession {
            inner: self.inner.clone().session(deadline)?,
            metrics: self.metrics.clone(),
        }))
    }
}

/// A session whose commit is timed.
struct MeasuredSession {
    inner: Box<dyn Session>,
    metrics: Arc<Metrics>,
}

impl Session for MeasuredSession {
    fn get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(bucket, key)
    }

    fn list_keys(
        &mut self,
        bucket: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<KeyPage, StateError> {
        self.inner.list_keys(bucket, cursor, limit)
    }

    fn increment(&mut self, bucket: &str, key: &str, delta: u64) -> Result<u64, StateError> {
        self.inner.increment(bucket, key, delta)
    }

    fn lock(&mut self, name: &str, deadline: Instant) -> Result<bool, StateError> {
        self.inner.lock(name, deadline)
    }

    fn commit(&mut self, writes: Vec<Write>) -> Result<(), StateError> {
        let (count, started) = (writes.len(), Instant::now());
        let result = self.inner.commit(writes);
        self.metrics.observe_commit(count, started, &result);
        result
    }

    fn apply(&mut self, writes: Vec<Write>) -> Result<Mark, StateError> {
        let (count, started) = (writes.len(), Instant::now());
        let result = self.inner.apply(writes);
        self.metrics.observe_commit(count, started, &result);
        result
    }

    fn unlock_all(&mut self) {
        self.inner.unlock_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, start: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(start))
    }

    #[test]
    fn requests_and_calls_are_counted_by_their_labels() {
        let metrics = Metrics::new();
        let mut call = Entry::new(Kind::Call);
        call.package = Some("zhongtai:auth".into());
        call.version = Some("1.2.0".into());
        call.function = Some("verify".into());
        call.outcome = "error".into();
        call.duration_us = 1500;
        let admin = Entry::new(Kind::Admin);
        for _ in 0..3 {
            metrics.observe_request(
                "public-security",
                "whoami",
                401,
                Duration::from_millis(3),
                Duration::from_millis(2),
            );
            metrics.observe_calls(&[call.clone(), admin.clone()]);
        }
        metrics.observe_unmatched(404);
        let text = metrics.encode();
        assert_eq!(
            line(&text, "zhongtai_requests_total{").unwrap(),
            r#"zhongtai_requests_total{department="public-security",service="whoami",status="401"} 3"#
        );
        assert_eq!(
            line(&text, "zhongtai_component_calls_total{").unwrap(),
            r#"zhongtai_component_calls_total{package="zhongtai:auth",version="1.2.0",function="verify",outcome="error"} 3"#
        );
        assert!(text.contains(
            r#"zhongtai_component_call_duration_seconds_count{package="zhongtai:auth",version="1.2.0",function="verify"} 3"#
        ));
        assert!(text.contains(r#"zhongtai_unmatched_requests_total{status="404"} 1"#));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn commits_through_a_session_or_the_store_are_timed_once() {
        let metrics = Arc::new(Metrics::new());
        let store = metrics.measure_store(Arc::new(
            zhongtai_runtime::state::SqliteStore::temporary().unwrap(),
        ));
        store.set("b", "k", b"v").unwrap();
        let mut session = store
            .clone()
            .session(Instant::now() + Duration::from_secs(1))
            .unwrap();
        let write = |key: &str| Write {
            bucket: "b".into(),
            key: key.into(),
            value: Some(b"w".to_vec()),
        };
        session.commit(vec![write("x"), write("y")]).unwrap();
        assert_eq!(session.get("b", "y").unwrap().as_deref(), Some(&b"w"[..]));
        let text = metrics.encode();
        assert!(
            text.contains("zhongtai_state_commit_writes_count 2\n"),
            "{text}"
        );
        assert!(
            text.contains("zhongtai_state_commit_writes_sum 3.0\n"),
            "{text}"
        );
    }
}
