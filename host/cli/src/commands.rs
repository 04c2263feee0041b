//! The CLI's commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{audit_commands, registry_commands, up_command};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value as Json, json};
use zhongtai_runtime::{
    CallContext, HostConfig, LoadedComponent, Runtime, RuntimeLimits, RuntimeOptions, SledStore,
    Slug,
};

/// zhongtai: shared government capabilities as WebAssembly components.
#[derive(Parser)]
#[command(name = "zhongtai", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Call one exported function of a component with JSON arguments.
    Call(CallArgs),
    /// List the functions a component exports, with their WIT signatures.
    Inspect {
        /// The component: a .wasm file, or `namespace:name@requirement` from
        /// the registry.
        component: String,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Build the platform's capability components for wasm32-wasip2.
    Build,
    /// Build the auth component and walk an identity through it:
    /// register, login, verify, logout, verify again.
    Demo(HostArgs),
    /// Create a publisher key pair (FILE and FILE.pub).
    Keygen {
        /// Where to write the secret key.
        #[arg(long, default_value = "zhongtai-publisher.key")]
        out: PathBuf,
    },
    /// Publish a component to a registry.
    Publish(registry_commands::PublishArgs),
    /// Yank a version (resolution skips it; locked users can still fetch it).
    Yank {
        /// `namespace:name@version`.
        target: String,
        /// Restore a yanked version instead.
        #[arg(long)]
        undo: bool,
        #[command(flatten)]
        registry: registry_commands::RegistryArgs,
    },
    /// Search packages by name.
    Search {
        /// Part of a package name; empty lists all.
        #[arg(default_value = "")]
        query: String,
        #[command(flatten)]
        registry: registry_commands::RegistryArgs,
    },
    /// Show a package's versions, digests, publishers and WIT worlds.
    Info {
        /// `namespace:name`.
        package: String,
        #[command(flatten)]
        registry: registry_commands::RegistryArgs,
    },
    /// Show the version a semver requirement resolves to.
    Resolve {
        /// `namespace:name`.
        package: String,
        /// A requirement, e.g. `^1`.
        requirement: String,
        #[command(flatten)]
        registry: registry_commands::RegistryArgs,
    },
    /// Resolve a requirement and download that version, checking its digest
    /// and signature.
    Fetch {
        /// `namespace:name`.
        package: String,
        /// A requirement, e.g. `^1` or `=1.0.0`.
        requirement: String,
        /// Where to write the component.
        #[arg(long, short)]
        out: PathBuf,
        /// Accept only versions signed by these public keys (files or base64).
        #[arg(long)]
        trust: Vec<String>,
        #[command(flatten)]
        registry: registry_commands::RegistryArgs,
    },
    /// Run the registry.
    #[command(subcommand)]
    Registry(registry_commands::RegistryCommand),
    /// Serve every department manifest under a directory on one address,
    /// building and publishing the capabilities into the embedded registry
    /// when they are not there yet.
    Up {
        #[command(flatten)]
        up: up_command::UpArgs,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Deploy or upgrade one department on a running host (admin API).
    Deploy {
        /// The department's zhongtai.toml.
        manifest: PathBuf,
        #[command(flatten)]
        admin: up_command::AdminArgs,
    },
    /// Return a department to its previous deployment (admin API).
    Rollback {
        /// The department.
        department: String,
        #[command(flatten)]
        admin: up_command::AdminArgs,
    },
    /// Check, search and export the audit trail.
    #[command(subcommand)]
    Audit(audit_commands::AuditCommand),
    /// Write zhongtai.lock beside every manifest: exact versions and digests.
    Lock {
        /// Directory of departments.
        #[arg(long, default_value = "examples")]
        dir: PathBuf,
        #[command(flatten)]
        registry: registry_commands::RegistryArgs,
    },
}

#[derive(Args)]
struct HostArgs {
    /// Where state, compiled components and host configuration live.
    #[arg(long, env = "ZHONGTAI_DATA", default_value = ".zhongtai")]
    data_dir: PathBuf,
    /// Host configuration (TOML); defaults to <data-dir>/config.toml when present.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Linear memory one call may use, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// Wall-clock time one call may run, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    deadline_ms: u64,
    /// The Ed25519 key (from `zhongtai keygen`) that signs audit
    /// checkpoints; default `<data-dir>/audit/host.key`, made on first use.
    #[arg(long, env = "ZHONGTAI_AUDIT_KEY")]
    audit_key: Option<PathBuf>,
}

#[derive(Args)]
struct CallArgs {
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
    /// Print only the part of the result at this JSON pointer (e.g.
    /// `/ok/token`); strings print without quotes. Fails if it is absent.
    #[arg(long, value_name = "POINTER")]
    get: Option<String>,
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    source: SourceArgs,
}

/// Where a component named by package comes from, and whom to trust.
#[derive(Args)]
struct SourceArgs {
    #[command(flatten)]
    registry: registry_commands::RegistryArgs,
    /// Load only components signed by these publisher keys (files or base64).
    #[arg(long)]
    trust: Vec<String>,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Call(args) => call(args),
        Command::Inspect { component, source } => inspect(&component, &source),
        Command::Build => {
            let root = zhongtai_build::source_root()?;
            let built = zhongtai_build::build(&root, zhongtai_build::CAPABILITIES, false)?;
            for (package, path) in built {
                println!("{package}: {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(host) => demo(&host),
        Command::Keygen { out } => registry_commands::keygen(&out),
        Command::Publish(args) => registry_commands::publish(args),
        Command::Yank {
            target,
            undo,
            registry,
        } => registry_commands::yank(&target, undo, &registry),
        Command::Search { query, registry } => registry_commands::search(&query, &registry),
        Command::Info { package, registry } => registry_commands::info(&package, &registry),
        Command::Resolve {
            package,
            requirement,
            registry,
        } => registry_commands::resolve(&package, &requirement, &registry),
        Command::Fetch {
            package,
            requirement,
            out,
            trust,
            registry,
        } => registry_commands::fetch(&package, &requirement, &out, &trust, &registry),
        Command::Registry(command) => registry_commands::serve(command),
        Command::Up { up, host } => {
            let runtime = Arc::new(runtime(&host)?);
            let audit = Arc::new(audit_commands::open(
                &host.data_dir,
                host.audit_key.as_deref(),
            )?);
            let deployed = up_command::deploy_all(runtime, audit, &up, &host.data_dir)?;
            up_command::serve(deployed, &up.addr)
        }
        Command::Audit(command) => audit_commands::run(command),
        Command::Lock { dir, registry } => up_command::lock(&dir, &registry),
        Command::Deploy { manifest, admin } => up_command::deploy(&manifest, &admin),
        Command::Rollback { department, admin } => up_command::rollback(&department, &admin),
    }
}

fn runtime(host: &HostArgs) -> anyhow::Result<Runtime> {
    std::fs::create_dir_all(&host.data_dir)
        .with_context(|| format!("creating data directory {}", host.data_dir.display()))?;
    let config_path = host
        .config
        .clone()
        .or_else(|| Some(host.data_dir.join("config.toml")).filter(|p| p.is_file()));
    let config = match config_path {
        Some(path) => HostConfig::load(&path)?,
        None => HostConfig::default(),
    };
    let store_dir = host.data_dir.join("store");
    let store = SledStore::open(&store_dir)
        .with_context(|| format!("opening the state store in {}", store_dir.display()))?;
    Runtime::new(RuntimeOptions {
        limits: RuntimeLimits {
            memory_bytes: host.memory_mib.saturating_mul(1024 * 1024),
            deadline: Duration::from_millis(host.deadline_ms),
            ..RuntimeLimits::default()
        },
        cache_dir: Some(host.data_dir.join("cache")),
        config,
        store: Arc::new(store),
    })
}

fn load(runtime: &Runtime, path: &Path) -> anyhow::Result<LoadedComponent> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    load_bytes(runtime, &bytes, None, &path.display().to_string())
}

/// Loads a .wasm file, or `namespace:name@requirement` from the registry
/// with its digest and signature checked under `--trust`.
fn load_component(
    runtime: &Runtime,
    component: &str,
    source: &SourceArgs,
) -> anyhow::Result<(LoadedComponent, Option<semver::Version>)> {
    let path = Path::new(component);
    if path.exists() || !component.contains(':') {
        return Ok((load(runtime, path)?, None));
    }
    let (package, requirement) = component.split_once('@').unwrap_or((component, "*"));
    let package = zhongtai_registry::PackageName::parse(package)?;
    let requirement = zhongtai_registry::name::parse_requirement(requirement)?;
    let registry = source.registry.open()?;
    let record = zhongtai_registry::resolve_version(registry.as_ref(), &package, &requirement)?;
    let trust = registry_commands::trust_policy(&source.trust)?;
    let bytes = zhongtai_registry::fetch(registry.as_ref(), &record, &trust)
        .with_context(|| format!("refusing to load {}@{}", record.package, record.version))?;
    let name = format!("{}@{}", record.package, record.version);
    let loaded = load_bytes(runtime, &bytes, Some(package.as_str()), &name)?;
    Ok((loaded, Some(record.version)))
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

fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
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
    let runtime = runtime(&args.host)?;
    let audit = audit_commands::open(&args.host.data_dir, args.host.audit_key.as_deref())?;
    let component = load_component(&runtime, &args.component, &args.source)?;
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

fn inspect(component: &str, source: &SourceArgs) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(RuntimeOptions {
        limits: RuntimeLimits::default(),
        cache_dir: None,
        config: HostConfig::default(),
        store: Arc::new(SledStore::temporary()?),
    })?;
    let (component, _) = load_component(&runtime, component, source)?;
    println!(
        "package {}  sha256:{}",
        component.package(),
        component.digest()
    );
    for (interface, exported) in component.interfaces() {
        println!(
            "{}",
            if interface.is_empty() {
                "(root)"
            } else {
                interface
            }
        );
        for (name, function) in &exported.functions {
            println!("  {name}: {}", function.signature());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The demonstration identity: the worked example of GB 11643.
const DEMO_CITIZEN: &str = "11010519491231002X";

fn demo(host: &HostArgs) -> anyhow::Result<ExitCode> {
    let root = zhongtai_build::source_root()?;
    eprintln!("Building the auth component...");
    let built = zhongtai_build::build(&root, &["zhongtai-auth"], false)?;
    let path = &built["zhongtai-auth"];
    let runtime = runtime(host)?;
    let audit = audit_commands::open(&host.data_dir, host.audit_key.as_deref())?;
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
