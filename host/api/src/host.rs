//! The running platform: the runtime, the deployed departments with their
//! recent history, the admin settings and the audit trail. The server
//! ([`crate::server`]) answers requests from it; the admin API
//! ([`crate::admin`]) and `zhongtai up` change what it serves.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{Value as Json, json};
use zhongtai_audit::{AuditError, AuditLog, Entry, Kind};
use zhongtai_runtime::{Runtime, Slug};

use zhongtai_registry::{Registry, TrustPolicy};

use zhongtai_manifest::lock::Lock;
use zhongtai_manifest::{Checked, ManifestErrors, Policy};

use crate::deploy::Deployment;

/// What the admin API needs besides the host.
pub struct Admin {
    /// Where components come from.
    pub registry: Arc<dyn Registry>,
    /// Whose components are accepted.
    pub trust: TrustPolicy,
    /// Who may use the admin API; without any token it refuses everything.
    pub tokens: crate::admin::AdminTokens,
    /// Refused admin requests, recorded once per client and window.
    pub(crate) refusals: crate::admin::Refusals,
    /// Logged-in sessions of the web console.
    pub(crate) sessions: crate::console::Sessions,
}

impl Admin {
    /// The admin settings: components from `registry` signed as `trust`
    /// requires, the API open to holders of `tokens`.
    pub fn new(
        registry: Arc<dyn Registry>,
        trust: TrustPolicy,
        tokens: crate::admin::AdminTokens,
    ) -> Self {
        Self {
            registry,
            trust,
            tokens,
            refusals: crate::admin::Refusals::default(),
            sessions: crate::console::Sessions::default(),
        }
    }
}

/// A department's deployments, oldest first, with their revisions; the
/// last is in service.
type History = Vec<(u64, Arc<Deployment>)>;

/// How many earlier deployments of a department are kept for rollback.
pub const KEPT_DEPLOYMENTS: usize = 8;

/// The running platform: the runtime and the deployed departments, each
/// with its recent history (the last entry is in service).
pub struct Host {
    runtime: Arc<Runtime>,
    deployments: RwLock<BTreeMap<Slug, History>>,
    revisions: AtomicU64,
    admin: Option<Admin>,
    audit: Option<Arc<AuditLog>>,
    /// The operator's policy and its text, for deploys.
    policy: RwLock<(String, Arc<Policy>)>,
    /// Proxies whose `x-forwarded-for` is believed.
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Deployments shared with other hosts, when several share a database.
    shared: Option<Arc<crate::shared::SharedDeployments>>,
    /// Free space where the host writes, when watched.
    storage: Option<crate::storage::StorageWatch>,
    /// Requests in progress per department, each held to a limit.
    gates: crate::admission::DepartmentGates,
    /// What `/metrics` serves.
    metrics: Arc<crate::metrics::Metrics>,
    /// Where spans go, when traces are on.
    traces: Option<Arc<crate::traces::Traces>>,
}

/// Who an operator action is recorded as: whoever holds the admin token or
/// started the host.
pub const OPERATOR: &str = "operator";

impl Host {
    /// A host with nothing deployed yet; with `admin`, its admin API
    /// deploys from `admin.registry`.
    pub fn with_admin(runtime: Arc<Runtime>, admin: Option<Admin>) -> Self {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        metrics.watch_runtime(&runtime);
        Self {
            metrics,
            traces: None,
            runtime,
            deployments: RwLock::new(BTreeMap::new()),
            revisions: AtomicU64::new(0),
            admin,
            audit: None,
            policy: RwLock::new((String::new(), Arc::new(Policy::default()))),
            trusted_proxies: Vec::new(),
            shared: None,
            storage: None,
            gates: crate::admission::DepartmentGates::default(),
        }
    }

    /// Holds each department to `limit` requests in progress at once; the
    /// next is answered `503 department-busy`.
    pub fn with_department_limit(mut self, limit: usize) -> Self {
        self.gates = crate::admission::DepartmentGates::new(limit);
        self
    }

