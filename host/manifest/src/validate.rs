//! Structural validation: everything that can be checked without the
//! components themselves. Checks that need their WIT signatures (interface,
//! function, argument names, literal types) happen at deploy, against the
//! loaded components.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;
use zhongtai_ids::{Slug, is_package_name};

use crate::caller::{Caller, KINDS, Requirement};
use crate::error::{Locator, ManifestError, Place};
use crate::expr::Expression;
use crate::model::{Manifest, Step};
use crate::types::WitType;

/// HTTP methods a service may use.
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A manifest that passed structural validation, with its expressions
/// compiled.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The department.
    pub department: Slug,
    /// Where the manifest names its department.
    pub department_place: Place,
    /// Components by alias.
    pub components: BTreeMap<String, ComponentSpec>,
    /// Services in file order.
    pub services: Vec<CheckedService>,
    /// The record types of `[types]`, by name.
    pub types: BTreeMap<String, WitType>,
}

/// The declared type of a service's request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyType {
    /// A type the manifest spells out: a name under `[types]` or a type
    /// expression.
    Declared(WitType),
    /// A type a component's interface exports, read from its WIT at
    /// deploy.
    Component {
        /// The component's alias.
        alias: String,
        /// The interface, as written.
        interface: String,
        /// The type's name.
        name: String,
    },
}

/// A component as the manifest asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSpec {
    /// `namespace:name`.
    pub package: String,
    /// The semver requirement.
    pub requirement: semver::VersionReq,
    /// Granted `interface.function` or `interface.*` entries.
    pub grants: Vec<String>,
    /// Where the manifest declares it (`components.<alias>`).
    pub place: Place,
}

impl ComponentSpec {
    /// Whether `interface.function` is granted (`interface` as written in
    /// the step, e.g. `authn`).
    pub fn grants(&self, interface: &str, function: &str) -> bool {
        self.grants
            .iter()
            .any(|g| grant_covers(g, interface, function))
    }
}

/// Whether `text` is a grant: `interface.function` or `interface.*`.
pub fn is_grant(text: &str) -> bool {
    text.rsplit_once('.')
        .is_some_and(|(i, f)| !i.is_empty() && !f.is_empty())
}

/// Whether the grant `grant` covers `interface.function`: `i.*` covers every
/// function of `i` (and the grant `i.*` itself), `i.f` only `i.f`.
pub fn grant_covers(grant: &str, interface: &str, function: &str) -> bool {
    match grant.rsplit_once('.') {
        Some((i, "*")) => i == interface,
        Some((i, f)) => i == interface && f == function,
        None => false,
    }
}

/// A service ready to run.
#[derive(Debug, Clone)]
pub struct CheckedService {
    /// Its name.
    pub name: Slug,
    /// HTTP method.
    pub method: String,
    /// Route below the department, e.g. `/licenses/{number}`.
    pub path: String,
    /// Steps in order.
    pub steps: Vec<CheckedStep>,
    /// Response status.
    pub status: u16,
    /// Response body.
    pub body: Expression,
    /// Who the request is for, once the steps it reads have run.
    pub subject: Option<Expression>,
    /// Who may call it.
    pub caller: Caller,
    /// The declared type of its request body, if any, and where.
    pub body_type: Option<(BodyType, Place)>,
    /// Where the manifest declares it (`services[i]`).
    pub place: Place,
}

impl CheckedService {
    /// What of the request body its expressions read (see
    /// [`Expression::body_fields`]): the host converts only that.
    pub fn body_fields(&self) -> crate::expr::BodyFields {
        let mut fields = self.body.body_fields();
        for expression in self.subject.iter() {
            fields.merge(expression.body_fields());
        }
        for step in &self.steps {
            if let Some(condition) = &step.condition {
                fields.merge(condition.body_fields());
            }
            match &step.action {
                Action::Call(call) => {
                    for argument in call.args.values() {
                        fields.merge(argument.body_fields());
                    }
                }
                Action::Check { condition, .. } => fields.merge(condition.body_fields()),
            }
        }
        fields
    }
}

