//! Deploying a manifest: each component resolved from the registry (or
//! pinned by the lock), fetched with its digest and signature checked,
//! loaded, and every call step checked against the component's WIT
//! signature before anything runs.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use zhongtai_manifest::lock::Lock;
use zhongtai_manifest::{
    Action, BodyType, Call, Caller, Checked, CheckedService, CheckedStep, ManifestError,
    ManifestErrors, WitType,
};
use zhongtai_registry::name::parse_requirement;
use zhongtai_registry::{PackageName, Registry, TrustPolicy};
use zhongtai_runtime::values::{describe_type, error_cases, json_to_val};
use zhongtai_runtime::{LoadedComponent, Runtime};

/// A component as deployed for one alias.
#[derive(Clone)]
pub struct DeployedComponent {
    /// The manifest's request.
    pub spec: zhongtai_manifest::ComponentSpec,
    /// The exact version resolved.
    pub version: semver::Version,
    /// Its digest.
    pub digest: String,
    /// The loaded component.
    pub loaded: LoadedComponent,
}

/// A department's manifest, deployed and ready to serve.
pub struct Deployment {
    /// The checked manifest.
    pub manifest: Checked,
    /// Components by alias.
    pub components: BTreeMap<String, DeployedComponent>,
    /// What of the request body each service (by index) reads.
    pub body_fields: Vec<zhongtai_manifest::expr::BodyFields>,
    /// The declared type of each service's (by index) request body.
    pub body_types: Vec<Option<WitType>>,
    /// The department's OpenAPI document (`/<department>/openapi.json`).
    pub openapi: axum::body::Bytes,
    /// sha256 (hex) of the manifest text, when the deployer knows it; the
    /// audit record of the deployment carries it.
    pub source_hash: Option<String>,
    /// Who deployed it, for its audit record: `operator` unless a
    /// department's admin token did.
    pub deployed_by: Option<String>,
}

/// Why a deployment was refused: every problem, each naming its file,
/// line, column and field (the same type as the manifest's own checks).
pub type DeployError = ManifestErrors;

/// Deploys `manifest` (from `file`) with components from `registry`.
pub fn deploy(
    manifest: Checked,
    file: &str,
    lock: Option<&Lock>,
    registry: &dyn Registry,
    trust: &TrustPolicy,
    runtime: &Runtime,
) -> Result<Deployment, DeployError> {
    let mut problems = Vec::new();
    let mut components = BTreeMap::new();
    let mut exported = BTreeMap::new();
    for (alias, spec) in &manifest.components {
        let wanted: Vec<(&str, &str)> = manifest
            .services
            .iter()
            .filter_map(|s| match &s.body_type {
                Some((
                    BodyType::Component {
                        alias: a,
                        interface,
                        name,
                    },
                    _,
                )) if a == alias => Some((interface.as_str(), name.as_str())),
                _ => None,
            })
            .collect();
        match deploy_component(alias, spec, lock, registry, trust, runtime, &wanted) {
            Ok((component, types)) => {
                components.insert(alias.clone(), component);
                for ((interface, name), ty) in types {
                    exported.insert((alias.clone(), interface, name), ty);
                }
            }
            Err(problem) => problems.push(spec.place.error(file, "", problem)),
        }
    }
    let mut body_types = Vec::new();
    for service in &manifest.services {
        let ty = match &service.body_type {
            None => None,
            Some((BodyType::Declared(ty), _)) => Some(ty.clone()),
            Some((
                BodyType::Component {
                    alias,
                    interface,
                    name,
                },
                place,
            )) => {
                match exported.get(&(alias.clone(), interface.clone(), name.clone())) {
                    Some(Ok(ty)) => Some(ty.clone()),
                    Some(Err(problem)) => {
                        problems.push(place.error(
                            file,
                            "",
                            format!("`{alias}.{interface}.{name}`: {problem}"),
                        ));
                        None
                    }
                    // The component itself failed to deploy: said above.
                    None => None,
                }
            }
        };
        if let (Some(ty), Some((_, place))) = (&ty, &service.body_type) {
            problems.extend(check_body_reads(service, ty, place, file));
        }
        body_types.push(ty);
    }
    for service in &manifest.services {
        if let Caller::Authenticated { alias, .. } = &service.caller
            && let Some(component) = components.get(alias)
        {
            problems.extend(check_authenticator(service, alias, component, file));
        }
    }
    for step in manifest.services.iter().flat_map(|s| &s.steps) {
        if let Action::Call(call) = &step.action
            && let Some(component) = components.get(&call.alias)
        {
            problems.extend(check_call(step, call, component, file));
        }
    }
    if problems.is_empty() {
        let body_fields = manifest
            .services
            .iter()
            .map(CheckedService::body_fields)
            .collect();
        let openapi = crate::openapi::document(&manifest, &body_types);
        Ok(Deployment {
            manifest,
            components,
            body_fields,
            body_types,
            openapi: serde_json::to_vec_pretty(&openapi)
                .expect("a JSON value serialises")
                .into(),
            source_hash: None,
            deployed_by: None,
        })
    } else {
        problems.sort_by_key(|p| (p.line, p.column));
        Err(ManifestErrors(problems))
    }
}

