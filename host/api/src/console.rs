//! The operators' web console at `/console` on the admin address: pages
//! rendered by the host (no script, no CDN, one stylesheet it serves
//! itself), over the same tokens, checks and code paths as the admin API.
//!
//! | page | who |
//! |---|---|
//! | `/console` | departments at a glance; for the operator also the metrics that matter |
//! | `/console/departments/{department}` | its services (route, who may call, body type), components, the deployments kept, its changes from the trail; roll back or deploy a manifest |
//! | `/console/policy` | the policy in force (operator) |
//! | `/console/audit` | the trail with filters, paged back, and verification (operator) |
//! | `/console/registry` | packages and versions, yanked ones marked (operator) |
//!
//! Logging in takes an admin token (the operator's or a department's; the
//! metrics token opens nothing here) and gives a session cookie
//! (`HttpOnly`, `SameSite=Strict`, path `/console`, 8 hours); the token is
//! not kept in the browser. Every form that changes something carries the
//! session's own anti-forgery value, and every page is sent with a
//! content security policy that allows nothing but the console's
//! stylesheet and forms to itself. A department's token sees and changes
//! its own department only, as in the admin API.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use zhongtai_manifest::{Action, Caller as Who};

use crate::admin::{AuditQuery, Caller, deploy_as, rollback_as, trail_of};
use crate::error::ApiError;
use crate::host::Host;

/// The session cookie's name.
const COOKIE: &str = "zhongtai_console";

/// How long a session lasts after logging in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// Most sessions kept at once; beyond it the oldest are forgotten.
const MAX_SESSIONS: usize = 1000;

const STYLE: &str = include_str!("console.css");

/// What every console page is sent with.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// Logged-in console sessions, by their random id.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

/// One logged-in browser.
#[derive(Clone)]
pub struct Session {
    caller: Caller,
    /// The anti-forgery value every form of this session carries.
    csrf: String,
    expires: Instant,
}

impl Sessions {
    fn open(&self, caller: Caller) -> String {
        let id = crate::admin::new_token();
        let session = Session {
            caller,
            csrf: crate::admin::new_token(),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id.clone(), session);
        id
    }

    fn get(&self, id: &str) -> Option<Session> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The session id the request's cookie carries.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// A page of the console, for a logged-in session: without one, the
/// browser is sent to the login page.
pub struct LoggedIn(Session, String);

impl FromRequestParts<Arc<Host>> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, host: &Arc<Host>) -> Result<Self, Response> {
        let found = session_id(&parts.headers).and_then(|id| {
            let admin = host.admin()?;
            admin.sessions.get(&id).map(|s| LoggedIn(s, id))
        });
        found.ok_or_else(|| Redirect::to("/console/login").into_response())
    }
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: the navigation for `session` (none on the login page),
/// then `body`.
fn page(title: &str, session: Option<&Session>, body: &str) -> Response {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · zhongtai console</title><link rel=\"stylesheet\" href=\"/console/style.css\"></head><body><header><a class=\"brand\" href=\"/console\">zhongtai</a>",
        escape(title)
    );
    if let Some(session) = session {
        html.push_str("<nav><a href=\"/console\">Departments</a>");
        if session.caller == Caller::Operator {
            html.push_str("<a href=\"/console/audit\">Audit trail</a><a href=\"/console/policy\">Policy</a><a href=\"/console/registry\">Registry</a>");
        }
        let _ = write!(
            html,
            "</nav><form method=\"post\" action=\"/console/logout\" class=\"logout\"><span id=\"who\">{}</span><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form>",
            escape(&session.caller.name()),
            escape(&session.csrf)
        );
    }
    let _ = write!(
        html,
        "</header><main><h1>{}</h1>{body}</main></body></html>",
        escape(title)
    );
    (SECURITY_HEADERS, Html(html)).into_response()
}

/// A refusal as a page, with its status.
fn refusal_page(session: Option<&Session>, error: &ApiError) -> Response {
    let body = format!(
        "<p class=\"error\" id=\"error\"><strong>{}</strong> {}</p>",
        escape(&error.code),
        escape(&error.message)
    );
    let mut response = page(
        &format!("{} refused", error.status.as_u16()),
        session,
        &body,
    );
    *response.status_mut() = error.status;
    response
}

