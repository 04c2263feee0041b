//! Running a service: each step in order, a fresh component instance per
//! call, CEL for arguments, conditions, checks and the response.
//!
//! A step's answer is read from the called function's WIT result type
//! ([`Returned`]): the payload of `ok`, or the whole value when the
//! function does not return a `result`; an `err` ends the run with the
//! status the manifest maps its case to. Refusals and failures are
//! [`ApiError`]s naming the step.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cel::common::value::{CowVal, Val};

use serde_json::{Value as Json, json};
use zhongtai_audit::{AuditLog, DigestKey, Entry};
use zhongtai_manifest::expr::Expression;
use zhongtai_manifest::{Action, Call, Caller, CheckedService};
use zhongtai_runtime::{CallContext, Outcome, Returned, Runtime};

use crate::audited::{CallTarget, call_entry, context_entry};
use crate::deploy::{AUTHENTICATE, Deployment, cel_map, cel_val};
use crate::error::ApiError;
use crate::traces::Trace;
use opentelemetry::KeyValue;

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
    /// The request id, made by the host.
    pub request_id: String,
    /// The client's `x-request-id`, when a sensible one.
    pub client_request_id: Option<String>,
    /// The client's IP address: the peer, or, when the peer is a trusted
    /// proxy, the nearest untrusted address of `x-forwarded-for`. Empty
    /// when unknown (a request made in process).
    pub client: String,
    /// The request's span, when traces are on: the steps and calls are
    /// traced under it.
    pub trace: Option<crate::traces::Trace>,
}

impl RequestData {
    /// The bearer token of `Authorization: Bearer <token>`, if any.
    fn bearer_token(&self) -> Option<&str> {
        self.headers
            .get("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// The request as expressions see it; with the verified `caller`'s
    /// claims, when the service authenticated one.
    fn as_json(&self, caller: Option<Json>) -> Json {
        let token = self
            .bearer_token()
            .map_or(Json::Null, |t| Json::String(t.to_owned()));
        let mut json = json!({
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "token": token,
            "id": self.request_id,
            "client": self.client,
        });
        if let Some(claims) = caller {
            json["caller"] = claims;
        }
        json
    }
}

/// What expressions of one run see: the request and earlier steps'
/// results. A plain path (`request.body.id`, `steps.subject`) is read from
/// the JSON as it is; any other expression is evaluated by CEL, on the
/// request and the steps converted to CEL values once, when the first
/// such expression needs them (the steps again only after a step adds
/// one), and lent to each evaluation rather than copied into it.
struct Scope {
    request: Json,
    request_value: OnceCell<Box<dyn Val>>,
    steps: serde_json::Map<String, Json>,
    steps_value: OnceCell<Box<dyn Val>>,
}

/// `request` and `steps` for one evaluation, borrowed from the [`Scope`].
struct Variables<'a> {
    request: &'a dyn Val,
    steps: &'a dyn Val,
}

impl cel::context::VariableResolver for Variables<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "request" => Some(CowVal::Borrowed(self.request)),
            "steps" => Some(CowVal::Borrowed(self.steps)),
            _ => None,
        }
    }
}

impl Scope {
    fn new(request: Json) -> Self {
        Self {
            request,
            request_value: OnceCell::new(),
            steps: serde_json::Map::new(),
            steps_value: OnceCell::new(),
        }
    }

    fn record(&mut self, step: &str, result: Json) {
        self.steps.insert(step.to_owned(), result);
        self.steps_value = OnceCell::new();
    }

    /// The value at a plain path, read from the JSON; `None` when the
    /// expression is not a plain path or the path leads nowhere (then CEL
    /// evaluates it, and says what is missing exactly as it would have).
    fn read_path(&self, expression: &Expression) -> Option<Json> {
        let (root, fields) = expression.path()?.split_first()?;
        let (first, rest) = match root.as_str() {
            "request" => (&self.request, fields),
            "steps" => {
                let (step, rest) = fields.split_first()?;
                (self.steps.get(step)?, rest)
            }
            _ => return None,
        };
        rest.iter()
            .try_fold(first, |value, field| value.as_object()?.get(field))
            .cloned()
    }