/// Checks that the component a service authenticates with verifies tokens
/// (`authn.verify(token: string)`) and that the manifest grants it.
fn check_authenticator(
    service: &CheckedService,
    alias: &str,
    component: &DeployedComponent,
    file: &str,
) -> Option<ManifestError> {
    let problem = |message: String| Some(service.place.error(file, ".authenticate", message));
    let verifies = component
        .loaded
        .function(AUTHENTICATE.0, AUTHENTICATE.1)
        .is_ok_and(|(_, export)| export.params.len() == 1 && export.params[0].0 == "token");
    if !verifies {
        return problem(format!(
            "`{alias}` ({}) cannot authenticate callers: it exports no authn.verify(token: string)",
            component.spec.package
        ));
    }
    if !component.spec.grants(AUTHENTICATE.0, AUTHENTICATE.1) {
        return problem(format!(
            "`{alias}` must grant authn.verify for the host to verify callers with it"
        ));
    }
    None
}

/// The function that verifies a caller's bearer token: `authn.verify`.
pub const AUTHENTICATE: (&str, &str) = ("authn", "verify");

/// Checks a call step against its grants and the WIT signature of the
/// function it calls: the manifest grants it, the function exists, every parameter has an argument and every argument
/// a parameter, literal arguments have the parameter's type, and the error
/// cases it maps exist.
fn check_call(
    step: &CheckedStep,
    call: &Call,
    deployed: &DeployedComponent,
    file: &str,
) -> Vec<ManifestError> {
    let (component, spec) = (&deployed.loaded, &deployed.spec);
    let Call {
        interface,
        function,
        args,
        errors,
        ..
    } = call;
    let at = |sub: &str, message: String| step.place.error(file, sub, message);
    if !spec.grants(interface, function) {
        return vec![at(
            ".call",
            format!(
                "calls {interface}.{function}, which the grants of `{}` do not list ({})",
                call.alias,
                spec.grants.join(", ")
            ),
        )];
    }
    let (name, export) = match component.function(interface, function) {
        Ok(found) => found,
        Err(e) => return vec![at(".call", e.to_string())],
    };
    let mut problems = Vec::new();
    let parameters = export
        .params
        .iter()
        .map(|(p, ty)| format!("{p}: {}", describe_type(ty)))
        .collect::<Vec<_>>()
        .join(", ");
    for (param, _) in &export.params {
        if !args.contains_key(param) {
            problems.push(at(
                ".args",
                format!("missing argument `{param}` of {name}({parameters})"),
            ));
        }
    }
    for (arg, expression) in args {
        let Some((_, ty)) = export.params.iter().find(|(p, _)| p == arg) else {
            problems.push(at(
                &format!(".args.{arg}"),
                format!("{name} has no parameter `{arg}`; its parameters are ({parameters})"),
            ));
            continue;
        };
        if let Some(value) = expression.literal_value()
            && let Err(e) = json_to_val(ty, &value)
        {
            let within = if e.path.is_empty() {
                String::new()
            } else {
                format!(" at `{arg}{}`", e.path)
            };
            problems.push(at(
                &format!(".args.{arg}"),
                format!("expected {}, found {}{within}", e.expected, e.found),
            ));
        }
    }
    if let Some(cases) = export.results.first().and_then(error_cases) {
        for case in errors.keys().filter(|case| !cases.contains(case)) {
            problems.push(at(
                &format!(".errors.{case}"),
                format!(
                    "{name} has no error case `{case}`; its cases are {}",
                    cases.join(", ")
                ),
            ));
        }
    }
    problems
}

/// The types a component exports, by interface and name, as a deploy
/// reads them for the services' bodies.
type ExportedTypes = BTreeMap<(String, String), Result<WitType, String>>;

