//! Running a service: each step in order, a fresh component instance per
//! call, CEL for arguments, conditions, checks and the response.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value as Json, json};
use zhongtai_audit::{AuditLog, Entry};
use zhongtai_manifest::expr::Expression;
use zhongtai_manifest::{Action, CheckedService};
use zhongtai_runtime::{CallContext, CallError, Runtime, Slug};

use crate::audited::call_entry;
use crate::deploy::{Deployment, cel_value};

/// What a service sees of an HTTP request.
#[derive(Debug, Clone, Default)]
pub struct RequestData {
    /// Path parameters by name.
    pub path: BTreeMap<String, String>,
    /// Query parameters by name.
    pub query: BTreeMap<String, String>,
    /// Headers by lowercase name.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`null` when there is none).
    pub body: Json,
    /// The request id (`x-request-id`, or a fresh one).
    pub request_id: String,
}

impl RequestData {
    fn as_json(&self) -> Json {
        let token = self
            .headers
            .get("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map_or(Json::Null, |t| Json::String(t.trim().to_owned()));
        json!({
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "token": token,
            "id": self.request_id,
        })
    }
}

/// A refusal or failure, answered as `{"error": {"code", "message", "step"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceError {
    /// HTTP status.
    pub status: u16,
    /// Stable code: an error case of the component, `check-failed`,
    /// `not-granted`, `timeout`, `trap`, `expression`, …
    pub code: String,
    /// For people.
    pub message: String,
    /// The step that failed, if one did.
    pub step: Option<String>,
}

impl ServiceError {
    fn new(status: u16, code: &str, message: impl Into<String>, step: Option<&str>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            step: step.map(str::to_owned),
        }
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> Json {
        json!({"error": {"code": self.code, "message": self.message, "step": self.step}})
    }
}

/// What expressions of one run see: the request and earlier steps' results,
/// each converted to CEL once (the steps again only when a step adds one).
struct Scope {
    request: cel::Value,
    steps: serde_json::Map<String, Json>,
    steps_value: cel::Value,
}

impl Scope {
    fn new(request: &Json) -> Self {
        let steps = serde_json::Map::new();
        Self {
            request: cel_value(request),
            steps_value: cel_value(&Json::Object(steps.clone())),
            steps,
        }
    }

    fn record(&mut self, step: &str, result: Json) {
        self.steps.insert(step.to_owned(), result);
        self.steps_value = cel_value(&Json::Object(self.steps.clone()));
    }
}

fn evaluate(
    expression: &Expression,
    scope: &Scope,
    step: Option<&str>,
) -> Result<Json, ServiceError> {
    let mut context = cel::Context::default();
    context.add_variable_from_value("request", scope.request.clone());
    context.add_variable_from_value("steps", scope.steps_value.clone());
    let value = expression.program.execute(&context).map_err(|e| {
        ServiceError::new(
            400,
            "expression",
            format!(
                "`{}` could not be evaluated for this request: {e}",
                expression.source
            ),
            step,
        )
    })?;
    value.json().map_err(|e| {
        ServiceError::new(
            500,
            "expression",
            format!("`{}` has no JSON value: {e}", expression.source),
            step,
        )
    })
}

fn call_error(error: CallError, step: &str) -> ServiceError {
    let status = match &error {
        CallError::Arguments { .. } => 400,
        CallError::Timeout { .. } => 504,
        CallError::Busy { .. } => 503,
        _ => 500,
    };
    ServiceError::new(status, error.code(), error.to_string(), Some(step))
}

/// Runs `service` of `deployment` for `request`; returns status and body.
/// With `audit`, every call the run makes is recorded, durably, before this
/// returns; a run whose records cannot be written fails.
pub fn run(
    runtime: &Runtime,
    audit: Option<&AuditLog>,
    deployment: &Deployment,
    service: &CheckedService,
    request: &RequestData,
) -> Result<(u16, Json), ServiceError> {
    let mut timings = Timings::default();
    run_timed(runtime, audit, deployment, service, request, &mut timings)
}

/// Where the time of a run went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Inside component calls (instantiation included).
    pub components: std::time::Duration,
    /// Writing the run's audit records to disk.
    pub audit: std::time::Duration,
}

