//! The command line: every verb, parsed by clap, and which module runs it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::args::{AdminArgs, HostArgs, RegistryArgs, SourceArgs, UpArgs};
use crate::{
    admin_commands, audit_commands, component_commands, platform_commands, registry_commands,
    scaffold_commands, witness_commands,
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
    Call(component_commands::CallArgs),
    /// List the functions a component exports, with their WIT signatures.
    Inspect {
        /// The component: a .wasm file, or `namespace:name@requirement` from
        /// the registry.
        component: String,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Build components for wasm32-wasip2: the crate in DIR (one made by
    /// `zhongtai new capability`), or without it the platform's
    /// capability components.
    Build {
        /// A component crate's directory.
        dir: Option<PathBuf>,
    },
    /// Start a new capability or department.
    #[command(subcommand)]
    New(scaffold_commands::New),
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
        registry: RegistryArgs,
    },
    /// Search packages by name.
    Search {
        /// Part of a package name; empty lists all.
        #[arg(default_value = "")]
        query: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Show a package's versions, digests, publishers and WIT worlds.
    Info {
        /// `namespace:name`.
        package: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Show the version a semver requirement resolves to.
    Resolve {
        /// `namespace:name`.
        package: String,
        /// A requirement, e.g. `^1`.
        requirement: String,
        #[command(flatten)]
        registry: RegistryArgs,
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
        registry: RegistryArgs,
    },
    /// Run the registry.
    #[command(subcommand)]
    Registry(registry_commands::RegistryCommand),
    /// Serve every department manifest under a directory on one address,
    /// building and publishing the capabilities into the embedded registry
    /// when they are not there yet.
    Up {
        #[command(flatten)]
        up: UpArgs,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Deploy or upgrade one department on a running host (admin API).
    Deploy {
        /// The department's zhongtai.toml.
        manifest: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Print a fresh admin token (for ZHONGTAI_ADMIN_TOKEN or an admin
    /// tokens file).
    AdminToken,
    /// Return a department to its previous deployment (admin API).
    Rollback {
        /// The department.
        department: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Check, search and export the audit trail; prove records in it.
    #[command(subcommand)]
    Audit(audit_commands::AuditCommand),
    /// Witness a host's audit log: fetch its latest checkpoint, check it
    /// extends the last one seen, cosign it and hand the cosignature in.
    Witness(witness_commands::WitnessArgs),
    /// Write zhongtai.lock beside every manifest: exact versions and digests.
    Lock {
        /// Directory of departments.
        #[arg(long, default_value = "examples")]
        dir: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Call(args) => component_commands::call(args),
        Command::Inspect { component, source } => component_commands::inspect(&component, &source),
        Command::Build { dir: Some(dir) } => {
            let (name, path) = zhongtai_build::build_crate(&dir)?;
            println!("{name}: {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::New(new) => scaffold_commands::run(new),
        Command::Build { dir: None } => {
            let root = zhongtai_build::source_root()?;
            let built = zhongtai_build::build(&root, zhongtai_build::CAPABILITIES, false)?;
            for (package, path) in built {
                println!("{package}: {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(host) => component_commands::demo(&host),
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
            let metrics = Arc::new(zhongtai_api::metrics::Metrics::new());
            let runtime = Arc::new(host.measured_runtime(Some(&metrics))?);
            let shared = host.shared_deployments()?;
            let segments = zhongtai_audit::AuditOptions {
                segment_records: host.audit_segment_records,
                observe: Some(metrics.audit_observer()),
                origin: host.audit_origin.clone(),
                witnesses: host.witnesses()?,
                ..Default::default()
            };
            let options = match &shared {
                Some(shared) => zhongtai_audit::AuditOptions {
                    host: Some(shared.host_id().to_owned()),
                    publish: Some(shared.checkpoint_sink()),
                    ..segments
                },
                None => segments,
            };
            let audit = Arc::new(audit_commands::open(
                &host.data_dir,
                host.audit_key.as_deref(),
                options,
            )?);
            let traces = up.traces()?;
            let data_dir = host.data_dir.clone();
            let deployed = platform_commands::deploy_all(
                runtime,
                audit,
                (metrics, traces.clone()),
                &up,
                &host.data_dir,
                shared.clone(),
            )?;
            if let Some(shared) = shared {
                eprintln!(
                    "Following deployments shared through the state database as {}",
                    shared.host_id()
                );
                shared.follow(deployed.clone());
            }
            if up.watch {
                platform_commands::watch(deployed.clone(), &up, &data_dir);
            }
            let served = platform_commands::serve(deployed, &up);
            if let Some(traces) = traces {
                traces.shutdown();
            }
            served
        }
        Command::Audit(command) => audit_commands::run(command),
        Command::Witness(args) => witness_commands::run(args),
        Command::Lock { dir, registry } => platform_commands::lock(&dir, &registry),
        Command::Deploy { manifest, admin } => admin_commands::deploy(&manifest, &admin),
        Command::AdminToken => admin_commands::new_token(),
        Command::Rollback { department, admin } => admin_commands::rollback(&department, &admin),
    }
}
