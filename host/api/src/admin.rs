//! The admin API (bearer token): deploy, upgrade and roll back one
//! department's manifest while serving, and read the audit trail.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /admin/v1/departments` | departments, revisions and component versions |
//! | `POST /admin/v1/departments/{department}/manifest` | deploy a manifest (body: its TOML); a manifest that fails any check is refused and the running one stays |
//! | `POST /admin/v1/departments/{department}/rollback` | return to the previous deployment |
//! | `GET`, `PUT /admin/v1/policy` | the operator's policy (TOML): what each department may call; deploys are checked against it |
//! | `GET /admin/v1/audit?department=&service=&subject=&request=&since=&until=&limit=&before=` | audit records, oldest first: the latest `limit` (default 100, at most 1000) numbered below `before`, read from the end of the trail; `next-before` pages back |
//! | `GET /admin/v1/audit/verify` | the whole trail checked against the host key: a summary, or the first problem (409) |
//! | `GET /admin/v1/audit/files` | the trail's files and their sizes: `host.pub`, then each segment's `checkpoints.jsonl` and `trail.jsonl`, oldest first |
//! | `GET /admin/v1/audit/files/{path}` | one of them (`trail.jsonl`, `segments/<first record>/trail.jsonl`, …), for an auditor to verify offline |
//! | `GET /metrics` | Prometheus metrics ([`crate::metrics`]); the operator's token or the metrics token, which opens nothing else |
//!
//! The admin API is served on an address of its own (loopback unless the
//! operator says otherwise), never beside the departments' services.
//! Tokens ([`AdminTokens`]) come from a file or the environment, never the
//! command line, and weak ones are refused: the operator's opens
//! everything; a department's deploys and rolls back that department only
//! and sees its own line of the list (403 elsewhere).
//!
//! Every handler takes a [`Caller`]: the extractor that checks the token,
//! so no handler runs without it. Every deploy, upgrade and rollback is
//! recorded in the audit trail before it takes effect, with who did it.
//! Refused attempts at one are recorded too, but at most once a minute per
//! client and action with a count of the rest ([`Refusals`]), and with the
//! department only when its name is valid: guessing tokens cannot fill the
//! trail.
//!
//! A switch is one pointer swap: requests in flight finish on the
//! deployment they started with.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use zhongtai_audit::{AuditLog, Filter, parse_time, same_secret, sha256_hex};
use zhongtai_manifest::ManifestErrors;
use zhongtai_runtime::Slug;

use crate::error::ApiError;
use crate::host::{DeployRefusal, Host, OPERATOR, admin_entry};
use crate::shared::Change;

/// Who may use the admin API: the operator, with one token for everything,
/// and departments, each with a token that deploys and rolls back that
/// department only. Every token must be strong ([`check_strength`]).
#[derive(Default)]
pub struct AdminTokens {
    operator: Option<String>,
    departments: BTreeMap<Slug, String>,
    metrics: Option<String>,
}

impl std::fmt::Debug for AdminTokens {
    /// Says who holds a token, never the tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTokens")
            .field("operator", &self.operator.is_some())
            .field("departments", &self.departments.keys().collect::<Vec<_>>())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// The TOML of an admin tokens file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    operator: Option<String>,
    metrics: Option<String>,
    #[serde(default)]
    departments: BTreeMap<String, String>,
}

impl AdminTokens {
    /// Only the operator's `token`; refused when it is weak.
    pub fn operator(token: &str) -> Result<Self, String> {
        check_strength(token).map_err(|problem| format!("the operator's admin token {problem}"))?;
        Ok(Self {
            operator: Some(token.to_owned()),
            departments: BTreeMap::new(),
            metrics: None,
        })
    }