    fn evaluate(&self, expression: &Expression, step: Option<&str>) -> Result<Json, ApiError> {
        match self.read_path(expression) {
            Some(value) => Ok(value),
            None => self.evaluate_cel(expression, step),
        }
    }

    /// `expression` evaluated by CEL.
    fn evaluate_cel(&self, expression: &Expression, step: Option<&str>) -> Result<Json, ApiError> {
        let variables = Variables {
            request: self
                .request_value
                .get_or_init(|| cel_val(&self.request))
                .as_ref(),
            steps: self
                .steps_value
                .get_or_init(|| cel_map(&self.steps))
                .as_ref(),
        };
        let mut context = zhongtai_manifest::expr::context();
        context.set_variable_resolver(&variables);
        let value = expression.program.execute(&context).map_err(|e| {
            ApiError::new(
                400,
                "expression",
                format!(
                    "`{}` could not be evaluated for this request: {e}",
                    expression.source
                ),
            )
            .at_step(step)
        })?;
        value.json().map_err(|e| {
            ApiError::new(
                500,
                "expression",
                format!("`{}` has no JSON value: {e}", expression.source),
            )
            .at_step(step)
        })
    }
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
) -> Result<(u16, Json), ApiError> {
    let mut timings = Timings::default();
    run_timed(runtime, audit, deployment, service, request, &mut timings)
}

/// Where the time of a run went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Inside component calls (instantiation included).
    pub components: Duration,
    /// Writing the run's audit records to disk.
    pub audit: Duration,
}

/// [`run`], adding where the time went to `timings`.
pub fn run_timed(
    runtime: &Runtime,
    audit: Option<&AuditLog>,
    deployment: &Deployment,
    service: &CheckedService,
    request: &RequestData,
    timings: &mut Timings,
) -> Result<(u16, Json), ApiError> {
    let ran = run_steps(
        runtime,
        audit.map(AuditLog::digests),
        deployment,
        service,
        request,
    );
    timings.components += ran.components;
    let started = Instant::now();
    let written = match audit {
        Some(audit) if !ran.records.is_empty() => audit.append_all(ran.records).map(|_| ()),
        _ => Ok(()),
    };
    timings.audit += started.elapsed();
    answer_if_recorded(ran.outcome, written, request)
}

/// What running a service's steps left: its answer, which may be given
/// only once `records` are in the audit trail, and the time spent in
/// components.
pub struct Ran {
    /// The answer, or the refusal.
    pub outcome: Result<(u16, Json), ApiError>,
    /// The records of the run, to append before answering.
    pub records: Vec<Entry>,
    /// Time inside component calls.
    pub components: Duration,
}

/// Runs the steps of `service` for `request` and returns what the run
/// left, without appending its records: the caller appends them and then
/// answers with [`answer_if_recorded`]. `digests` keys the records'
/// digests of arguments and results.
pub fn run_steps(
    runtime: &Runtime,
    digests: Option<&DigestKey>,
    deployment: &Deployment,
    service: &CheckedService,
    request: &RequestData,
) -> Ran {
    let mut run = Run {
        runtime,
        digests,
        deployment,
        service,
        request,
        subject: None,
        in_components: Duration::ZERO,
        records: Vec::new(),
        step: None,
    };
    // The request becomes a CEL value once, after the caller is admitted.
    let outcome = run
        .admit()
        .and_then(|caller| run.steps(Scope::new(request.as_json(caller))));
    Ran {
        outcome,
        records: run.records,
        components: run.in_components,
    }
}

/// The answer of a run, once appending its records ended with `written`:
/// a run whose records could not be written is answered 503, never
/// without its record.
pub fn answer_if_recorded<E: std::fmt::Display>(
    outcome: Result<(u16, Json), ApiError>,
    written: Result<(), E>,
    request: &RequestData,
) -> Result<(u16, Json), ApiError> {
    if let Err(e) = written {
        tracing::error!(error = %e, request = %request.request_id, "audit trail not written");
        return Err(ApiError::new(
            503,
            "audit-unavailable",
            format!(
                "the request ran but its audit records could not be written, so its answer is withheld: {e}"
            ),
        ));
    }
    outcome
}