/// A call step's target and what it passes.
#[derive(Debug, Clone)]
pub struct Call {
    /// Component alias.
    pub alias: String,
    /// Interface name as written.
    pub interface: String,
    /// Function name.
    pub function: String,
    /// Arguments by parameter name.
    pub args: BTreeMap<String, Expression>,
    /// Status per error case.
    pub errors: BTreeMap<String, u16>,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Call `alias.interface.function`.
    Call(Call),
    /// Refuse the request unless the condition holds.
    Check {
        /// The condition.
        condition: Expression,
        /// Status when it does not hold.
        status: u16,
        /// Message when it does not hold.
        message: String,
    },
}

/// A step ready to run.
#[derive(Debug, Clone)]
pub struct CheckedStep {
    /// Its name.
    pub name: String,
    /// Run only when this holds.
    pub condition: Option<Expression>,
    /// What it does.
    pub action: Action,
    /// Where it is declared (`services[i].steps[j]`), for deploy-time errors.
    pub place: Place,
}

fn is_identifier(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

struct Checker<'a> {
    at: Locator<'a>,
    errors: Vec<ManifestError>,
}

impl Checker<'_> {
    fn fail<T>(&mut self, spanned: &Spanned<T>, field: &str, message: impl Into<String>) {
        self.errors
            .push(self.at.error(spanned.span().start, field, message));
    }

    fn expression(
        &mut self,
        spanned: &Spanned<String>,
        field: &str,
        earlier: &BTreeSet<String>,
    ) -> Option<Expression> {
        match Expression::compile(spanned.get_ref()) {
            Ok(expression) => {
                for variable in expression.variables() {
                    if variable != "request" && variable != "steps" {
                        self.fail(spanned, field, format!("unknown variable `{variable}`; expressions may use `request` and `steps`"));
                    }
                }
                for step in expression.step_references() {
                    if !earlier.contains(&step) {
                        self.fail(
                            spanned,
                            field,
                            format!("refers to step `{step}`, which does not exist or comes later"),
                        );
                    }
                }
                Some(expression)
            }
            Err(message) => {
                self.fail(spanned, field, message);
                None
            }
        }
    }

    fn step(
        &mut self,
        step: &Step,
        field: &str,
        earlier: &BTreeSet<String>,
        aliases: &BTreeSet<String>,
    ) -> Option<CheckedStep> {
        let name = step.name.get_ref().clone();
        if !is_identifier(&name) {
            self.fail(
                &step.name,
                &format!("{field}.name"),
                format!(
                    "{name:?} must be lowercase letters, digits or '_', starting with a letter"
                ),
            );
        }
        let condition = step
            .condition
            .as_ref()
            .and_then(|c| self.expression(c, &format!("{field}.if"), earlier));
        let action = match (&step.call, &step.check) {
            (Some(call), None) => {
                let parts: Vec<&str> = call.get_ref().splitn(2, '.').collect();
                let target = match parts.as_slice() {
                    [alias, rest] => rest
                        .rsplit_once('.')
                        .map(|(interface, function)| (*alias, interface, function)),
                    _ => None,
                };
                let Some((alias, interface, function)) = target else {
                    self.fail(
                        call,
                        &format!("{field}.call"),
                        format!("{:?} must be alias.interface.function", call.get_ref()),
                    );
                    return None;
                };
                if !aliases.contains(alias) {
                    let known = aliases.iter().cloned().collect::<Vec<_>>().join(", ");
                    self.fail(
                        call,
                        &format!("{field}.call"),
                        format!(
                            "unknown component alias `{alias}`; [components] declares: {known}"
                        ),
                    );
                }
                let args = step
                    .args
                    .iter()
                    .filter_map(|(param, value)| {
                        self.expression(value, &format!("{field}.args.{param}"), earlier)
                            .map(|e| (param.clone(), e))
                    })
                    .collect();
                Action::Call(Call {
                    alias: alias.to_owned(),
                    interface: interface.to_owned(),
                    function: function.to_owned(),
                    args,
                    errors: step.errors.clone(),
                })
            }
            (None, Some(check)) => {
                if !step.args.is_empty() || !step.errors.is_empty() {
                    self.fail(check, field, "a check step takes no args or errors");
                }
                let condition = self.expression(check, &format!("{field}.check"), earlier)?;
                Action::Check {
                    condition,
                    status: step.status.unwrap_or(403),
                    message: step
                        .message
                        .clone()
                        .unwrap_or_else(|| format!("refused by check {name}")),
                }
            }
            _ => {
                self.fail(
                    &step.name,
                    field,
                    "a step has exactly one of `call` or `check`",
                );
                return None;
            }
        };
        Some(CheckedStep {
            name,
            condition,
            action,
            place: self.at.place(step.name.span().start, field),
        })
    }
}

