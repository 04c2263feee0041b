//! Commands for component developers: `call`, `inspect` and `demo`, on a
//! .wasm file or a component from the registry.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value as Json, json};
use zhongtai_runtime::{CallContext, LoadedComponent, Runtime, Slug};

use crate::args::{HostArgs, SourceArgs, trust_policy};
use crate::audit_commands;

#[derive(Args)]
/// `zhongtai call`.
pub struct CallArgs {
    /// The component: a .wasm file, or `namespace:name@requirement` (e.g.
    /// `zhongtai:auth@^1`) from the registry.
    component: String,
    /// What to call: `interface.function` (e.g. `authn.verify`, or the
    /// interface's full name `zhongtai:auth/authn@1.0.0.verify`).
    function: String,
    /// Arguments: a JSON object by parameter name, or an array in order.
    #[arg(default_value = "{}")]
    args: String,
    /// Calling department, as the component sees it in its context.
    #[arg(long, default_value = "developer")]
    department: String,
    /// Calling service.
    #[arg(long, default_value = "cli")]
    service: String,
    /// Authenticated subject to put in the context.
    #[arg(long)]
    subject: Option<String>,
    /// The package whose state and configuration a component file uses
    /// (it must be the package the file exports). Without it a file runs
    /// on empty, temporary state with no configuration: a file cannot
    /// choose another package's state or secrets by what it claims to be.
    #[arg(long)]
    package: Option<String>,
    /// Print only the part of the result at this JSON pointer (e.g.
    /// `/ok/token`); strings print without quotes. Fails if it is absent.
    #[arg(long, value_name = "POINTER")]
    get: Option<String>,
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    source: SourceArgs,
}

fn load(runtime: &Runtime, path: &Path) -> anyhow::Result<LoadedComponent> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    load_bytes(runtime, &bytes, None, &path.display().to_string())
}

/// Whether `component` names a file rather than a registry package.
fn is_file(component: &str) -> bool {
    Path::new(component).exists() || !component.contains(':')
}

/// Loads a .wasm file, or `namespace:name@requirement` from the registry
/// with its digest and signature checked under `--trust`.
fn load_component(
    runtime: &Runtime,
    component: &str,
    source: &SourceArgs,
) -> anyhow::Result<(LoadedComponent, Option<semver::Version>)> {
    let path = Path::new(component);
    if is_file(component) {
        return Ok((load(runtime, path)?, None));
    }
    let (bytes, record) = from_registry(component, source)?;
    let name = format!("{}@{}", record.package, record.version);
    let loaded = load_bytes(runtime, &bytes, Some(record.package.as_str()), &name)?;
    Ok((loaded, Some(record.version)))
}

/// The bytes of `namespace:name@requirement` from the registry, resolved
/// and checked against the trusted publishers, with their version record.
fn from_registry(
    component: &str,
    source: &SourceArgs,
) -> anyhow::Result<(Vec<u8>, zhongtai_registry::VersionRecord)> {
    let (package, requirement) = component.split_once('@').unwrap_or((component, "*"));
    let package = zhongtai_registry::PackageName::parse(package)?;
    let requirement = zhongtai_registry::name::parse_requirement(requirement)?;
    let registry = source.registry.open()?;
    let record = zhongtai_registry::resolve_version(registry.as_ref(), &package, &requirement)?;
    let trust = trust_policy(&source.trust)?;
    let bytes = zhongtai_registry::fetch(registry.as_ref(), &record, &trust)
        .with_context(|| format!("refusing {}@{}", record.package, record.version))?;
    Ok((bytes, record))
}

fn load_bytes(
    runtime: &Runtime,
    bytes: &[u8],
    package: Option<&str>,
    name: &str,
) -> anyhow::Result<LoadedComponent> {
    if !runtime.is_compiled(bytes) {
        eprintln!("Compiling {name} (once; later loads use the cache)...");
    }
    let started = Instant::now();
    let component = runtime
        .load_as(bytes, package)
        .with_context(|| format!("loading {name}"))?;
    if !component.was_cached() {
        tracing::info!(
            component = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled"
        );
    }
    Ok(component)
}