    /// Tokens from the TOML `text` of `file`:
    ///
    /// ```toml
    /// operator = "…"            # everything
    /// metrics = "…"             # GET /metrics only (for a scraper)
    /// [departments]
    /// market-regulation = "…"   # deploy and roll back market-regulation
    /// ```
    ///
    /// Refused when it does not parse, names an invalid department, repeats
    /// a token or holds a weak one.
    pub fn parse(text: &str, file: &str) -> Result<Self, String> {
        let parsed: TokensFile = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        let mut tokens = Self {
            operator: None,
            departments: BTreeMap::new(),
            metrics: None,
        };
        if let Some(token) = parsed.operator {
            check_strength(&token).map_err(|p| format!("{file}: operator: the token {p}"))?;
            tokens.operator = Some(token);
        }
        for (department, token) in parsed.departments {
            let slug = Slug::parse("department", &department)
                .map_err(|e| format!("{file}: departments.{department}: {e}"))?;
            check_strength(&token)
                .map_err(|p| format!("{file}: departments.{department}: the token {p}"))?;
            if tokens.operator.as_deref() == Some(token.as_str())
                || tokens.departments.values().any(|t| *t == token)
            {
                return Err(format!(
                    "{file}: departments.{department}: the token is also another holder's; give each its own"
                ));
            }
            tokens.departments.insert(slug, token);
        }
        if let Some(token) = parsed.metrics {
            tokens = tokens
                .with_metrics(&token)
                .map_err(|problem| format!("{file}: metrics: {problem}"))?;
        }
        Ok(tokens)
    }

    /// Adds the token that reads `/metrics` and nothing else; refused
    /// when it is weak or another holder's.
    pub fn with_metrics(mut self, token: &str) -> Result<Self, String> {
        check_strength(token).map_err(|problem| format!("the metrics token {problem}"))?;
        if self.operator.as_deref() == Some(token) || self.departments.values().any(|t| t == token)
        {
            return Err("the metrics token is also another holder's; give it its own".into());
        }
        self.metrics = Some(token.to_owned());
        Ok(self)
    }

    /// Adds the operator's `token` (from the environment, say) to these;
    /// refused when it is weak or another holder's.
    pub fn with_operator(mut self, token: &str) -> Result<Self, String> {
        check_strength(token).map_err(|problem| format!("the operator's admin token {problem}"))?;
        if self.departments.values().any(|t| t == token) {
            return Err("the operator's admin token is also a department's".into());
        }
        if self.metrics.as_deref() == Some(token) {
            return Err("the operator's admin token is also the metrics token".into());
        }
        self.operator = Some(token.to_owned());
        Ok(self)
    }

    /// Whether any token opens the admin API.
    pub fn is_empty(&self) -> bool {
        self.operator.is_none() && self.departments.is_empty() && self.metrics.is_none()
    }

    /// Whether `given` may read `/metrics`: the operator's token or the
    /// metrics token, compared in constant time.
    fn reads_metrics(&self, given: &str) -> bool {
        let operator = self
            .operator
            .as_deref()
            .is_some_and(|t| same_secret(t, given));
        let metrics = self
            .metrics
            .as_deref()
            .is_some_and(|t| same_secret(t, given));
        operator | metrics
    }

    /// The holder of `given`, comparing every token in constant time.
    pub(crate) fn holder(&self, given: &str) -> Option<Caller> {
        let mut found = None;
        if let Some(operator) = &self.operator
            && same_secret(operator, given)
        {
            found = Some(Caller::Operator);
        }
        for (department, token) in &self.departments {
            if same_secret(token, given) {
                found = Some(Caller::Department(department.clone()));
            }
        }
        found
    }
}

/// Shortest admin token accepted, in characters.
pub const MIN_TOKEN_CHARS: usize = 32;

