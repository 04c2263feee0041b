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
    /// The operator's token; without one the admin API refuses everything.
    pub token: Option<String>,
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
}

/// Who an operator action is recorded as: whoever holds the admin token or
/// started the host.
pub const OPERATOR: &str = "operator";

impl Host {
    /// A host with nothing deployed yet; with `admin`, its admin API
    /// deploys from `admin.registry`.
    pub fn with_admin(runtime: Arc<Runtime>, admin: Option<Admin>) -> Self {
        Self {
            runtime,
            deployments: RwLock::new(BTreeMap::new()),
            revisions: AtomicU64::new(0),
            admin,
            audit: None,
            policy: RwLock::new((String::new(), Arc::new(Policy::default()))),
        }
    }

    /// Deploys through the admin API are checked against `policy` (whose
    /// text is `text`); without one, nothing is granted.
    pub fn with_policy(self, text: String, policy: Policy) -> Self {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = (text, Arc::new(policy));
        self
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

    pub(crate) fn admin(&self) -> Option<&Admin> {
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
        let mut entry = admin_entry(
            if replaces { "upgrade" } else { "deploy" },
            Some(department.as_str()),
        );
        entry.detail = Some(format!("revision {revision}: {}", pins.join(", ")));
        entry.args = deployment.source_hash.clone();
        self.record(entry)?;
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
        entry.detail = Some(format!("revision {from} back to revision {to}"));
        self.record(entry)?;
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