/// One run of a service: what it has seen and recorded so far.
struct Run<'a> {
    runtime: &'a Runtime,
    /// Keys the digests in the run's records.
    digests: Option<&'a DigestKey>,
    deployment: &'a Deployment,
    service: &'a CheckedService,
    request: &'a RequestData,
    /// Who the request is for, once the service's `subject` can be read.
    subject: Option<String>,
    in_components: Duration,
    records: Vec<Entry>,
    /// The span of the step running, when traces are on.
    step: Option<Trace>,
}

/// The step name refusals of a service's caller carry.
pub const ADMIT_STEP: &str = "authenticate";

impl Run<'_> {
    /// Who the run's calls are made for.
    fn context(&self) -> CallContext {
        CallContext {
            department: self.deployment.manifest.department.clone(),
            service: self.service.name.clone(),
            request_id: self.request.request_id.clone(),
            client_request_id: self.request.client_request_id.clone(),
            subject: self.subject.clone(),
        }
    }

    /// The record of a request refused before any step, with `case`.
    fn refusal_entry(&self, case: &str, detail: String) -> Entry {
        let mut entry = context_entry(&self.context());
        entry.outcome = "refused".to_owned();
        entry.case = Some(case.to_owned());
        entry.detail = Some(detail);
        entry
    }

    /// Admits the caller as the service says, before any step. A public
    /// service admits anyone. An authenticated one has the bearer token
    /// verified by its auth capability (401 when there is none or it does
    /// not verify) and judges the verified claims by its `require` (403);
    /// the caller is then the subject of every call, and its claims are
    /// returned for `request.caller`. Refusals are recorded.
    fn admit(&mut self) -> Result<Option<Json>, ApiError> {
        if !matches!(self.service.caller, Caller::Authenticated { .. }) {
            return Ok(None);
        }
        self.step = self.span_under_request(ADMIT_STEP);
        let admitted = self.authenticate();
        self.end_step(&admitted);
        admitted
    }

    /// The `admit` of an authenticated service.
    fn authenticate(&mut self) -> Result<Option<Json>, ApiError> {
        let Caller::Authenticated { alias, require } = &self.service.caller else {
            return Ok(None);
        };
        let at = Some(ADMIT_STEP);
        let component = self.deployment.components.get(alias).ok_or_else(|| {
            ApiError::internal(format!("alias {alias} is not deployed")).at_step(at)
        })?;
        let Some(token) = self.request.bearer_token() else {
            let message =
                "this service needs the caller's bearer token (Authorization: Bearer <token>)";
            self.records
                .push(self.refusal_entry("unauthenticated", message.to_owned()));
            return Err(ApiError::new(401, "unauthenticated", message).at_step(at));
        };
        let target = CallTarget {
            component: &component.loaded,
            version: Some(&component.version),
            interface: AUTHENTICATE.0,
            function: AUTHENTICATE.1,
        };
        let (result, entry) = self.traced_call(target, self.context(), &json!({ "token": token }));
        self.in_components += Duration::from_micros(entry.duration_us);
        self.records.push(entry);
        let returned = result.map_err(|e| ApiError::from(e).at_step(at))?;
        let claims = refusal(returned, &BTreeMap::new()).map_err(|mut refused| {
            refused.status = axum::http::StatusCode::UNAUTHORIZED;
            refused.at_step(at)
        })?;
        self.subject = claims["subject-id"].as_str().map(str::to_owned);
        if let Some(reason) = require.refusal(&claims) {
            self.records
                .push(self.refusal_entry("forbidden", reason.clone()));
            return Err(ApiError::new(403, "forbidden", reason).at_step(at));
        }
        Ok(Some(claims))
    }

    fn steps(&mut self, mut scope: Scope) -> Result<(u16, Json), ApiError> {
        for step in &self.service.steps {
            let name = step.name.as_str();
            self.step = self.span_under_request(name);
            let answer = self.step(&scope, step);
            self.end_step(&answer);
            scope.record(name, answer?);
        }
        let body = scope.evaluate(&self.service.body, None)?;
        Ok((self.service.status, body))
    }

    /// Runs one step; its answer (`null` when its condition is false).
    fn step(
        &mut self,
        scope: &Scope,
        step: &zhongtai_manifest::CheckedStep,
    ) -> Result<Json, ApiError> {
        let name = step.name.as_str();
        if let Some(condition) = &step.condition
            && scope.evaluate(condition, Some(name))? != Json::Bool(true)
        {
            if let Some(span) = &self.step {
                span.set(vec![KeyValue::new("zhongtai.skipped", true)]);
            }
            return Ok(Json::Null);
        }
        match &step.action {
            Action::Check {
                condition,
                status,
                message,
            } => {
                if scope.evaluate(condition, Some(name))? != Json::Bool(true) {
                    return Err(
                        ApiError::new(*status, "check-failed", message.clone()).at_step(Some(name))
                    );
                }
                Ok(Json::Bool(true))
            }
            Action::Call(call) => self.call(scope, name, call),
        }
    }

    /// The attributes every span of the run carries.
    fn span_attributes(&self) -> Vec<KeyValue> {
        vec![
            KeyValue::new(
                "zhongtai.department",
                self.deployment.manifest.department.to_string(),
            ),
            KeyValue::new("zhongtai.service", self.service.name.to_string()),
            KeyValue::new("zhongtai.request_id", self.request.request_id.clone()),
        ]
    }

    /// The span of step `name` under the request's, when traces are on.
    fn span_under_request(&self, name: &str) -> Option<Trace> {
        let request = self.request.trace.as_ref()?;
        let mut attributes = self.span_attributes();
        attributes.push(KeyValue::new("zhongtai.step", name.to_owned()));
        Some(request.child(format!("step {name}"), attributes))
    }

    /// Ends the running step's span with how the step ended.
    fn end_step<T>(&mut self, result: &Result<T, ApiError>) {
        if let Some(span) = self.step.take() {
            match result {
                Ok(_) => span.end("ok", None),
                Err(e) => span.end(&e.code, (e.status.as_u16() >= 500).then_some(&*e.message)),
            }
        }
    }

    /// Calls `target` as [`crate::audited::call`] does, in a span under
    /// the running step's when traces are on.
    fn traced_call(
        &self,
        target: CallTarget<'_>,
        context: CallContext,
        args: &Json,
    ) -> (Result<Returned, zhongtai_runtime::CallError>, Entry) {
        let span = self.step.as_ref().map(|step| {
            let mut attributes = self.span_attributes();
            attributes.extend([
                KeyValue::new("zhongtai.package", target.component.package().to_owned()),
                KeyValue::new(
                    "zhongtai.version",
                    target.version.map(ToString::to_string).unwrap_or_default(),
                ),
                KeyValue::new("zhongtai.interface", target.interface.to_owned()),
                KeyValue::new("zhongtai.function", target.function.to_owned()),
            ]);
            step.child(
                format!(
                    "call {}/{}.{}",
                    target.component.package(),
                    target.interface,
                    target.function
                ),
                attributes,
            )
        });
        let (result, entry) =
            crate::audited::call(self.runtime, target, context, args, self.digests);
        if let Some(span) = span {
            if let Some(case) = &entry.case {
                span.set(vec![KeyValue::new("zhongtai.case", case.clone())]);
            }
            let failed = result.as_ref().err().map(ToString::to_string);
            span.end(&entry.outcome, failed.as_deref());
        }
        (result, entry)
    }

    /// Runs the call of step `name`; its answer, or the refusal its error
    /// case maps to.
    fn call(&mut self, scope: &Scope, name: &str, call: &Call) -> Result<Json, ApiError> {
        let Call {
            alias,
            interface,
            function,
            args,
            errors,
        } = call;
        let component = self.deployment.components.get(alias).ok_or_else(|| {
            ApiError::internal(format!("alias {alias} is not deployed")).at_step(Some(name))
        })?;
        if self.subject.is_none()
            && let Some(expression) = &self.service.subject
            && let Ok(Json::String(who)) = scope.evaluate(expression, None)
        {
            self.subject = Some(who);
        }
        let context = self.context();
        let target = CallTarget {
            component: &component.loaded,
            version: Some(&component.version),
            interface,
            function,
        };
        if !component.spec.grants(interface, function) {
            tracing::warn!(department = %context.department, service = %context.service, alias, interface, function, "call refused: not granted");
            let mut entry = call_entry(&context, target);
            entry.outcome = "refused".to_owned();
            entry.case = Some("not-granted".to_owned());
            self.records.push(entry);
            return Err(ApiError::new(
                403,
                "not-granted",
                format!(
                    "{} may not call {alias}.{interface}.{function}: the manifest does not grant it",
                    context.department
                ),
            )
            .at_step(Some(name)));
        }
        let mut arguments = serde_json::Map::new();
        for (param, expression) in args {
            arguments.insert(param.clone(), scope.evaluate(expression, Some(name))?);
        }
        let (result, entry) = self.traced_call(target, context, &Json::Object(arguments));
        self.in_components += Duration::from_micros(entry.duration_us);
        self.records.push(entry);
        let returned = result.map_err(|e| ApiError::from(e).at_step(Some(name)))?;
        refusal(returned, errors).map_err(|e| e.at_step(Some(name)))
    }
}