/// Whether `token` is strong enough to guard the admin API: at least
/// [`MIN_TOKEN_CHARS`] printable ASCII characters, at least 10 different
/// ones, none making up more than a quarter of it, and not a shorter text
/// repeated. `zhongtai admin-token`
/// makes one. The error says what is wrong, never the token.
pub fn check_strength(token: &str) -> Result<(), String> {
    let length = token.chars().count();
    if length < MIN_TOKEN_CHARS {
        return Err(format!(
            "is too short: {length} characters, at least {MIN_TOKEN_CHARS} are needed (`zhongtai admin-token` makes one)"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("holds characters other than printable ASCII".into());
    }
    let mut counts = [0usize; 128];
    for byte in token.bytes() {
        counts[usize::from(byte)] += 1;
    }
    let distinct = counts.iter().filter(|&&n| n > 0).count();
    let most = counts.iter().copied().max().unwrap_or(0);
    let bytes = token.as_bytes();
    let periodic =
        (1..=bytes.len() / 2).any(|period| bytes.iter().zip(&bytes[period..]).all(|(a, b)| a == b));
    if distinct < 10 || most * 4 > length || periodic {
        return Err(
            "repeats too few characters to be guessed only by chance (`zhongtai admin-token` makes a random one)"
                .into(),
        );
    }
    Ok(())
}

/// A fresh admin token: 32 random bytes, URL-safe base64 (43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system's random number generator");
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Who is calling the admin API; every handler takes one, so none runs
/// without a valid token. A refused attempt at a department action
/// (`…/{department}/manifest` or `…/rollback`) is itself recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The operator's token: everything.
    Operator,
    /// A department's token: that department's deploys and rollbacks, and
    /// its line of the department list.
    Department(Slug),
}

impl Caller {
    /// Who the audit record says acted.
    pub fn name(&self) -> String {
        match self {
            Self::Operator => OPERATOR.to_owned(),
            Self::Department(department) => format!("{department}/admin-token"),
        }
    }

    /// Refuses a department's token for an operator-only route.
    pub(crate) fn operator_only(&self) -> Result<(), ApiError> {
        match self {
            Self::Operator => Ok(()),
            Self::Department(department) => Err(ApiError::new(
                403,
                "forbidden",
                format!(
                    "{department}'s admin token deploys and rolls back {department} only; this needs the operator's"
                ),
            )),
        }
    }

    /// Refuses a department's token for another department.
    pub(crate) fn may_change(&self, department: &str) -> Result<(), ApiError> {
        match self {
            Self::Department(own) if own.as_str() != department => Err(ApiError::new(
                403,
                "forbidden",
                format!("{own}'s admin token cannot change {department}"),
            )),
            _ => Ok(()),
        }
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(
        401,
        "unauthorized",
        "the admin API needs an admin token (Authorization: Bearer …)",
    )
}

/// The department action a path of the admin API names, if any.
fn department_action(path: &str) -> Option<(&'static str, &str)> {
    let rest = path.strip_prefix("/admin/v1/departments/")?;
    let (department, action) = rest.split_once('/')?;
    let action = match action {
        "manifest" => "deploy",
        "rollback" => "rollback",
        _ => return None,
    };
    Some((action, department))
}

/// How long refusals from one client are counted into one record.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// Refused admin requests by client and action: the first of a window is
/// recorded at once; the rest are counted, and the count is recorded with
/// the client's first refusal of a later window. A client guessing tokens
/// adds a few records a minute, not one a request.
#[derive(Default)]
pub struct Refusals {
    windows: Mutex<HashMap<(String, &'static str), Window>>,
}

/// When a client's window of refusals began, and how many of them went
/// unrecorded since.
type Window = (Instant, u64);

/// Largest number of clients whose refusals are counted at once; beyond
/// it, windows that have ended are forgotten first.
const MAX_REFUSAL_CLIENTS: usize = 10_000;

impl Refusals {
    /// Whether to record this refusal from `client`, and how many of its
    /// refusals of the window before went unrecorded.
    fn note(&self, client: &str, action: &'static str, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_REFUSAL_CLIENTS {
            windows.retain(|_, (started, _)| now.duration_since(*started) < REFUSAL_WINDOW);
        }
        match windows.get_mut(&(client.to_owned(), action)) {
            Some((started, counted)) if now.duration_since(*started) < REFUSAL_WINDOW => {
                *counted += 1;
                None
            }
            Some((started, counted)) => {
                let earlier = *counted;
                *started = now;
                *counted = 0;
                Some(earlier)
            }
            None => {
                windows.insert((client.to_owned(), action), (now, 0));
                Some(0)
            }
        }
    }
}

/// Records a refused department action from `client`, at most once per
/// client and window (see [`Refusals`]); the department is recorded only
/// when it is a valid name.
fn record_refusal(host: &Host, parts: &Parts, case: &str) {
    let Some((action, department)) = department_action(parts.uri.path()) else {
        return;
    };
    let client = host.request_client(&parts.extensions, &parts.headers);
    let Some(admin) = host.admin() else {
        return;
    };
    let Some(earlier) = admin.refusals.note(&client, action, Instant::now()) else {
        return;
    };
    let department = Slug::parse("department", department).ok();
    let mut entry = admin_entry(action, department.as_ref().map(Slug::as_str));
    entry.subject = None;
    entry.outcome = "refused".to_owned();
    entry.case = Some(case.to_owned());
    let mut detail = format!("from {}", if client.is_empty() { "?" } else { &client });
    if department.is_none() {
        detail.push_str(", for a department name that is not valid");
    }
    if earlier > 0 {
        detail.push_str(&format!(
            "; {earlier} more refused {action} requests from this client in the {} s before, not recorded one by one",
            REFUSAL_WINDOW.as_secs()
        ));
    }
    entry.detail = Some(detail);
    if let Err(e) = host.record(entry) {
        tracing::error!(error = %e, "audit record of a refused admin request not written");
    }
}

impl FromRequestParts<Arc<Host>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, host: &Arc<Host>) -> Result<Self, ApiError> {
        let admin = host.admin().ok_or_else(unauthorized)?;
        let given = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let caller = given.and_then(|given| admin.tokens.holder(given));
        let refusal = match &caller {
            None => unauthorized(),
            Some(caller) => match department_action(parts.uri.path()) {
                Some((_, department)) => match caller.may_change(department) {
                    Ok(()) => return Ok(caller.clone()),
                    Err(refusal) => refusal,
                },
                None => return Ok(caller.clone()),
            },
        };
        record_refusal(host, parts, &refusal.code);
        Err(refusal)
    }
}