/// `GET /console/style.css`.
pub async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

fn login_form(message: Option<&str>) -> String {
    let message = message.map_or(String::new(), |m| {
        format!("<p class=\"error\" id=\"error\">{}</p>", escape(m))
    });
    format!(
        "{message}<form method=\"post\" action=\"/console/login\" class=\"login\"><label>Admin token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\" autofocus></label><button type=\"submit\" id=\"login\">Log in</button></form><p class=\"hint\">The operator's token opens everything; a department's token shows and changes that department only.</p>"
    )
}

/// `GET /console/login`.
pub async fn login_page() -> Response {
    page("Log in", None, &login_form(None))
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /console/login`: a session for a valid admin token.
pub async fn login(State(host): State<Arc<Host>>, Form(form): Form<LoginForm>) -> Response {
    let Some(admin) = host.admin() else {
        return page(
            "Log in",
            None,
            &login_form(Some("this host has no admin API")),
        );
    };
    let Some(caller) = admin.tokens.holder(form.token.trim()) else {
        let mut response = page(
            "Log in",
            None,
            &login_form(Some("That token opens nothing here.")),
        );
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    };
    let id = admin.sessions.open(caller);
    let cookie = format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/console")).into_response()
}

/// A form that changes something: its anti-forgery value.
#[derive(Deserialize)]
pub struct Forged {
    csrf: String,
}

/// Refuses a form whose anti-forgery value is not the session's.
fn check_form(session: &Session, given: &str) -> Result<(), ApiError> {
    if zhongtai_audit::same_secret(&session.csrf, given) {
        Ok(())
    } else {
        Err(ApiError::new(
            403,
            "forbidden",
            "this form did not come from this session's console page; reload the page and try again",
        ))
    }
}

/// `POST /console/logout`.
pub async fn logout(
    State(host): State<Arc<Host>>,
    LoggedIn(session, id): LoggedIn,
    Form(form): Form<Forged>,
) -> Response {
    if let Err(refused) = check_form(&session, &form.csrf) {
        return refusal_page(Some(&session), &refused);
    }
    if let Some(admin) = host.admin() {
        admin.sessions.close(&id);
    }
    let cookie = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/login"),
    )
        .into_response()
}

/// Sums of the host's metrics, read from their text: by metric and,
/// where asked, by one label's value.
struct Glance {
    text: String,
}

impl Glance {
    /// The sum of every sample of `name` whose labels contain `having`.
    fn sum(&self, name: &str, having: &str) -> f64 {
        self.text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
                (metric == name && labels.contains(having)).then(|| value.parse::<f64>().ok())?
            })
            // An empty sum of floats is -0.
            .fold(0.0, |sum, value| sum + value)
    }

    /// The mean of histogram `name` in milliseconds, if it has samples.
    fn mean_ms(&self, name: &str) -> Option<f64> {
        let count = self.sum(&format!("{name}_count"), "");
        (count > 0.0).then(|| self.sum(&format!("{name}_sum"), "") / count * 1000.0)
    }
}

fn metrics_panel(host: &Host) -> String {
    let glance = Glance {
        text: host.metrics().encode(),
    };
    let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2} ms"));
    let count = |name: &str, having: &str| glance.sum(name, having).to_string();
    let rows = [
        ("Requests answered", count("zhongtai_requests_total", "")),
        (
            "… refused by the client's fault (4xx)",
            count("zhongtai_requests_total", "status=\"4"),
        ),
        (
            "… failed (5xx)",
            count("zhongtai_requests_total", "status=\"5"),
        ),
        (
            "Requests matching no service",
            count("zhongtai_unmatched_requests_total", ""),
        ),
        (
            "Mean request time",
            ms(glance.mean_ms("zhongtai_request_duration_seconds")),
        ),
        (
            "Component calls that trapped",
            count("zhongtai_component_calls_total", "outcome=\"trap\""),
        ),
        (
            "Component calls that timed out",
            count("zhongtai_component_calls_total", "outcome=\"timeout\""),
        ),
        (
            "Instances in use / at most",
            format!(
                "{} / {}",
                count("zhongtai_instances_in_use", ""),
                count("zhongtai_instances_max", "")
            ),
        ),
        (
            "Refused as department-busy",
            count("zhongtai_department_busy_total", ""),
        ),
        (
            "Calls moved to idle priority",
            count("zhongtai_demoted_calls_total", ""),
        ),
        (
            "Audit syncs (mean time)",
            format!(
                "{} ({})",
                count("zhongtai_audit_sync_duration_seconds_count", ""),
                ms(glance.mean_ms("zhongtai_audit_sync_duration_seconds"))
            ),
        ),
        (
            "Audit write failures",
            count("zhongtai_audit_sync_failures_total", ""),
        ),
        (
            "State commits (mean time)",
            format!(
                "{} ({})",
                count("zhongtai_state_commit_duration_seconds_count", ""),
                ms(glance.mean_ms("zhongtai_state_commit_duration_seconds"))
            ),
        ),
        (
            "Deploys / upgrades / rollbacks",
            format!(
                "{} / {} / {}",
                count("zhongtai_department_changes_total", "action=\"deploy\""),
                count("zhongtai_department_changes_total", "action=\"upgrade\""),
                count("zhongtai_department_changes_total", "action=\"rollback\"")
            ),
        ),
        (
            "Deploys refused",
            count("zhongtai_refused_deploys_total", ""),
        ),
    ];
    let mut html = String::from("<h2>At a glance</h2><table class=\"glance\" id=\"metrics\">");
    for (label, value) in rows {
        let _ = write!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(label),
            escape(&value)
        );
    }
    html.push_str("</table><p class=\"hint\">Since the host started. All of it, and more, at <code>/metrics</code> for Prometheus.</p>");
    html
}

/// `GET /console`: the departments (a department's token sees its own),
/// and, for the operator, the metrics that matter.
pub async fn overview(State(host): State<Arc<Host>>, LoggedIn(session, _): LoggedIn) -> Response {
    let mut html = String::from(
        "<table id=\"departments\"><thead><tr><th>Department</th><th>Revision</th><th>Services</th><th>Components</th><th>Earlier deployments kept</th></tr></thead><tbody>",
    );
    for department in host.departments() {
        if let Caller::Department(own) = &session.caller
            && own.as_str() != department
        {
            continue;
        }
        let history = host.history(&department);
        let Some((revision, deployment)) = history.last() else {
            continue;
        };
        let components: Vec<String> = deployment
            .components
            .iter()
            .map(|(alias, c)| format!("{alias} = {}@{}", c.spec.package, c.version))
            .collect();
        let _ = write!(
            html,
            "<tr><td><a href=\"/console/departments/{d}\">{d}</a></td><td>{revision}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            deployment.manifest.services.len(),
            escape(&components.join(", ")),
            history.len() - 1,
            d = escape(&department),
        );
    }
    html.push_str("</tbody></table>");
    if session.caller == Caller::Operator {
        html.push_str(&metrics_panel(&host));
    }
    page("Departments", Some(&session), &html)
}

/// Who may call a service, for people.
fn who_may_call(caller: &Who) -> String {
    match caller {
        Who::Public => "anyone (public)".to_owned(),
        Who::Authenticated { alias, require } => {
            let mut text = format!("a verified caller ({alias})");
            if !require.kinds.is_empty() {
                let _ = write!(text, ", {}", require.kinds.join(" or "));
            }
            if let Some(department) = &require.department {
                let _ = write!(text, " of {department}");
            }
            if !require.roles.is_empty() {
                let _ = write!(text, " with roles {}", require.roles.join(", "));
            }
            text
        }
    }
}

/// `GET /console/departments/{department}`.
pub async fn department(
    State(host): State<Arc<Host>>,
    LoggedIn(session, _): LoggedIn,
    Path(department): Path<String>,
) -> Response {
    if let Err(refused) = session.caller.may_change(&department) {
        return refusal_page(Some(&session), &refused);
    }
    let history = host.history(&department);
    let Some((revision, deployment)) = history.last().cloned() else {
        let missing = ApiError::not_found(format!("no department {department:?} is deployed"));
        return refusal_page(Some(&session), &missing);
    };
    let mut html = format!(
        "<p>Revision <strong id=\"revision\">{revision}</strong> in service, deployed by {}.</p>",
        escape(deployment.deployed_by.as_deref().unwrap_or("operator"))
    );
    html.push_str("<h2>Services</h2><table id=\"services\"><thead><tr><th>Service</th><th>Route</th><th>Who may call</th><th>Body</th><th>Steps</th></tr></thead><tbody>");
    for (service, body) in deployment
        .manifest
        .services
        .iter()
        .zip(&deployment.body_types)
    {
        let steps: Vec<String> = service
            .steps
            .iter()
            .map(|step| match &step.action {
                Action::Call(call) => format!(
                    "{}: {}.{}.{}",
                    step.name, call.alias, call.interface, call.function
                ),
                Action::Check { .. } => format!("{}: check", step.name),
            })
            .collect();
        let _ = write!(
            html,
            "<tr><td>{}</td><td><code>{} /{department}{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(service.name.as_str()),
            escape(&service.method),
            escape(&service.path),
            escape(&who_may_call(&service.caller)),
            escape(&body.as_ref().map_or("–".to_owned(), ToString::to_string)),
            escape(&steps.join("; ")),
            department = escape(&department),
        );
    }
    html.push_str("</tbody></table>");
    let _ = write!(
        html,
        "<p class=\"hint\">Its OpenAPI document is at <code>/{d}/openapi.json</code> on the services' address.</p>",
        d = escape(&department)
    );
    html.push_str("<h2>Deployments kept</h2><table id=\"history\"><thead><tr><th>Revision</th><th>Deployed by</th><th>Components</th><th></th></tr></thead><tbody>");
    for (kept, deployed) in history.iter().rev() {
        let pins: Vec<String> = deployed
            .components
            .iter()
            .map(|(alias, c)| format!("{alias} = {}@{}", c.spec.package, c.version))
            .collect();
        let _ = write!(
            html,
            "<tr><td>{kept}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(deployed.deployed_by.as_deref().unwrap_or("operator")),
            escape(&pins.join(", ")),
            if *kept == revision { "in service" } else { "" },
        );
    }
    html.push_str("</tbody></table>");
    let csrf = escape(&session.csrf);
    let d = escape(&department);
    if history.len() > 1 {
        let previous = history[history.len() - 2].0;
        let _ = write!(
            html,
            "<form method=\"post\" action=\"/console/departments/{d}/rollback\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\" id=\"rollback\">Roll back to revision {previous}</button></form>"
        );
    } else {
        html.push_str("<p class=\"hint\">No earlier deployment is kept to roll back to.</p>");
    }
    if session.caller == Caller::Operator {
        html.push_str(&changes(&host, &department).await);
        let _ = write!(
            html,
            "<p><a href=\"/console/audit?department={d}\">This department in the audit trail</a></p>"
        );
    }
    let _ = write!(
        html,
        "<h2>Deploy a manifest</h2><form method=\"post\" action=\"/console/departments/{d}/manifest\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><textarea name=\"manifest\" rows=\"6\" id=\"manifest\" placeholder=\"the department's zhongtai.toml\"></textarea><button type=\"submit\" id=\"deploy\">Check and deploy</button></form>"
    );
    page(&department, Some(&session), &html)
}

/// The latest deploys, upgrades, rollbacks and refused deploys of
/// `department`, as the trail records them.
async fn changes(host: &Host, department: &str) -> String {
    let Ok(audit) = trail_of(host) else {
        return String::new();
    };
    let dir = audit.dir().to_owned();
    let filter = zhongtai_audit::Filter {
        department: Some(department.to_owned()),
        kind: Some(zhongtai_audit::Kind::Admin),
        limit: Some(10),
        ..Default::default()
    };
    let read =
        tokio::task::spawn_blocking(move || zhongtai_audit::latest(&dir, &filter, None)).await;
    let Ok(Ok(page_of)) = read else {
        return "<p class=\"error\">The trail could not be read.</p>".to_owned();
    };
    let mut html = String::from(
        "<h2>Changes</h2><table id=\"changes\"><thead><tr><th>#</th><th>Time</th><th>Action</th><th>By</th><th>Outcome</th><th>Detail</th></tr></thead><tbody>",
    );
    for record in page_of.records.iter().rev() {
        let entry = &record.entry;
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            record.seq,
            escape(&record.time),
            escape(entry.action.as_deref().unwrap_or("")),
            escape(entry.subject.as_deref().unwrap_or("")),
            escape(&entry.outcome),
            escape(entry.detail.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// `POST /console/departments/{department}/rollback`.
pub async fn rollback(
    State(host): State<Arc<Host>>,
    LoggedIn(session, _): LoggedIn,
    Path(department): Path<String>,
    Form(form): Form<Forged>,
) -> Response {
    let done = async {
        check_form(&session, &form.csrf)?;
        session.caller.may_change(&department)?;
        rollback_as(&host, &session.caller, department.clone()).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("/console/departments/{department}")).into_response(),
        Err(refused) => refusal_page(Some(&session), &refused),
    }
}

/// The deploy form.
#[derive(Deserialize)]
pub struct DeployForm {
    csrf: String,
    manifest: String,
}

/// `POST /console/departments/{department}/manifest`: checked and
/// deployed as through the admin API; the problems on the page when the
/// manifest is refused.
pub async fn deploy(
    State(host): State<Arc<Host>>,
    LoggedIn(session, _): LoggedIn,
    Path(department): Path<String>,
    Form(form): Form<DeployForm>,
) -> Response {
    let done = async {
        check_form(&session, &form.csrf)?;
        session.caller.may_change(&department)?;
        deploy_as(
            &host,
            &session.caller,
            department.clone(),
            Bytes::from(form.manifest),
        )
        .await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("/console/departments/{department}")).into_response(),
        Err(refused) => refusal_page(Some(&session), &refused),
    }
}

/// `GET /console/policy` (operator).
pub async fn policy(State(host): State<Arc<Host>>, LoggedIn(session, _): LoggedIn) -> Response {
    if let Err(refused) = session.caller.operator_only() {
        return refusal_page(Some(&session), &refused);
    }
    let html = format!(
        "<p>What each department may call; every deploy is checked against it. It changes with <code>PUT /admin/v1/policy</code>, recorded in the trail.</p><pre id=\"policy\">{}</pre>",
        escape(&host.policy().0)
    );
    page("Authorization policy", Some(&session), &html)
}

/// `GET /console/audit` (operator): the latest records the filters
/// select, paged back.
pub async fn audit(
    State(host): State<Arc<Host>>,
    LoggedIn(session, _): LoggedIn,
    Query(query): Query<AuditQuery>,
) -> Response {
    let listed = async {
        session.caller.operator_only()?;
        let dir = trail_of(&host)?.dir().to_owned();
        let before = query.before;
        let filter = query.clone().filter()?;
        tokio::task::spawn_blocking(move || zhongtai_audit::latest(&dir, &filter, before))
            .await?
            .map_err(|e| ApiError::internal(e.to_string()))
    };
    let page_of = match listed.await {
        Ok(page_of) => page_of,
        Err(refused) => return refusal_page(Some(&session), &refused),
    };
    let value = |v: &Option<String>| escape(v.as_deref().unwrap_or(""));
    let mut html = format!(
        "<form method=\"get\" action=\"/console/audit\" class=\"filters\"><label>Department <input name=\"department\" value=\"{}\"></label><label>Service <input name=\"service\" value=\"{}\"></label><label>Subject <input name=\"subject\" value=\"{}\"></label><label>Request <input name=\"request\" value=\"{}\"></label><label>Since <input name=\"since\" value=\"{}\" placeholder=\"2026-11-27T00:00:00Z\"></label><button type=\"submit\" id=\"filter\">Filter</button></form><p><a href=\"/console/audit/verify\" id=\"verify\">Verify the whole trail</a></p>",
        value(&query.department),
        value(&query.service),
        value(&query.subject),
        value(&query.request),
        value(&query.since),
    );
    html.push_str("<table id=\"records\"><thead><tr><th>#</th><th>Time</th><th>Kind</th><th>What</th><th>Department</th><th>Service</th><th>Subject</th><th>Outcome</th><th>µs</th><th>Detail</th></tr></thead><tbody>");
    for record in page_of.records.iter().rev() {
        let entry = &record.entry;
        let what = match (&entry.action, &entry.function) {
            (Some(action), _) => action.clone(),
            (None, Some(function)) => format!(
                "{} {}.{}",
                entry.package.as_deref().unwrap_or(""),
                entry.interface.as_deref().unwrap_or(""),
                function
            ),
            (None, None) => String::new(),
        };
        let outcome = match &entry.case {
            Some(case) => format!("{} ({case})", entry.outcome),
            None => entry.outcome.clone(),
        };
        let kind = serde_json::to_value(entry.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = write!(
            html,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&kind),
            record.seq,
            escape(&record.time),
            escape(&kind),
            escape(&what),
            value(&entry.department),
            value(&entry.service),
            value(&entry.subject),
            escape(&outcome),
            entry.duration_us,
            value(&entry.detail),
        );
    }
    html.push_str("</tbody></table>");
    if let Some(before) = page_of.next_before {
        let mut older = url_query(&query);
        let _ = write!(older, "before={before}");
        let _ = write!(
            html,
            "<p><a href=\"/console/audit?{}\" id=\"older\">Older records</a></p>",
            escape(&older)
        );
    }
    page("Audit trail", Some(&session), &html)
}

/// The filters of `query` as a query string (ending in `&`), without
/// `before`.
fn url_query(query: &AuditQuery) -> String {
    let mut out = String::new();
    for (name, value) in [
        ("department", &query.department),
        ("service", &query.service),
        ("subject", &query.subject),
        ("request", &query.request),
        ("since", &query.since),
        ("until", &query.until),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            let _ = write!(out, "{name}={}&", percent_encode(value));
        }
    }
    out
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /console/audit/verify` (operator): the whole trail checked
/// against the host key.
pub async fn audit_verify(
    State(host): State<Arc<Host>>,
    LoggedIn(session, _): LoggedIn,
) -> Response {
    let checked = async {
        session.caller.operator_only()?;
        let audit = trail_of(&host)?;
        let (dir, key) = (audit.dir().to_owned(), audit.public_key());
        tokio::task::spawn_blocking(move || zhongtai_audit::verify_dir(&dir, &key))
            .await?
            .map_err(|e| ApiError::internal(e.to_string()))
    };
    let html = match checked.await {
        Err(refused) => return refusal_page(Some(&session), &refused),
        Ok(Ok(report)) => format!(
            "<p class=\"ok\" id=\"verdict\">The trail verifies: {} records in {} segments, {} checkpoints; the last, signed {}, covers {} records.</p>",
            report.records,
            report.segments,
            report.checkpoints,
            escape(report.last_checkpoint.as_deref().unwrap_or("never")),
            report.signed
        ),
        Ok(Err(problem)) => format!(
            "<p class=\"error\" id=\"verdict\">The trail does not verify: {}</p>",
            escape(&problem.to_string())
        ),
    };
    page("Audit verification", Some(&session), &html)
}

/// `GET /console/registry` (operator): every package and its versions.
pub async fn registry(State(host): State<Arc<Host>>, LoggedIn(session, _): LoggedIn) -> Response {
    let listed = async {
        session.caller.operator_only()?;
        let admin = host
            .admin()
            .ok_or_else(|| ApiError::not_found("this host has no registry"))?;
        let registry = admin.registry.clone();
        tokio::task::spawn_blocking(move || {
            let summaries = registry.search("")?;
            summaries
                .iter()
                .map(|summary| registry.package(&summary.name))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))
    };
    let packages = match listed.await {
        Ok(packages) => packages,
        Err(refused) => return refusal_page(Some(&session), &refused),
    };
    let mut html = String::from(
        "<table id=\"packages\"><thead><tr><th>Package</th><th>Version</th><th>Digest</th><th>Size</th><th>Publisher</th><th></th></tr></thead><tbody>",
    );
    for package in &packages {
        for version in package.versions.iter().rev() {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(package.name.as_str()),
                escape(&version.version.to_string()),
                escape(&version.digest.to_string()),
                version.size,
                if version.signed.is_some() {
                    "signed"
                } else {
                    "unsigned"
                },
                if version.yanked { "yanked" } else { "" },
            );
        }
    }
    html.push_str("</tbody></table>");
    page("Registry", Some(&session), &html)
}