/// `zhongtai call`: one function, recorded in the audit trail.
pub fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
    let Some((interface, function)) = args.function.rsplit_once('.') else {
        bail!(
            "expected interface.function (e.g. authn.verify), got {:?}",
            args.function
        );
    };
    let json_args: Json =
        serde_json::from_str(&args.args).context("arguments are not valid JSON")?;
    let mut context = CallContext::new(
        Slug::parse("department", &args.department)?,
        Slug::parse("service", &args.service)?,
    );
    context.subject = args.subject;
    let scratch = is_file(&args.component) && args.package.is_none();
    let runtime = if scratch {
        args.host.scratch_runtime()?
    } else {
        args.host.runtime()?
    };
    let audit = audit_commands::open(
        &args.host.data_dir,
        args.host.audit_key.as_deref(),
        Default::default(),
    )?;
    let component = load_component(&runtime, &args.component, &args.source)?;
    match &args.package {
        Some(_) if !is_file(&args.component) => bail!(
            "--package is for component files; {} is named by its package already",
            args.component
        ),
        Some(package) if package != component.0.package() => bail!(
            "--package {package}, but {} exports the interfaces of {}",
            args.component,
            component.0.package()
        ),
        Some(_) => {}
        None if scratch => eprintln!(
            "{} says it is {}: running it on empty, temporary state without configuration; pass --package {} to use that package's state and configuration in {}",
            args.component,
            component.0.package(),
            component.0.package(),
            args.host.data_dir.display()
        ),
        None => {}
    }
    let result = audit_commands::call(
        &runtime, &audit, &component, context, interface, function, &json_args,
    )?;
    match args.get {
        None => println!("{}", serde_json::to_string_pretty(&result)?),
        Some(pointer) => match result.pointer(&pointer) {
            Some(Json::String(text)) => println!("{text}"),
            Some(value) => println!("{}", serde_json::to_string_pretty(value)?),
            None => bail!(
                "the result has nothing at {pointer}; it is:\n{}",
                serde_json::to_string_pretty(&result)?
            ),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// `zhongtai inspect`: the functions a component exports.
pub fn inspect(component: &str, source: &SourceArgs) -> anyhow::Result<ExitCode> {
    let bytes = if is_file(component) {
        std::fs::read(component).with_context(|| format!("reading {component}"))?
    } else {
        from_registry(component, source)?.0
    };
    zhongtai_registry::validate::inspect(&bytes)
        .with_context(|| format!("{component} is not a component"))?;
    let (package, text) = zhongtai_api::wit_types::wit_text(&bytes)
        .map_err(|e| anyhow::anyhow!("{component}: {e}"))?;
    println!(
        "package {package}  {}",
        zhongtai_registry::Digest::of(&bytes)
    );
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The demonstration identity: the worked example of GB 11643.
const DEMO_CITIZEN: &str = "11010519491231002X";

/// `zhongtai demo`: an identity walked through the auth component.
pub fn demo(host: &HostArgs) -> anyhow::Result<ExitCode> {
    let root = zhongtai_build::source_root()?;
    eprintln!("Building the auth component...");
    let built = zhongtai_build::build(&root, &["zhongtai-auth"], false)?;
    let path = &built["zhongtai-auth"];
    let runtime = host.runtime()?;
    let audit = audit_commands::open(
        &host.data_dir,
        host.audit_key.as_deref(),
        Default::default(),
    )?;
    let auth = (load(&runtime, path)?, None);
    let context = || {
        CallContext::new(
            Slug::parse("department", "civil-affairs").expect("static id"),
            Slug::parse("service", "demo").expect("static id"),
        )
    };
    let step = |label: &str, interface: &str, function: &str, args: Json| -> anyhow::Result<Json> {
        let started = Instant::now();
        let result = audit_commands::call(
            &runtime,
            &audit,
            &auth,
            context(),
            interface,
            function,
            &args,
        )?;
        println!(
            "{label} ({:.1} ms)\n{}\n",
            started.elapsed().as_secs_f64() * 1000.0,
            serde_json::to_string_pretty(&result)?
        );
        Ok(result)
    };
    let password = "correct-horse-42";
    let registered = step(
        "authn.register",
        "authn",
        "register",
        json!({"kind": "citizen", "id": DEMO_CITIZEN, "display-name": "Li Lei", "password": password}),
    )?;
    if registered.get("err") == Some(&json!("already-registered")) {
        println!(
            "(registered by an earlier run: state persists in {})\n",
            host.data_dir.display()
        );
    }
    let session = step(
        "authn.login",
        "authn",
        "login",
        json!({"id": DEMO_CITIZEN, "password": password}),
    )?;
    let token = session["ok"]["token"]
        .as_str()
        .context("login did not return a token")?
        .to_owned();
    step("authn.verify", "authn", "verify", json!({ "token": token }))?;
    step("authn.logout", "authn", "logout", json!({ "token": token }))?;
    step(
        "authn.verify after logout",
        "authn",
        "verify",
        json!({ "token": token }),
    )?;
    Ok(ExitCode::SUCCESS)
}