/// `GET /metrics`: the host's metrics, for the operator's token or the
/// metrics token.
pub async fn metrics(
    State(host): State<Arc<Host>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = host
        .admin()
        .zip(given)
        .is_some_and(|(admin, given)| admin.tokens.reads_metrics(given));
    if !allowed {
        return Err(ApiError::new(
            401,
            "unauthorized",
            "/metrics needs the operator's admin token or the metrics token (Authorization: Bearer …)",
        ));
    }
    Ok((
        [("content-type", crate::metrics::CONTENT_TYPE)],
        host.metrics().encode(),
    )
        .into_response())
}

/// `GET /admin/v1/departments`: every department for the operator, its
/// own for a department's token.
pub async fn list(State(host): State<Arc<Host>>, caller: Caller) -> axum::Json<Json> {
    let mut described = host.describe();
    if let (Caller::Department(own), Some(departments)) = (
        &caller,
        described
            .get_mut("departments")
            .and_then(Json::as_object_mut),
    ) {
        departments.retain(|name, _| name == own.as_str());
    }
    axum::Json(described)
}

/// `POST /admin/v1/departments/{department}/manifest`.
pub async fn deploy(
    State(host): State<Arc<Host>>,
    caller: Caller,
    Path(department): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Json>, ApiError> {
    let revision = deploy_as(&host, &caller, department, body).await?;
    Ok(axum::Json(json!({"deployed": revision})))
}

/// Deploys the manifest `body` for `department` on behalf of `caller`
/// (who may change it: the extractor or the console checked), tells the
/// other hosts, and records a refused manifest; the revision. The admin
/// API and the console deploy through here.
pub(crate) async fn deploy_as(
    host: &Arc<Host>,
    caller: &Caller,
    department: String,
    body: Bytes,
) -> Result<u64, ApiError> {
    host.check_storage()?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let by = caller.name();
    let source_hash = sha256_hex(&body);
    let worker_host = host.clone();
    let target = department.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let revision = deploy_text(&worker_host, &target, &text, source_hash, &by)?;
        let change = Change::Deploy {
            department: target,
            manifest: text,
        };
        Ok((revision, announce(&worker_host, &change)))
    })
    .await?;
    match outcome {
        Ok((revision, announced)) => {
            tracing::info!(revision, "deployed");
            announced.map_err(|e| not_shared(revision, e))?;
            Ok(revision)
        }
        Err(DeployRefusal::Invalid(problems)) => {
            let mut entry = admin_entry("deploy", Some(&department));
            entry.subject = Some(caller.name());
            entry.outcome = "refused".to_owned();
            entry.case = Some("invalid-manifest".to_owned());
            entry.args = Some(sha256_hex(&body));
            entry.detail = Some(problems.to_string());
            host.record(entry)?;
            Err(problems.into())
        }
        Err(DeployRefusal::Unrecorded(error)) => Err(error.into()),
        Err(DeployRefusal::NoRegistry) => Err(unauthorized()),
    }
}