/// Refuses expressions that read fields of the body its type does not
/// have: `request.body.x` of a record without `x`, or any field of a body
/// that is not a record.
fn check_body_reads(
    service: &CheckedService,
    ty: &WitType,
    place: &zhongtai_manifest::Place,
    file: &str,
) -> Vec<ManifestError> {
    let zhongtai_manifest::expr::BodyFields::Named(read) = service.body_fields() else {
        return Vec::new();
    };
    let fields: Vec<&str> = ty
        .record_fields()
        .map(|f| f.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    read.iter()
        .filter(|name| !fields.contains(&name.as_str()))
        .map(|name| {
            let has = if ty.record_fields().is_some() {
                format!("its fields are {}", fields.join(", "))
            } else {
                "it is not a record".to_owned()
            };
            place.error(
                file,
                "",
                format!("the service's expressions read `request.body.{name}`, but the body is a {ty}, which has no field `{name}` ({has})"),
            )
        })
        .collect()
}

/// Deploys one component, and reads the types `wanted` of it
/// (`(interface, type)`).
fn deploy_component(
    alias: &str,
    spec: &zhongtai_manifest::ComponentSpec,
    lock: Option<&Lock>,
    registry: &dyn Registry,
    trust: &TrustPolicy,
    runtime: &Runtime,
    wanted: &[(&str, &str)],
) -> Result<(DeployedComponent, ExportedTypes), String> {
    let package = PackageName::parse(&spec.package).map_err(|e| e.to_string())?;
    let pin = lock.and_then(|l| l.pin(alias, &spec.package, &spec.requirement.to_string()));
    let requirement = match pin {
        Some(pin) => parse_requirement(&format!("={}", pin.version)).map_err(|e| e.to_string())?,
        None => spec.requirement.clone(),
    };
    let record = zhongtai_registry::resolve_version(registry, &package, &requirement)
        .map_err(|e| e.to_string())?;
    if let Some(pin) = pin
        && pin.digest != record.digest.as_str()
    {
        return Err(format!(
            "{}@{} in the registry has digest {}, but zhongtai.lock pins {}; refusing it",
            record.package, record.version, record.digest, pin.digest
        ));
    }
    let bytes = zhongtai_registry::fetch(registry, &record, trust).map_err(|e| e.to_string())?;
    // `fetch` has checked that the bytes hash to the record's digest.
    if !runtime.is_compiled_digest(record.digest.hex()) {
        tracing::info!(
            "compiling {}@{} (once; cached afterwards)",
            record.package,
            record.version
        );
    }
    let loaded = runtime
        .load_verified(&bytes, record.digest.hex(), package.as_str())
        .map_err(|e| format!("{}@{}: {e}", record.package, record.version))?;
    let types = wanted
        .iter()
        .map(|&(interface, name)| {
            let ty = crate::wit_types::exported_type(&bytes, package.as_str(), interface, name)
                .map_err(|e| format!("{}@{}: {e}", record.package, record.version));
            ((interface.to_owned(), name.to_owned()), ty)
        })
        .collect();
    let deployed = DeployedComponent {
        spec: spec.clone(),
        version: record.version,
        digest: record.digest.to_string(),
        loaded,
    };
    Ok((deployed, types))
}

/// A lock for `manifest` (from `file`): each alias resolved to an exact
/// version and digest.
pub fn lock(manifest: &Checked, file: &str, registry: &dyn Registry) -> Result<Lock, DeployError> {
    let mut problems = Vec::new();
    let mut components = Vec::new();
    for (alias, spec) in &manifest.components {
        let resolved = PackageName::parse(&spec.package)
            .map_err(|e| e.to_string())
            .and_then(|package| {
                zhongtai_registry::resolve_version(registry, &package, &spec.requirement)
                    .map_err(|e| e.to_string())
            });
        match resolved {
            Ok(record) => components.push(zhongtai_manifest::lock::LockedComponent {
                alias: alias.clone(),
                package: spec.package.clone(),
                requirement: spec.requirement.to_string(),
                version: record.version.to_string(),
                digest: record.digest.to_string(),
            }),
            Err(problem) => problems.push(spec.place.error(file, "", problem)),
        }
    }
    if problems.is_empty() {
        Ok(Lock {
            lock_version: 1,
            components,
        })
    } else {
        Err(ManifestErrors(problems))
    }
}

/// Turns JSON into a CEL value, built straight into CEL's own
/// representation (no intermediate `cel::Value` to convert again on every
/// evaluation); integers that fit are `int`, so that arithmetic with
/// literals works.
pub(crate) fn cel_val(json: &Json) -> Box<dyn cel::common::value::Val> {
    use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelNull, CelString, CelUInt};
    match json {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::String(s) => Box::new(CelString::from(s.clone())),
        Json::Array(items) => {
            Box::new(CelList::from(items.iter().map(cel_val).collect::<Vec<_>>()))
        }
        Json::Object(map) => cel_map(map),
    }
}

/// [`cel_val`] of a JSON object, also for a map held apart from a
/// `Json::Object` (a run's steps).
pub(crate) fn cel_map(map: &serde_json::Map<String, Json>) -> Box<dyn cel::common::value::Val> {
    use cel::common::types::{CelMap, CelMapKey};
    Box::new(CelMap::from(
        map.iter()
            .map(|(k, v)| (CelMapKey::from(k.clone()), cel_val(v)))
            .collect::<std::collections::HashMap<_, _>>(),
    ))
}