/// Every route declared so far, by method and path shape, with the service
/// that declares it; and every service name.
#[derive(Default)]
struct Declared {
    names: BTreeSet<String>,
    routes: BTreeMap<(String, String), String>,
}

/// Whether `path` starts with `/` and each segment is a word or a
/// `{parameter}`.
fn is_route_path(path: &str) -> bool {
    path.starts_with('/')
        && path[1..].split('/').all(|segment| {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(param) => is_identifier(param),
                None => {
                    segment.is_empty()
                        || segment
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                }
            }
        })
}

impl Checker<'_> {
    fn component(
        &mut self,
        alias: &str,
        component: &Spanned<crate::model::ComponentRef>,
    ) -> Option<ComponentSpec> {
        let field = format!("components.{alias}");
        let wanted = component.get_ref();
        if !is_identifier(alias) {
            self.fail(component, &field, format!("alias {alias:?} must be lowercase letters, digits or '_', starting with a letter"));
        }
        if !is_package_name(&wanted.package) {
            self.fail(
                component,
                &format!("{field}.package"),
                format!("{:?} must be namespace:name", wanted.package),
            );
        }
        for grant in &wanted.grants {
            if !is_grant(grant) {
                self.fail(
                    component,
                    &format!("{field}.grants"),
                    format!("{grant:?} must be interface.function or interface.*"),
                );
            }
        }
        match semver::VersionReq::parse(&wanted.version) {
            Ok(requirement) => Some(ComponentSpec {
                package: wanted.package.clone(),
                requirement,
                grants: wanted.grants.clone(),
                place: self.at.place(component.span().start, &field),
            }),
            Err(e) => {
                self.fail(
                    component,
                    &format!("{field}.version"),
                    format!(
                        "{:?} is not a semver requirement (like \"^1.0\"): {e}",
                        wanted.version
                    ),
                );
                None
            }
        }
    }

    /// Checks the service's name, method and path, and that neither its
    /// name nor its route was declared before.
    fn route(
        &mut self,
        service: &crate::model::Service,
        field: &str,
        declared: &mut Declared,
    ) -> (Option<Slug>, String, String) {
        let name = service.name.get_ref();
        let slug = Slug::parse("service", name).ok();
        if slug.is_none() {
            self.fail(
                &service.name,
                &format!("{field}.name"),
                format!("{name:?} must be 1 to 64 lowercase letters, digits or '-'"),
            );
        } else if !declared.names.insert(name.clone()) {
            self.fail(
                &service.name,
                &format!("{field}.name"),
                format!("service `{name}` is declared twice"),
            );
        }
        let method = service.method.get_ref().to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            self.fail(
                &service.method,
                &format!("{field}.method"),
                format!(
                    "{:?} is not one of {}",
                    service.method.get_ref(),
                    METHODS.join(", ")
                ),
            );
        }
        let path = service.path.get_ref().clone();
        if !is_route_path(&path) {
            self.fail(
                &service.path,
                &format!("{field}.path"),
                format!("{path:?} must start with '/'; segments are words or {{parameter}}"),
            );
        }
        if path.trim_end_matches('/') == "/openapi.json" {
            self.fail(
                &service.path,
                &format!("{field}.path"),
                "/openapi.json is where the host serves the department's OpenAPI document; choose another path",
            );
        }
        let shape = path
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        if let Some(other) = declared
            .routes
            .insert((method.clone(), shape), name.clone())
        {
            self.fail(
                &service.path,
                &format!("{field}.path"),
                format!("route {method} {path} is declared twice (also by service `{other}`)"),
            );
        }
        (slug, method, path)
    }

    /// Checks how the service admits its caller: exactly one of
    /// `authenticate` (naming a declared alias, with an optional `require`)
    /// or `public = true`.
    fn caller(
        &mut self,
        service: &crate::model::Service,
        field: &str,
        aliases: &BTreeSet<String>,
    ) -> Option<Caller> {
        let public = service.public.as_ref().is_some_and(|p| *p.get_ref());
        match (&service.authenticate, public) {
            (None, false) => {
                self.fail(
                    &service.name,
                    field,
                    "says neither `authenticate = \"<auth alias>\"` nor `public = true`: every service states who may call it",
                );
                None
            }
            (Some(alias), true) => {
                self.fail(
                    alias,
                    &format!("{field}.authenticate"),
                    "a service is either authenticated or `public = true`, not both",
                );
                None
            }
            (None, true) => {
                if let Some(require) = &service.require {
                    self.fail(
                        require,
                        &format!("{field}.require"),
                        "a public service has no caller to require anything of; use `authenticate`",
                    );
                }
                Some(Caller::Public)
            }
            (Some(alias), false) => {
                if !aliases.contains(alias.get_ref()) {
                    let known = aliases.iter().cloned().collect::<Vec<_>>().join(", ");
                    self.fail(
                        alias,
                        &format!("{field}.authenticate"),
                        format!(
                            "unknown component alias `{}`; [components] declares: {known}",
                            alias.get_ref()
                        ),
                    );
                }
                let require = match &service.require {
                    Some(require) => self.requirement(require, &format!("{field}.require"))?,
                    None => Requirement::default(),
                };
                Some(Caller::Authenticated {
                    alias: alias.get_ref().clone(),
                    require,
                })
            }
        }
    }

    fn requirement(
        &mut self,
        require: &Spanned<crate::model::Require>,
        field: &str,
    ) -> Option<Requirement> {
        let wanted = require.get_ref();
        let mut valid = true;
        for kind in &wanted.kind {
            if !KINDS.contains(&kind.as_str()) {
                self.fail(
                    require,
                    &format!("{field}.kind"),
                    format!("{kind:?} is not one of {}", KINDS.join(", ")),
                );
                valid = false;
            }
        }
        let department = match &wanted.department {
            Some(text) => match Slug::parse("department", text) {
                Ok(slug) => Some(slug),
                Err(e) => {
                    self.fail(require, &format!("{field}.department"), e.to_string());
                    valid = false;
                    None
                }
            },
            None => None,
        };
        for role in &wanted.roles {
            if Slug::parse("role", role).is_err() {
                self.fail(
                    require,
                    &format!("{field}.roles"),
                    format!("{role:?} must be 1 to 64 lowercase letters, digits or '-'"),
                );
                valid = false;
            }
        }
        valid.then(|| Requirement {
            kinds: wanted.kind.clone(),
            department,
            roles: wanted.roles.clone(),
        })
    }

    /// The record types of `[types]`: names checked, fields resolved
    /// (a field may be of another declared type, but not of its own).
    fn types(
        &mut self,
        types: &BTreeMap<String, Spanned<crate::model::Fields>>,
    ) -> BTreeMap<String, WitType> {
        let mut resolved = BTreeMap::new();
        let mut pending: Vec<(&String, &Spanned<crate::model::Fields>)> = Vec::new();
        for (name, fields) in types {
            let field = format!("types.{name}");
            if Slug::parse("type", name).is_err() {
                self.fail(
                    fields,
                    &field,
                    format!("{name:?} must be 1 to 64 lowercase letters, digits or '-'"),
                );
            } else if fields.get_ref().0.is_empty() {
                self.fail(fields, &field, "a record type has at least one field");
            } else {
                pending.push((name, fields));
            }
        }
        // Each pass resolves the types whose fields name only types
        // resolved before; what is left refers to a missing type or to
        // itself.
        loop {
            let before = pending.len();
            let mut left = Vec::new();
            for (name, fields) in pending {
                match record(name, &fields.get_ref().0, &resolved) {
                    Ok(record) => {
                        resolved.insert(name.clone(), record);
                    }
                    Err(problem) => left.push((name, fields, problem)),
                }
            }
            if left.len() == before || left.is_empty() {
                // Which unresolved types each unresolved type names.
                let names = |fields: &crate::model::Fields| -> BTreeSet<String> {
                    fields
                        .0
                        .iter()
                        .flat_map(|(_, ty)| {
                            ty.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                                .map(str::to_owned)
                                .collect::<Vec<_>>()
                        })
                        .filter(|word| left.iter().any(|(n, _, _)| *n == word))
                        .collect()
                };
                let graph: BTreeMap<&String, BTreeSet<String>> = left
                    .iter()
                    .map(|(n, f, _)| (*n, names(f.get_ref())))
                    .collect();
                let reaches = |from: &String, to: &String| {
                    let mut seen = BTreeSet::new();
                    let mut stack = vec![from.clone()];
                    while let Some(next) = stack.pop() {
                        if &next == to {
                            return true;
                        }
                        if seen.insert(next.clone()) {
                            stack.extend(graph.get(&next).into_iter().flatten().cloned());
                        }
                    }
                    false
                };
                for (name, fields, (field, message)) in &left {
                    let written = fields
                        .get_ref()
                        .0
                        .iter()
                        .find(|(f, _)| f == field)
                        .map_or("", |(_, ty)| ty.as_str());
                    let other = graph[name]
                        .iter()
                        .find(|other| written.contains(other.as_str()));
                    let message = match other {
                        Some(other) if reaches(other, name) => format!(
                            "`{written}` refers to type `{other}`, which contains `{name}`: a type cannot contain itself"
                        ),
                        Some(other) => format!(
                            "`{written}` refers to type `{other}`, which has a problem of its own"
                        ),
                        None => with_declared(message, types.keys()),
                    };
                    self.fail(*fields, &format!("types.{name}.{field}"), message);
                }
                return resolved;
            }
            pending = left.into_iter().map(|(n, f, _)| (n, f)).collect();
        }
    }

    /// A service's declared body type.
    fn body_type(
        &mut self,
        body: &Spanned<String>,
        field: &str,
        aliases: &BTreeSet<String>,
        (types, declared): (&BTreeMap<String, WitType>, &[&String]),
    ) -> Option<(BodyType, Place)> {
        let text = body.get_ref().trim();
        let place = self.at.place(body.span().start, field);
        let mut parts = text.splitn(3, '.');
        if let (Some(alias), Some(interface), Some(name)) =
            (parts.next(), parts.next(), parts.next())
        {
            if !aliases.contains(alias) {
                let known = aliases.iter().cloned().collect::<Vec<_>>().join(", ");
                let known = if known.is_empty() {
                    "none".to_owned()
                } else {
                    known
                };
                self.fail(
                    body,
                    field,
                    format!("`{text}`: unknown component alias `{alias}`; a body type is a name under [types], a type such as list<string>, or <alias>.<interface>.<type> ([components] declares {known})"),
                );
                return None;
            }
            return Some((
                BodyType::Component {
                    alias: alias.to_owned(),
                    interface: interface.to_owned(),
                    name: name.to_owned(),
                },
                place,
            ));
        }
        match WitType::parse(text, types) {
            Ok(ty) => Some((BodyType::Declared(ty), place)),
            Err(message) => {
                self.fail(
                    body,
                    field,
                    with_declared(&message, declared.iter().copied()),
                );
                None
            }
        }
    }

    fn service(
        &mut self,
        index: usize,
        service: &crate::model::Service,
        aliases: &BTreeSet<String>,
        declared: &mut Declared,
        types: (&BTreeMap<String, WitType>, &[&String]),
    ) -> Option<CheckedService> {
        let field = format!("services[{index}]");
        let (name, method, path) = self.route(service, &field, declared);
        let caller = self.caller(service, &field, aliases);
        let body_type = service
            .body
            .as_ref()
            .and_then(|body| self.body_type(body, &format!("{field}.body"), aliases, types));
        if body_type.is_some() && (method == "GET" || method == "DELETE") {
            self.fail(
                &service.method,
                &format!("{field}.body"),
                format!("a {method} request has no body to declare a type for"),
            );
        }
        let mut earlier = BTreeSet::new();
        let mut steps = Vec::new();
        for (step_index, step) in service.steps.iter().enumerate() {
            let step_field = format!("{field}.steps[{step_index}]");
            if let Some(checked) = self.step(step, &step_field, &earlier, aliases) {
                if !earlier.insert(checked.name.clone()) {
                    self.fail(
                        &step.name,
                        &format!("{step_field}.name"),
                        format!("step `{}` is declared twice", checked.name),
                    );
                }
                steps.push(checked);
            }
        }
        let body = self.expression(
            &service.response.body,
            &format!("{field}.response.body"),
            &earlier,
        );
        let subject = match &service.subject {
            Some(subject) => {
                Some(self.expression(subject, &format!("{field}.subject"), &earlier)?)
            }
            None => None,
        };
        Some(CheckedService {
            name: name?,
            method,
            path,
            steps,
            status: service.response.status.unwrap_or(200),
            body: body?,
            subject,
            caller: caller?,
            body_type,
            place: self.at.place(service.name.span().start, &field),
        })
    }
}