/// Tells the other hosts sharing this host's database about `change`.
fn announce(host: &Host, change: &Change) -> anyhow::Result<()> {
    match host.shared() {
        Some(shared) => shared.announce(change).map(drop),
        None => Ok(()),
    }
}

/// The answer when a change made here could not be shared.
fn not_shared(revision: u64, error: anyhow::Error) -> ApiError {
    ApiError::new(
        503,
        "not-shared",
        format!(
            "done on this host (revision {revision}), but the other hosts were not told: {error}; repeat it once the database answers"
        ),
    )
}

/// Checks the manifest `text` sent for `department` and deploys it.
pub(crate) fn deploy_text(
    host: &Host,
    department: &str,
    text: &str,
    source_hash: String,
    by: &str,
) -> Result<u64, DeployRefusal> {
    let file = format!("{department}/zhongtai.toml");
    // Refusals from here on are counted by the host; these two here (the
    // department is named only when it is a valid name).
    let counted = |refusal: ManifestErrors| {
        let label =
            Slug::parse("department", department).map_or_else(|_| "-".into(), |d| d.to_string());
        host.metrics().refused_deploy(&label, "invalid");
        DeployRefusal::Invalid(refusal)
    };
    let checked = zhongtai_manifest::parse(text, &file).map_err(counted)?;
    if checked.department != department {
        let problem = checked.department_place.error(
            &file,
            "",
            format!(
                "the manifest is for department {:?}, but was sent to {department:?}",
                checked.department.as_str()
            ),
        );
        return Err(counted(ManifestErrors(vec![problem])));
    }
    host.deploy_manifest_by(checked, &file, None, source_hash, by)
}

/// `GET /admin/v1/policy`: the policy in force, as TOML.
pub async fn policy(State(host): State<Arc<Host>>, caller: Caller) -> Result<Response, ApiError> {
    caller.operator_only()?;
    Ok(([("content-type", "application/toml")], host.policy().0).into_response())
}

/// `PUT /admin/v1/policy` (body: the new policy's TOML): checked, recorded,
/// then in force for every later deploy. A policy that does not parse is
/// refused and the one in force stays.
pub async fn replace_policy(
    State(host): State<Arc<Host>>,
    caller: Caller,
    body: Bytes,
) -> Result<axum::Json<Json>, ApiError> {
    caller.operator_only()?;
    host.check_storage()?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let policy = zhongtai_manifest::Policy::parse(&text, "policy.toml")
        .map_err(|e| ApiError::new(422, "invalid-policy", e.to_string()))?;
    host.replace_policy(text, policy)?;
    Ok(axum::Json(json!({"policy": "replaced"})))
}

/// `POST /admin/v1/departments/{department}/rollback`.
pub async fn rollback(
    State(host): State<Arc<Host>>,
    caller: Caller,
    Path(department): Path<String>,
) -> Result<axum::Json<Json>, ApiError> {
    let revision = rollback_as(&host, &caller, department).await?;
    Ok(axum::Json(json!({"rolled-back-to": revision})))
}

/// Returns `department` to its previous deployment on behalf of `caller`
/// (who may change it) and tells the other hosts; the revision in service
/// now. The admin API and the console roll back through here.
pub(crate) async fn rollback_as(
    host: &Arc<Host>,
    caller: &Caller,
    department: String,
) -> Result<u64, ApiError> {
    host.check_storage()?;
    match host.rollback_by(&department, &caller.name())? {
        Some(revision) => {
            let worker_host = host.clone();
            let change = Change::Rollback { department };
            tokio::task::spawn_blocking(move || announce(&worker_host, &change))
                .await?
                .map_err(|e| not_shared(revision, e))?;
            Ok(revision)
        }
        None => Err(ApiError::new(
            409,
            "no-previous-deployment",
            format!("{department} has no earlier deployment to roll back to"),
        )),
    }
}

/// The host's audit trail, or 404 when it keeps none.
pub(crate) fn trail_of(host: &Host) -> Result<Arc<AuditLog>, ApiError> {
    host.audit()
        .cloned()
        .ok_or_else(|| ApiError::new(404, "no-audit-trail", "this host keeps no audit trail"))
}

/// Query of `GET /admin/v1/audit`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuditQuery {
    pub(crate) department: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) request: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) before: Option<u64>,
}

/// Most records one page of `GET /admin/v1/audit` holds.
pub const MAX_AUDIT_PAGE: usize = 1000;