/// [`run`], adding where the time went to `timings`.
pub fn run_timed(
    runtime: &Runtime,
    audit: Option<&AuditLog>,
    deployment: &Deployment,
    service: &CheckedService,
    request: &RequestData,
    timings: &mut Timings,
) -> Result<(u16, Json), ServiceError> {
    let mut records = Vec::new();
    let outcome = steps(
        runtime,
        deployment,
        service,
        request,
        &mut timings.components,
        &mut records,
    );
    let started = std::time::Instant::now();
    let written = match audit {
        Some(audit) if !records.is_empty() => audit.append_all(records).map(|_| ()),
        _ => Ok(()),
    };
    timings.audit += started.elapsed();
    if let Err(e) = written {
        tracing::error!(error = %e, request = %request.request_id, "audit trail not written");
        return Err(ServiceError::new(
            503,
            "audit-unavailable",
            format!(
                "the request ran but its audit records could not be written, so its answer is withheld: {e}"
            ),
            None,
        ));
    }
    outcome
}

fn steps(
    runtime: &Runtime,
    deployment: &Deployment,
    service: &CheckedService,
    request: &RequestData,
    in_components: &mut std::time::Duration,
    records: &mut Vec<Entry>,
) -> Result<(u16, Json), ServiceError> {
    let mut scope = Scope::new(&request.as_json());
    let department = Slug::parse("department", &deployment.manifest.department)
        .map_err(|e| ServiceError::new(500, "internal", e.to_string(), None))?;
    let service_slug = Slug::parse("service", &service.name)
        .map_err(|e| ServiceError::new(500, "internal", e.to_string(), None))?;
    let mut subject: Option<String> = None;
    for step in &service.steps {
        let name = step.name.as_str();
        if let Some(condition) = &step.condition
            && evaluate(condition, &scope, Some(name))? != Json::Bool(true)
        {
            scope.record(name, Json::Null);
            continue;
        }
        match &step.action {
            Action::Check {
                condition,
                status,
                message,
            } => {
                if evaluate(condition, &scope, Some(name))? != Json::Bool(true) {
                    return Err(ServiceError::new(
                        *status,
                        "check-failed",
                        message.clone(),
                        Some(name),
                    ));
                }
                scope.record(name, Json::Bool(true));
            }
            Action::Call {
                alias,
                interface,
                function,
                args,
                errors,
            } => {
                let component = deployment.components.get(alias).ok_or_else(|| {
                    ServiceError::new(
                        500,
                        "internal",
                        format!("alias {alias} is not deployed"),
                        Some(name),
                    )
                })?;
                if subject.is_none()
                    && let Some(expression) = &service.subject
                    && let Ok(Json::String(who)) = evaluate(expression, &scope, None)
                {
                    subject = Some(who);
                }
                let context = CallContext {
                    department: department.clone(),
                    service: service_slug.clone(),
                    request_id: request.request_id.clone(),
                    subject: subject.clone(),
                };
                let version = Some(&component.version);
                if !component.spec.grants(interface, function) {
                    tracing::warn!(department = %department, service = %service_slug, alias, interface, function, "call refused: not granted");
                    let mut entry =
                        call_entry(&context, &component.loaded, version, interface, function);
                    entry.outcome = "refused".to_owned();
                    entry.case = Some("not-granted".to_owned());
                    records.push(entry);
                    return Err(ServiceError::new(
                        403,
                        "not-granted",
                        format!(
                            "{} may not call {alias}.{interface}.{function}: the manifest does not grant it",
                            department
                        ),
                        Some(name),
                    ));
                }
                let mut arguments = serde_json::Map::new();
                for (param, expression) in args {
                    arguments.insert(param.clone(), evaluate(expression, &scope, Some(name))?);
                }
                let (result, entry) = crate::audited::call(
                    runtime,
                    &component.loaded,
                    version,
                    context,
                    interface,
                    function,
                    &Json::Object(arguments),
                );
                *in_components += std::time::Duration::from_micros(entry.duration_us);
                let case = entry.case.clone();
                records.push(entry);
                let result = result.map_err(|e| call_error(e, name))?;
                let value = match (result, case) {
                    (Json::Object(mut map), Some(case)) => {
                        let detail = match map.remove("err") {
                            Some(Json::Object(mut m)) if m.len() == 1 => m.remove(&case),
                            Some(Json::String(_)) | None => None,
                            other => other,
                        };
                        let message = match detail {
                            Some(Json::String(text)) => text,
                            Some(other) => format!("{case}: {other}"),
                            None => case.clone(),
                        };
                        let status = errors.get(&case).copied().unwrap_or(422);
                        return Err(ServiceError::new(status, &case, message, Some(name)));
                    }
                    (Json::Object(mut map), None) if map.len() == 1 && map.contains_key("ok") => {
                        map.remove("ok").unwrap_or(Json::Null)
                    }
                    (other, _) => other,
                };
                scope.record(name, value);
            }
        }
    }
    let body = evaluate(&service.body, &scope, None)?;
    Ok((service.status, body))
}

/// A deployment with its routes, shared by requests.
pub type SharedDeployment = Arc<Deployment>;