/// `message`, with the names `[types]` declares when it says a type is
/// unknown.
fn with_declared<'a>(message: &str, declared: impl Iterator<Item = &'a String>) -> String {
    if !message.contains("is not a type") {
        return message.to_owned();
    }
    let names: Vec<&str> = declared.map(String::as_str).collect();
    if names.is_empty() {
        format!("{message} (none are declared)")
    } else {
        format!("{message} (declared: {})", names.join(", "))
    }
}

/// The record `name` of `fields`, each of a type `resolved` knows; else
/// the first field that is not, and why.
fn record(
    name: &str,
    fields: &[(String, String)],
    resolved: &BTreeMap<String, WitType>,
) -> Result<WitType, (String, String)> {
    let mut checked = Vec::new();
    for (field, ty) in fields {
        if Slug::parse("field", field).is_err() {
            return Err((
                field.clone(),
                format!("field name {field:?} must be 1 to 64 lowercase letters, digits or '-'"),
            ));
        }
        let ty = WitType::parse(ty, resolved).map_err(|message| (field.clone(), message))?;
        checked.push((field.clone(), ty));
    }
    Ok(WitType::Record {
        name: name.to_owned(),
        fields: checked,
    })
}

/// Checks a parsed manifest; every problem found is reported, in file order.
pub fn check(manifest: &Manifest, file: &str, text: &str) -> Result<Checked, Vec<ManifestError>> {
    let mut c = Checker {
        at: Locator { file, text },
        errors: Vec::new(),
    };
    if *manifest.manifest_version.get_ref() != 1 {
        c.fail(
            &manifest.manifest_version,
            "manifest-version",
            format!("expected 1, found {}", manifest.manifest_version.get_ref()),
        );
    }
    let department = Slug::parse("department", manifest.department.get_ref());
    if let Err(e) = &department {
        c.fail(
            &manifest.department,
            "department",
            format!(
                "{:?} must be 1 to 64 lowercase letters, digits or '-'",
                e.given
            ),
        );
    }
    if manifest.department.get_ref() == "audit" {
        c.fail(
            &manifest.department,
            "department",
            "\"audit\" is where every host serves its audit log's checkpoints and proofs (/audit/v1/…); choose another name".to_owned(),
        );
    }
    let components: BTreeMap<String, ComponentSpec> = manifest
        .components
        .iter()
        .filter_map(|(alias, component)| Some((alias.clone(), c.component(alias, component)?)))
        .collect();
    let aliases: BTreeSet<String> = manifest.components.keys().cloned().collect();
    let types = c.types(&manifest.types);
    let declared_types: Vec<&String> = manifest.types.keys().collect();
    let mut declared = Declared::default();
    let services: Vec<CheckedService> = manifest
        .services
        .iter()
        .enumerate()
        .filter_map(|(index, service)| {
            c.service(
                index,
                service,
                &aliases,
                &mut declared,
                (&types, &declared_types),
            )
        })
        .collect();
    match department {
        Ok(department) if c.errors.is_empty() => Ok(Checked {
            department,
            department_place: c.at.place(manifest.department.span().start, "department"),
            components,
            services,
            types,
        }),
        _ => {
            c.errors.sort_by_key(|e| (e.line, e.column));
            Err(c.errors)
        }
    }
}