/// A call's answer, or the refusal its error case maps to in `errors`
/// (422 when the manifest maps it to nothing).
fn refusal(returned: Returned, errors: &BTreeMap<String, u16>) -> Result<Json, ApiError> {
    let Outcome::Error { case, detail } = &returned.outcome else {
        return Ok(returned.into_answer());
    };
    let message = match detail {
        Some(Json::String(text)) => text.clone(),
        Some(other) => format!("{case}: {other}"),
        None => case.clone(),
    };
    let status = errors.get(case).copied().unwrap_or(422);
    Err(ApiError::new(status, case, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 4] = ["a", "b", "id", "body"];

    fn json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            (u64::MAX / 2..u64::MAX).prop_map(Json::from),
            (-1e12f64..1e12).prop_map(Json::from),
            "[a-z ]{0,6}".prop_map(Json::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
                prop::collection::btree_map(prop::sample::select(NAMES.to_vec()), inner, 0..4)
                    .prop_map(|map| Json::Object(
                        map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                    )),
            ]
        })
    }

    proptest! {
        /// A plain path read from the JSON gives what CEL gives for it.
        #[test]
        fn a_path_read_from_json_equals_its_cel_value(
            request in json(),
            steps in prop::collection::btree_map(prop::sample::select(NAMES.to_vec()), json(), 0..3),
            root in prop::sample::select(vec!["request", "steps"]),
            fields in prop::collection::vec(prop::sample::select(NAMES.to_vec()), 0..4),
        ) {
            let mut scope = Scope::new(request);
            for (name, result) in steps {
                scope.record(name, result);
            }
            let source = std::iter::once(root).chain(fields).collect::<Vec<_>>().join(".");
            let expression = Expression::compile(&source).unwrap();
            prop_assert!(expression.path().is_some());
            if let Some(read) = scope.read_path(&expression) {
                let evaluated = scope.evaluate_cel(&expression, None);
                prop_assert_eq!(Some(&read), evaluated.as_ref().ok(), "{}", source);
            }
        }
    }

    #[test]
    fn a_path_that_leads_nowhere_is_refused_as_cel_refuses_it() {
        let scope = Scope::new(serde_json::json!({"body": {"id": "x"}}));
        let missing = Expression::compile("request.body.name").unwrap();
        assert_eq!(scope.read_path(&missing), None);
        let refused = scope.evaluate(&missing, Some("s")).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(
            refused
                .message
                .contains("`request.body.name` could not be evaluated"),
            "{}",
            refused.message
        );
        let found = Expression::compile("request.body.id").unwrap();
        assert_eq!(scope.evaluate(&found, None).unwrap(), "x");
    }
}