    /// Counts into `metrics` (made beforehand, so that the audit trail
    /// and the state store could be given to it) instead of metrics of
    /// its own.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        metrics.watch_runtime(&self.runtime);
        self.metrics = metrics;
        self
    }

    /// Traces each request, its steps and its calls into `traces`.
    pub fn with_traces(mut self, traces: Arc<crate::traces::Traces>) -> Self {
        self.traces = Some(traces);
        self
    }

    /// Where spans go, when traces are on.
    pub fn traces(&self) -> Option<&Arc<crate::traces::Traces>> {
        self.traces.as_ref()
    }

    /// The host's metrics.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Requests in progress per department.
    pub fn gates(&self) -> &crate::admission::DepartmentGates {
        &self.gates
    }

    /// Deploys through the admin API are checked against `policy` (whose
    /// text is `text`); without one, nothing is granted.
    pub fn with_policy(self, text: String, policy: Policy) -> Self {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = (text, Arc::new(policy));
        self
    }

    /// Announces admin deploys and rollbacks to the other hosts through
    /// `shared` (and follows theirs, once [`SharedDeployments::follow`] runs).
    ///
    /// [`SharedDeployments::follow`]: crate::shared::SharedDeployments::follow
    pub fn with_shared(mut self, shared: Arc<crate::shared::SharedDeployments>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Refuses writing work while a filesystem `storage` watches is
    /// nearly full (see [`crate::storage`]).
    pub fn with_storage_watch(mut self, storage: crate::storage::StorageWatch) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Refuses writing work (503 `storage-low`) while storage is nearly
    /// full; always passes when storage is not watched.
    pub fn check_storage(&self) -> Result<(), crate::ApiError> {
        self.storage
            .as_ref()
            .map_or(Ok(()), crate::storage::StorageWatch::check)
    }

    /// The deployments shared with other hosts, if any.
    pub fn shared(&self) -> Option<&Arc<crate::shared::SharedDeployments>> {
        self.shared.as_ref()
    }

    /// Believes `x-forwarded-for` from these peers (the load balancers in
    /// front of the host) when telling who the client is.
    pub fn with_trusted_proxies(mut self, proxies: Vec<std::net::IpAddr>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The client of a request with these `extensions` (its peer, as the
    /// server records it) and `headers` (its `x-forwarded-for`); see
    /// [`client_address`].
    pub fn request_client(
        &self,
        extensions: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
    ) -> String {
        let peer = extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        let forwarded_for = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        self.client_address(peer, forwarded_for)
    }

    /// The client of a request from `peer` carrying `forwarded_for`; see
    /// [`client_address`].
    pub fn client_address(
        &self,
        peer: Option<std::net::IpAddr>,
        forwarded_for: Option<&str>,
    ) -> String {
        client_address(&self.trusted_proxies, peer, forwarded_for)
    }

    /// The policy in force and its text.
    pub fn policy(&self) -> (String, Arc<Policy>) {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the policy (text and parsed); recorded before it takes
    /// effect. Departments already deployed keep running; the policy
    /// applies to every later deploy.
    pub fn replace_policy(&self, text: String, policy: Policy) -> Result<(), AuditError> {
        let mut entry = admin_entry("replace-policy", None);
        entry.args = Some(zhongtai_audit::sha256_hex(text.as_bytes()));
        self.record(entry)?;
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = (text, Arc::new(policy));
        Ok(())
    }

    /// Records every call and operator action in `audit`.
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The audit trail, if the host keeps one.
    pub fn audit(&self) -> Option<&Arc<AuditLog>> {
        self.audit.as_ref()
    }

    /// Records an operator action (no-op without an audit trail).
    pub fn record(&self, entry: Entry) -> Result<(), AuditError> {
        match &self.audit {
            Some(audit) => audit.append(entry).map(|_| ()),
            None => Ok(()),
        }
    }

    /// The admin settings: registry, trust and tokens, when the host has an
    /// admin API.
    pub fn admin(&self) -> Option<&Admin> {
        self.admin.as_ref()
    }

    /// The runtime the host's components run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Deploys a checked manifest (from `file`, pinned by `lock` when given)
    /// with components from the admin registry and puts it in service:
    /// its grants checked against the policy in force, its components
    /// resolved, fetched, loaded and checked, the deployment recorded and
    /// installed. Every deploy — at start and through the admin API — goes
    /// through here, so none skips the policy. Returns the revision.
    pub fn deploy_manifest(
        &self,
        manifest: Checked,
        file: &str,
        lock: Option<&Lock>,
        source_hash: String,
    ) -> Result<u64, DeployRefusal> {
        self.deploy_manifest_by(manifest, file, lock, source_hash, OPERATOR)
    }

    /// [`Host::deploy_manifest`] on behalf of `by` (the operator, or a
    /// department's admin token), as its audit record says.
    pub fn deploy_manifest_by(
        &self,
        manifest: Checked,
        file: &str,
        lock: Option<&Lock>,
        source_hash: String,
        by: &str,
    ) -> Result<u64, DeployRefusal> {
        let department = manifest.department.to_string();
        let deployed = self.try_deploy(manifest, file, lock, source_hash, by);
        if let Err(refusal) = &deployed {
            let reason = match refusal {
                DeployRefusal::Invalid(_) => "invalid",
                DeployRefusal::Unrecorded(_) => "unrecorded",
                DeployRefusal::NoRegistry => "no-registry",
            };
            self.metrics.refused_deploy(&department, reason);
        }
        deployed
    }

    fn try_deploy(
        &self,
        manifest: Checked,
        file: &str,
        lock: Option<&Lock>,
        source_hash: String,
        by: &str,
    ) -> Result<u64, DeployRefusal> {
        let admin = self.admin.as_ref().ok_or(DeployRefusal::NoRegistry)?;
        self.policy()
            .1
            .check(&manifest, file)
            .map_err(DeployRefusal::Invalid)?;
        let mut deployment = crate::deploy(
            manifest,
            file,
            lock,
            admin.registry.as_ref(),
            &admin.trust,
            &self.runtime,
        )
        .map_err(DeployRefusal::Invalid)?;
        deployment.source_hash = Some(source_hash);
        deployment.deployed_by = Some(by.to_owned());
        self.install(deployment).map_err(DeployRefusal::Unrecorded)
    }

    /// Puts `deployment` in service for its department and returns its
    /// revision; requests already running finish on the one they started
    /// with. The action (`deploy`, or `upgrade` when it replaces one) is
    /// recorded before it takes effect; when it cannot be recorded nothing
    /// changes.
    pub fn install(&self, deployment: Deployment) -> Result<u64, AuditError> {
        let department = deployment.manifest.department.clone();
        let mut deployments = self.deployments.write().unwrap_or_else(|e| e.into_inner());
        let revision = self.revisions.fetch_add(1, Ordering::Relaxed) + 1;
        let replaces = deployments.get(&department).is_some_and(|h| !h.is_empty());
        let pins: Vec<String> = deployment
            .components
            .iter()
            .map(|(alias, c)| format!("{alias}={}@{} ({})", c.spec.package, c.version, c.digest))
            .collect();
        let action = if replaces { "upgrade" } else { "deploy" };
        let mut entry = admin_entry(action, Some(department.as_str()));
        entry.detail = Some(format!("revision {revision}: {}", pins.join(", ")));
        entry.args = deployment.source_hash.clone();
        if let Some(by) = &deployment.deployed_by {
            entry.subject = Some(by.clone());
        }
        self.record(entry)?;
        self.metrics.changed(department.as_str(), action);
        let history = deployments.entry(department).or_default();
        history.push((revision, Arc::new(deployment)));
        if history.len() > KEPT_DEPLOYMENTS {
            history.remove(0);
        }
        Ok(revision)
    }

    /// Returns `department` to its previous deployment; its revision, or
    /// `None` when there is none. Recorded before it takes effect.
    pub fn rollback(&self, department: &str) -> Result<Option<u64>, AuditError> {
        self.rollback_by(department, OPERATOR)
    }

    /// [`Host::rollback`] on behalf of `by`, as its audit record says.
    pub fn rollback_by(&self, department: &str, by: &str) -> Result<Option<u64>, AuditError> {
        let mut deployments = self.deployments.write().unwrap_or_else(|e| e.into_inner());
        let Some(history) = deployments.get_mut(department) else {
            return Ok(None);
        };
        if history.len() < 2 {
            return Ok(None);
        }
        let from = history[history.len() - 1].0;
        let to = history[history.len() - 2].0;
        let mut entry = admin_entry("rollback", Some(department));
        entry.subject = Some(by.to_owned());
        entry.detail = Some(format!("revision {from} back to revision {to}"));
        self.record(entry)?;
        self.metrics.changed(department, "rollback");
        history.pop();
        Ok(Some(to))
    }

    /// The departments in service.
    pub fn departments(&self) -> Vec<String> {
        self.deployments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(ToString::to_string)
            .collect()
    }

    /// Departments with their revision in service and component versions.
    pub fn describe(&self) -> Json {
        let deployments = self.deployments.read().unwrap_or_else(|e| e.into_inner());
        let departments: serde_json::Map<String, Json> = deployments
            .iter()
            .filter_map(|(department, history)| {
                let (revision, deployment) = history.last()?;
                let components: serde_json::Map<String, Json> = deployment
                    .components
                    .iter()
                    .map(|(alias, c)| {
                        let described = json!({"package": c.spec.package, "version": c.version.to_string(), "digest": c.digest});
                        (alias.clone(), described)
                    })
                    .collect();
                let described = json!({"revision": revision, "previous": history.len() - 1, "components": components});
                Some((department.to_string(), described))
            })
            .collect();
        json!({ "departments": departments })
    }

    /// The deployments kept for `department`, oldest first, with their
    /// revisions; the last is in service.
    pub fn history(&self, department: &str) -> Vec<(u64, Arc<Deployment>)> {
        self.deployments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(department)
            .cloned()
            .unwrap_or_default()
    }

    /// The deployment in service for `department`.
    pub(crate) fn deployment(&self, department: &str) -> Option<Arc<Deployment>> {
        self.deployments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(department)
            .and_then(|history| history.last().map(|(_, d)| d.clone()))
    }
}

/// Why [`Host::deploy_manifest`] put nothing in service.
#[derive(Debug, thiserror::Error)]
pub enum DeployRefusal {
    /// The manifest failed a check: the policy, its components, its calls.
    #[error("{0}")]
    Invalid(ManifestErrors),
    /// The deploy could not be recorded, so it did not take effect.
    #[error("{0}")]
    Unrecorded(AuditError),
    /// The host was started without a registry to deploy from.
    #[error("this host has no registry to deploy from")]
    NoRegistry,
}

/// The audit entry of an operator action (on `department`, when it is
/// one department's).
pub(crate) fn admin_entry(action: &str, department: Option<&str>) -> Entry {
    let mut entry = Entry::new(Kind::Admin);
    entry.action = Some(action.to_owned());
    entry.department = department.map(str::to_owned);
    entry.subject = Some(OPERATOR.to_owned());
    entry
}

/// The client of a request from `peer` carrying `forwarded_for` (the
/// `x-forwarded-for` header): `peer` itself unless it is one of `trusted`,
/// else the nearest address in the header that is not. A client cannot
/// choose its own address by sending the header: only entries appended by
/// trusted proxies are read. Empty when the peer is unknown.
pub fn client_address(
    trusted: &[std::net::IpAddr],
    peer: Option<std::net::IpAddr>,
    forwarded_for: Option<&str>,
) -> String {
    let Some(mut client) = peer else {
        return String::new();
    };
    let mut hops = forwarded_for
        .unwrap_or("")
        .rsplit(',')
        .map(str::trim)
        .filter(|hop| !hop.is_empty());
    while trusted.contains(&client) {
        match hops.next().map(str::parse::<std::net::IpAddr>) {
            Some(Ok(hop)) => client = hop,
            // A hop that is no address, or none: the trusted proxy is the
            // nearest party that can be named.
            Some(Err(_)) | None => break,
        }
    }
    client.to_string()
}

#[cfg(test)]
mod client_tests {
    use super::client_address;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = "10.0.0.1".parse().unwrap();
        let peer = |ip: &str| Some(ip.parse().unwrap());
        // Anyone else's header is ignored: the peer is the client.
        assert_eq!(
            client_address(&[proxy], peer("203.0.113.9"), Some("198.51.100.1")),
            "203.0.113.9"
        );
        // Through the proxy, the address it appended.
        assert_eq!(
            client_address(
                &[proxy],
                peer("10.0.0.1"),
                Some("198.51.100.1, 203.0.113.9")
            ),
            "203.0.113.9"
        );
        // A client's own forged entries lie further left and are not read.
        assert_eq!(
            client_address(&[proxy], peer("10.0.0.1"), Some("1.2.3.4")),
            "1.2.3.4"
        );
        // Nothing forwarded: the proxy.
        assert_eq!(client_address(&[proxy], peer("10.0.0.1"), None), "10.0.0.1");
        assert_eq!(client_address(&[], None, None), "");
    }
}