impl AuditQuery {
    pub(crate) fn filter(self) -> Result<Filter, ApiError> {
        let time = |t: Option<String>, name: &str| {
            t.map(|t| parse_time(&t))
                .transpose()
                .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
        };
        Ok(Filter {
            since: time(self.since, "since")?,
            until: time(self.until, "until")?,
            department: self.department,
            service: self.service,
            subject: self.subject,
            request: self.request,
            limit: Some(self.limit.unwrap_or(100).clamp(1, MAX_AUDIT_PAGE)),
            kind: None,
        })
    }
}

/// `GET /admin/v1/audit`.
pub async fn audit_records(
    State(host): State<Arc<Host>>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<Json>, ApiError> {
    caller.operator_only()?;
    let dir = trail_of(&host)?.dir().to_owned();
    let before = query.before;
    let filter = query.filter()?;
    let page = tokio::task::spawn_blocking(move || zhongtai_audit::latest(&dir, &filter, before))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(axum::Json(
        json!({ "records": page.records, "next-before": page.next_before }),
    ))
}

/// `GET /admin/v1/audit/records/{seq}/proof[?size=M]`: record `seq` as
/// the trail holds it (its exact line) with its inclusion proof in the
/// log — for the operator, or for the department whose record it is, so
/// that a department can check that each of its calls is in the log.
pub async fn audit_record_proof(
    State(host): State<Arc<Host>>,
    caller: Caller,
    axum::extract::Path(seq): axum::extract::Path<u64>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<axum::Json<zhongtai_audit::InclusionProof>, ApiError> {
    let size = match query.get("size") {
        None => None,
        Some(size) => Some(size.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("size={size:?} is not a number of records"))
        })?),
    };
    let audit = trail_of(&host)?;
    let proof = tokio::task::spawn_blocking(move || audit.inclusion_proof_with_record(seq, size))
        .await?
        .map_err(crate::transparency::refused)?;
    if let Caller::Department(own) = &caller {
        let department = proof
            .record
            .as_deref()
            .and_then(|line| serde_json::from_str::<Json>(line).ok())
            .and_then(|record| record["department"].as_str().map(str::to_owned));
        if department.as_deref() != Some(own.as_str()) {
            return Err(ApiError::new(
                403,
                "forbidden",
                format!(
                    "record {seq} is not one of {own}'s; its admin token reads its own records only"
                ),
            ));
        }
    }
    Ok(axum::Json(proof))
}

/// `GET /admin/v1/audit/verify`.
pub async fn audit_verify(
    State(host): State<Arc<Host>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.operator_only()?;
    let audit = trail_of(&host)?;
    let dir = audit.dir().to_owned();
    let key = audit.public_key();
    let checked = tokio::task::spawn_blocking(move || zhongtai_audit::verify_dir(&dir, &key))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(match checked {
        Ok(report) => axum::Json(json!({"verified": true, "report": report})).into_response(),
        Err(problem) => (
            StatusCode::CONFLICT,
            axum::Json(
                json!({"verified": false, "problem": problem, "message": problem.to_string()}),
            ),
        )
            .into_response(),
    })
}

/// The trail's files an auditor may fetch, relative to its directory:
/// the public key, then each segment's checkpoints and records, oldest
/// segment first.
fn trail_files(dir: &std::path::Path) -> Result<Vec<String>, ApiError> {
    let mut files = vec![zhongtai_audit::PUBLIC_KEY_FILE.to_owned()];
    for segment in zhongtai_audit::segments(dir).map_err(|e| ApiError::internal(e.to_string()))? {
        for name in [zhongtai_audit::CHECKPOINTS_FILE, zhongtai_audit::TRAIL_FILE] {
            files.push(format!("{}{name}", segment.prefix));
        }
    }
    Ok(files)
}

/// `GET /admin/v1/audit/files`.
pub async fn audit_files(
    State(host): State<Arc<Host>>,
    caller: Caller,
) -> Result<axum::Json<Json>, ApiError> {
    caller.operator_only()?;
    let dir = trail_of(&host)?.dir().to_owned();
    let listed = tokio::task::spawn_blocking(move || -> Result<Vec<Json>, ApiError> {
        let files = trail_files(&dir)?;
        Ok(files
            .into_iter()
            .map(|file| {
                let bytes = std::fs::metadata(dir.join(&file)).map_or(0, |m| m.len());
                json!({ "path": file, "bytes": bytes })
            })
            .collect())
    })
    .await??;
    Ok(axum::Json(json!({ "files": listed })))
}

