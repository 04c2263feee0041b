//! Structural validation: everything that can be checked without the
//! components themselves. Checks that need their WIT signatures (interface,
//! function, argument names, literal types) happen at deploy, against the
//! loaded components.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use crate::error::{Locator, ManifestError};
use crate::expr::Expression;
use crate::model::{Manifest, Step};

/// HTTP methods a service may use.
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A manifest that passed structural validation, with its expressions
/// compiled.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The department.
    pub department: String,
    /// Components by alias.
    pub components: BTreeMap<String, ComponentSpec>,
    /// Services in file order.
    pub services: Vec<CheckedService>,
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
}

impl ComponentSpec {
    /// Whether `interface.function` is granted (`interface` as written in
    /// the step, e.g. `authn`).
    pub fn grants(&self, interface: &str, function: &str) -> bool {
        self.grants.iter().any(|g| match g.rsplit_once('.') {
            Some((i, "*")) => i == interface,
            Some((i, f)) => i == interface && f == function,
            None => false,
        })
    }
}

/// A service ready to run.
#[derive(Debug, Clone)]
pub struct CheckedService {
    /// Its name.
    pub name: String,
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
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Call `alias.interface.function` with arguments by parameter name.
    Call {
        /// Component alias.
        alias: String,
        /// Interface name as written.
        interface: String,
        /// Function name.
        function: String,
        /// Arguments.
        args: BTreeMap<String, Expression>,
        /// Status per error case.
        errors: BTreeMap<String, u16>,
    },
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
    /// Where it is declared, for deploy-time errors: (line, column).
    pub position: (usize, usize),
}

fn is_slug(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
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
                Action::Call {
                    alias: alias.to_owned(),
                    interface: interface.to_owned(),
                    function: function.to_owned(),
                    args,
                    errors: step.errors.clone(),
                }
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
        let position = {
            let e = self.at.error(step.name.span().start, "", "");
            (e.line, e.column)
        };
        Some(CheckedStep {
            name,
            condition,
            action,
            position,
        })
    }
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
    let department = manifest.department.get_ref().clone();
    if !is_slug(&department) {
        c.fail(
            &manifest.department,
            "department",
            format!("{department:?} must be 1 to 64 lowercase letters, digits or '-'"),
        );
    }
    let mut components = BTreeMap::new();
    for (alias, component) in &manifest.components {
        let field = format!("components.{alias}");
        if !is_identifier(alias) {
            c.fail(component, &field, format!("alias {alias:?} must be lowercase letters, digits or '_', starting with a letter"));
        }
        let valid_package = component
            .get_ref()
            .package
            .split_once(':')
            .is_some_and(|(ns, name)| is_slug(ns) && is_slug(name));
        if !valid_package {
            c.fail(
                component,
                &format!("{field}.package"),
                format!("{:?} must be namespace:name", component.get_ref().package),
            );
        }
        for grant in &component.get_ref().grants {
            if grant
                .rsplit_once('.')
                .is_none_or(|(i, f)| i.is_empty() || f.is_empty())
            {
                c.fail(
                    component,
                    &format!("{field}.grants"),
                    format!("{grant:?} must be interface.function or interface.*"),
                );
            }
        }
        match semver::VersionReq::parse(&component.get_ref().version) {
            Ok(requirement) => {
                components.insert(
                    alias.clone(),
                    ComponentSpec {
                        package: component.get_ref().package.clone(),
                        requirement,
                        grants: component.get_ref().grants.clone(),
                    },
                );
            }
            Err(e) => c.fail(
                component,
                &format!("{field}.version"),
                format!(
                    "{:?} is not a semver requirement (like \"^1.0\"): {e}",
                    component.get_ref().version
                ),
            ),
        }
    }
    let aliases: BTreeSet<String> = manifest.components.keys().cloned().collect();
    let mut services = Vec::new();
    let mut names = BTreeSet::new();
    let mut routes: BTreeMap<(String, String), String> = BTreeMap::new();
    for (index, service) in manifest.services.iter().enumerate() {
        let field = format!("services[{index}]");
        let name = service.name.get_ref().clone();
        if !is_slug(&name) {
            c.fail(
                &service.name,
                &format!("{field}.name"),
                format!("{name:?} must be 1 to 64 lowercase letters, digits or '-'"),
            );
        } else if !names.insert(name.clone()) {
            c.fail(
                &service.name,
                &format!("{field}.name"),
                format!("service `{name}` is declared twice"),
            );
        }
        let method = service.method.get_ref().to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            c.fail(
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
        let valid_path = path.starts_with('/')
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
            });
        if !valid_path {
            c.fail(
                &service.path,
                &format!("{field}.path"),
                format!("{path:?} must start with '/'; segments are words or {{parameter}}"),
            );
        }
        let shape = path
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        if let Some(other) = routes.insert((method.clone(), shape), name.clone()) {
            c.fail(
                &service.path,
                &format!("{field}.path"),
                format!("route {method} {path} is declared twice (also by service `{other}`)"),
            );
        }
        let mut earlier = BTreeSet::new();
        let mut steps = Vec::new();
        for (step_index, step) in service.steps.iter().enumerate() {
            let step_field = format!("{field}.steps[{step_index}]");
            if let Some(checked) = c.step(step, &step_field, &earlier, &aliases) {
                if !earlier.insert(checked.name.clone()) {
                    c.fail(
                        &step.name,
                        &format!("{step_field}.name"),
                        format!("step `{}` is declared twice", checked.name),
                    );
                }
                steps.push(checked);
            }
        }
        let body = c.expression(
            &service.response.body,
            &format!("{field}.response.body"),
            &earlier,
        );
        let subject = service
            .subject
            .as_ref()
            .map(|subject| c.expression(subject, &format!("{field}.subject"), &earlier));
        if let (Some(body), Some(subject)) = (body, subject.map_or(Some(None), |s| s.map(Some))) {
            services.push(CheckedService {
                name,
                method,
                path,
                steps,
                status: service.response.status.unwrap_or(200),
                body,
                subject,
            });
        }
    }
    if c.errors.is_empty() {
        Ok(Checked {
            department,
            components,
            services,
        })
    } else {
        c.errors.sort_by_key(|e| (e.line, e.column));
        Err(c.errors)
    }
}
