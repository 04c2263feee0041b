//! Registry verbs: `keygen`, `publish`, `yank`, `search`, `info`, `resolve`,
//! `fetch` and `registry serve`, each against a directory or a URL.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use zhongtai_registry::name::{parse_requirement, parse_version};
use zhongtai_registry::{PackageName, PublishRequest, PublisherKey};

use crate::args::{RegistryArgs, trust_policy};

/// `zhongtai registry …`.
#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Serve a registry directory over HTTP.
    Serve {
        /// The registry directory.
        #[arg(long, default_value = ".zhongtai/registry")]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7979")]
        addr: String,
        /// A publisher token for every namespace; without any token
        /// nobody can publish.
        #[arg(long, env = "ZHONGTAI_REGISTRY_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Publishers (TOML, owner-only): `[[publisher]]` tables with
        /// `name`, `token` and the `namespaces` it may publish and yank in.
        #[arg(long, env = "ZHONGTAI_REGISTRY_PUBLISHERS")]
        publishers: Option<PathBuf>,
    },
}

/// `zhongtai publish`.
#[derive(Args)]
pub struct PublishArgs {
    /// The component (.wasm).
    component: PathBuf,
    /// Package name, `namespace:name`.
    #[arg(long)]
    package: String,
    /// Version (semver).
    #[arg(long)]
    version: String,
    /// Publisher key file from `zhongtai keygen`; without it the version is
    /// unsigned, and hosts that trust keys will refuse it.
    #[arg(long)]
    key: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Writes a new publisher key pair.
pub fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    if out.exists() {
        bail!("{} exists; refusing to overwrite a key", out.display());
    }
    let key = zhongtai_audit::HostKey::create(out)?;
    let public = out.with_extension("pub");
    std::fs::write(&public, key.public().to_text() + "\n")?;
    let key = PublisherKey::from(key);
    println!("secret key: {} (keep it private)", out.display());
    println!("public key: {} ({})", public.display(), key.public_key().0);
    Ok(ExitCode::SUCCESS)
}

/// Publishes a component.
pub fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let package = PackageName::parse(&args.package)?;
    let version = parse_version(&args.version)?;
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))?;
    let digest = zhongtai_registry::Digest::of(&bytes);
    let signed = match &args.key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading key {}", path.display()))?;
            Some(PublisherKey::from_text(&text)?.sign(&package, &version, &digest))
        }
        None => None,
    };
    eprintln!(
        "Publishing {package}@{version} ({} KiB, {digest}) to {}...",
        bytes.len().div_ceil(1024),
        args.registry.registry
    );
    let outcome = args.registry.open()?.publish(PublishRequest {
        package,
        version,
        bytes,
        signed,
    })?;
    let record = &outcome.record;
    if outcome.created {
        println!(
            "published {}@{} {}",
            record.package, record.version, record.digest
        );
    } else {
        println!(
            "{}@{} was already published with these bytes; nothing changed",
            record.package, record.version
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn split_at_version(text: &str) -> anyhow::Result<(PackageName, &str)> {
    let (name, version) = text
        .rsplit_once('@')
        .with_context(|| format!("expected namespace:name@version, got {text:?}"))?;
    Ok((PackageName::parse(name)?, version))
}

/// Yanks or restores a version.
pub fn yank(target: &str, undo: bool, registry: &RegistryArgs) -> anyhow::Result<ExitCode> {
    let (name, version) = split_at_version(target)?;
    let version = parse_version(version)?;
    let record = registry.open()?.set_yanked(&name, &version, !undo)?;
    let state = if record.yanked { "yanked" } else { "restored" };
    println!("{}@{} {state}", record.package, record.version);
    Ok(ExitCode::SUCCESS)
}

/// Lists packages whose name contains `query`.
pub fn search(query: &str, registry: &RegistryArgs) -> anyhow::Result<ExitCode> {
    for found in registry.open()?.search(query)? {
        let latest = found
            .latest
            .map_or("(all yanked)".to_owned(), |v| v.to_string());
        println!("{}  {latest}  ({} versions)", found.name, found.versions);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a package's versions as JSON.
pub fn info(name: &str, registry: &RegistryArgs) -> anyhow::Result<ExitCode> {
    let info = registry.open()?.package(&PackageName::parse(name)?)?;
    println!("{}", serde_json::to_string_pretty(&info)?);
    Ok(ExitCode::SUCCESS)
}

/// Prints the version a requirement resolves to and its digest.
pub fn resolve(name: &str, requirement: &str, registry: &RegistryArgs) -> anyhow::Result<ExitCode> {
    let name = PackageName::parse(name)?;
    let requirement = parse_requirement(requirement)?;
    let record =
        zhongtai_registry::resolve_version(registry.open()?.as_ref(), &name, &requirement)?;
    println!("{}@{} {}", record.package, record.version, record.digest);
    Ok(ExitCode::SUCCESS)
}

/// Fetches `name` at `requirement` into `out`, checking digest and signature.
pub fn fetch(
    name: &str,
    requirement: &str,
    out: &Path,
    trust: &[String],
    registry: &RegistryArgs,
) -> anyhow::Result<ExitCode> {
    let registry_client = registry.open()?;
    let name = PackageName::parse(name)?;
    let requirement = parse_requirement(requirement)?;
    let record = zhongtai_registry::resolve_version(registry_client.as_ref(), &name, &requirement)?;
    eprintln!(
        "Fetching {}@{} ({} KiB)...",
        record.package,
        record.version,
        record.size.div_ceil(1024)
    );
    let bytes = zhongtai_registry::fetch(registry_client.as_ref(), &record, &trust_policy(trust)?)?;
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    let signer = record.signed.as_ref().map_or("unsigned".to_owned(), |s| {
        format!("signed by {}", s.public_key.fingerprint())
    });
    println!(
        "{}@{} {} ({signer}) -> {}",
        record.package,
        record.version,
        record.digest,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Serves a registry directory until interrupted.
pub fn serve(command: RegistryCommand) -> anyhow::Result<ExitCode> {
    let RegistryCommand::Serve {
        dir,
        addr,
        token,
        publishers,
    } = command;
    let mut allowed = zhongtai_registry::api::Publishers::everything(token);
    if let Some(path) = publishers {
        let text = crate::args::read_secret_file(&path)?;
        allowed = allowed
            .with_file(&text, &path.display().to_string())
            .map_err(anyhow::Error::msg)?;
    }
    if allowed.is_empty() {
        eprintln!("warning: no --token or --publishers given; the registry is read-only");
    }
    let registry = zhongtai_registry::LocalRegistry::open(
        &dir,
        zhongtai_runtime::platform::provided_interfaces(),
    )?;
    eprintln!(
        "Publishes and yanks are recorded in the audit trail {} (check it with `zhongtai audit verify --dir {}`)",
        registry.store().audit_dir().display(),
        registry.store().audit_dir().display()
    );
    let state = Arc::new(zhongtai_registry::api::ApiState {
        registry,
        publishers: allowed,
    });
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        eprintln!(
            "Registry {} serving on http://{}",
            dir.display(),
            listener.local_addr()?
        );
        let shutdown = crate::shutdown_signal();
        zhongtai_registry::api::serve(listener, state, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