/// `GET /admin/v1/audit/files/{*path}`.
pub async fn audit_file(
    State(host): State<Arc<Host>>,
    caller: Caller,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    caller.operator_only()?;
    let audit = trail_of(&host)?;
    // Only a name from the listing: nothing else in the directory (the
    // secret keys) and nothing outside it.
    if !trail_files(audit.dir())?.contains(&file) {
        return Err(ApiError::not_found(format!(
            "{file} is not one of the trail's files: GET /admin/v1/audit/files lists them"
        )));
    }
    let path = audit.dir().join(&file);
    let opened =
        std::fs::File::open(&path).map_err(|e| ApiError::internal(format!("{file}: {e}")))?;
    Ok((
        [("content-type", "application/octet-stream")],
        axum::body::Body::from_stream(file_chunks(opened)),
    )
        .into_response())
}

/// The bytes of `file` as it is now, a megabyte at a time, read on a
/// blocking thread while the answer is sent: a trail of any length is
/// served in constant memory.
fn file_chunks(
    file: std::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (send, receive) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = file;
        loop {
            let mut chunk = vec![0u8; 1024 * 1024];
            let read = match file.read(&mut chunk) {
                Ok(0) => return,
                Ok(read) => read,
                Err(e) => {
                    let _ = send.blocking_send(Err(e));
                    return;
                }
            };
            chunk.truncate(read);
            if send.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                return;
            }
        }
    });
    futures_util::stream::unfold(receive, |mut receive| async move {
        receive.recv().await.map(|chunk| (chunk, receive))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_tokens_are_refused_and_made_ones_pass() {
        for weak in [
            "operator-token",
            "changeme",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababababab",
            "0123456789012345678901234567890123456789",
        ] {
            assert!(check_strength(weak).is_err(), "{weak} was accepted");
        }
        assert!(check_strength("has a space in it, and is long enough!").is_err());
        for _ in 0..100 {
            let made = new_token();
            assert_eq!(made.len(), 43);
            check_strength(&made).unwrap();
        }
    }

    #[test]
    fn a_tokens_file_gives_each_holder_its_own_token() {
        let operator = new_token();
        let civil = new_token();
        let tokens = AdminTokens::parse(
            &format!("operator = \"{operator}\"\n[departments]\ncivil-affairs = \"{civil}\"\n"),
            "tokens.toml",
        )
        .unwrap();
        assert_eq!(tokens.holder(&operator), Some(Caller::Operator));
        assert_eq!(
            tokens.holder(&civil).map(|c| c.name()),
            Some("civil-affairs/admin-token".to_owned())
        );
        assert_eq!(tokens.holder("guess"), None);
        let shared = AdminTokens::parse(
            &format!("operator = \"{operator}\"\n[departments]\ncivil-affairs = \"{operator}\"\n"),
            "tokens.toml",
        );
        assert!(shared.unwrap_err().contains("another holder's"));
        let weak = AdminTokens::parse("[departments]\ncivil-affairs = \"secret\"\n", "t.toml");
        assert!(
            weak.unwrap_err()
                .starts_with("t.toml: departments.civil-affairs: the token is too short")
        );
        let bad_name =
            AdminTokens::parse(&format!("[departments]\n\"A B\" = \"{civil}\"\n"), "t.toml");
        assert!(bad_name.is_err());
    }

    #[test]
    fn refusals_are_counted_per_client_and_window() {
        let refusals = Refusals::default();
        let start = Instant::now();
        assert_eq!(refusals.note("10.0.0.1", "deploy", start), Some(0));
        for _ in 0..5 {
            assert_eq!(refusals.note("10.0.0.1", "deploy", start), None);
        }
        assert_eq!(refusals.note("10.0.0.2", "deploy", start), Some(0));
        assert_eq!(refusals.note("10.0.0.1", "rollback", start), Some(0));
        let later = start + REFUSAL_WINDOW;
        assert_eq!(refusals.note("10.0.0.1", "deploy", later), Some(5));
        assert_eq!(refusals.note("10.0.0.1", "deploy", later), None);
    }
}
