//! `zhongtai up` and `zhongtai lock`: the platform serving department
//! manifests on one address, with an embedded registry and store — the
//! capabilities built and published when missing, every manifest deployed,
//! served until SIGINT or SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use zhongtai_manifest::lock::Lock;
use zhongtai_registry::name::parse_version;
use zhongtai_registry::{PackageName, PublishRequest, PublisherKey, Registry};
use zhongtai_runtime::Runtime;

use crate::args::{RegistryArgs, UpArgs, trust_policy};

/// The manifests under `dir`, by path, sorted.
pub fn manifests(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path().join("zhongtai.toml");
        if path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        bail!("no <department>/zhongtai.toml under {}", dir.display());
    }
    Ok(found)
}

/// Builds the platform's capabilities when the embedded registry lacks
/// any and publishes those, as the version of the contract they export,
/// signed with the local publisher key (created on first use beside the
/// registry). The last build of each (`zhongtai build`, or this) is
/// compared with the version the registry holds: one that differs is not
/// published over it (a published version never changes), and `up` says
/// so, since departments get the registry's.
fn publish_capabilities(registry: &dyn Registry, key_path: &Path) -> anyhow::Result<()> {
    let package_of = |crate_name: &str| {
        PackageName::parse(&format!(
            "zhongtai:{}",
            crate_name.trim_start_matches("zhongtai-")
        ))
    };
    // What the registry holds of each, read once.
    let held: std::collections::BTreeMap<&str, Option<zhongtai_registry::PackageInfo>> =
        zhongtai_build::CAPABILITIES
            .iter()
            .map(|crate_name| {
                let info = package_of(crate_name)
                    .ok()
                    .and_then(|p| registry.package(&p).ok());
                (*crate_name, info)
            })
            .collect();
    let missing: Vec<&str> = held
        .iter()
        .filter(|(_, info)| info.is_none())
        .map(|(crate_name, _)| *crate_name)
        .collect();
    let root = match zhongtai_build::source_root() {
        Ok(root) => root,
        // Not in a source tree: nothing to compare; what is missing
        // cannot be built here.
        Err(_) if missing.is_empty() => return Ok(()),
        Err(e) => return Err(e),
    };
    let built = if missing.is_empty() {
        // A start changes nothing that is there: no cargo run, only a look
        // at what the last build left.
        zhongtai_build::last_built(&root, zhongtai_build::CAPABILITIES)
    } else {
        eprintln!(
            "Building {} for the embedded registry...",
            missing.join(", ")
        );
        zhongtai_build::build(&root, zhongtai_build::CAPABILITIES, false)?
    };
    let key = PublisherKey::from(zhongtai_audit::HostKey::load_or_create(key_path)?);
    for (crate_name, path) in built {
        let package = package_of(&crate_name)?;
        let bytes = std::fs::read(&path)?;
        let digest = zhongtai_registry::Digest::of(&bytes);
        let versions = held
            .get(crate_name.as_str())
            .and_then(Option::as_ref)
            .map_or(&[][..], |info| &info.versions[..]);
        // The usual start: the build is a version the registry holds.
        if versions.iter().any(|v| v.digest == digest) {
            continue;
        }
        let world = zhongtai_registry::validate::inspect(&bytes)?;
        let version = world
            .exports
            .first()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, v)| v.to_owned())
            .unwrap_or_else(|| "1.0.0".into());
        let version = parse_version(&version)?;
        if let Some(held) = versions.iter().find(|v| v.version == version) {
            eprintln!(
                "Warning: {package} built from {} is {digest}, but the registry's {package}@{version} is {}: departments get the registry's. A published version never changes: give the changed component a new version (its WIT package's, e.g. @{}) and restart, or publish it yourself as one.",
                path.display(),
                held.digest,
                next_patch(&version)
            );
            continue;
        }
        let signed = Some(key.sign(&package, &version, &digest));
        let outcome = registry.publish(PublishRequest {
            package: package.clone(),
            version,
            bytes,
            signed,
        })?;
        eprintln!(
            "Published {}@{} {}",
            package, outcome.record.version, outcome.record.digest
        );
    }
    Ok(())
}

/// `version` with its patch number one higher.
fn next_patch(version: &semver::Version) -> semver::Version {
    semver::Version::new(version.major, version.minor, version.patch + 1)
}

fn read_lock(manifest: &Path) -> anyhow::Result<Option<Lock>> {
    let path = manifest.with_file_name("zhongtai.lock");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            Lock::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The platform policy: `--policy`, else `<data-dir>/policy.toml`, else
/// `<dir>/policy.toml`; with its path and text.
fn read_policy(
    args: &UpArgs,
    data_dir: &Path,
) -> anyhow::Result<(PathBuf, String, zhongtai_manifest::Policy)> {
    let path = match &args.policy {
        Some(path) => path.clone(),
        None => [data_dir.join("policy.toml"), args.dir.join("policy.toml")]
            .into_iter()
            .find(|p| p.is_file())
            .with_context(|| {
                format!(
                    "no platform policy: give --policy FILE, or put policy.toml in {} or {} (it says which functions each department may call)",
                    data_dir.display(),
                    args.dir.display()
                )
            })?,
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let policy = zhongtai_manifest::Policy::parse(&text, &path.display().to_string())?;
    Ok((path, text, policy))
}

/// The host's metrics, and its trace exporter when traces are on.
pub type Telemetry = (
    Arc<zhongtai_api::metrics::Metrics>,
    Option<Arc<zhongtai_api::traces::Traces>>,
);

/// Deploys every manifest under `args.dir` into a new host, each checked
/// against the platform policy.
pub fn deploy_all(
    runtime: Arc<Runtime>,
    audit: Arc<zhongtai_audit::AuditLog>,
    (metrics, traces): Telemetry,
    args: &UpArgs,
    data_dir: &Path,
    shared: Option<Arc<zhongtai_api::SharedDeployments>>,
) -> anyhow::Result<Arc<zhongtai_api::Host>> {
    if args.registry.is_remote() && args.trust.is_empty() && !args.allow_unsigned {
        anyhow::bail!(
            "a remote registry serves whatever it is given: name the publishers to trust with --trust KEY (their public keys), or pass --allow-unsigned to load unsigned components from it"
        );
    }
    let registry: Arc<dyn Registry> = Arc::from(args.registry.open()?);
    if !args.registry.is_remote() {
        publish_capabilities(registry.as_ref(), &data_dir.join("publisher.key"))?;
    }
    let trust = trust_policy(&args.trust)?;
    let tokens = args.admin_tokens()?;
    if tokens.is_empty() {
        eprintln!(
            "No admin token (ZHONGTAI_ADMIN_TOKEN or --admin-tokens): the admin API refuses every request"
        );
    }
    let admin = zhongtai_api::Admin::new(registry, trust, tokens);
    let (policy_path, policy_text, policy) = read_policy(args, data_dir)?;
    eprintln!("Platform policy {}", policy_path.display());
    let mut host = zhongtai_api::Host::with_admin(runtime, Some(admin))
        .with_audit(audit.clone())
        .with_metrics(metrics)
        .with_policy(policy_text, policy)
        .with_trusted_proxies(args.trusted_proxies.clone())
        .with_department_limit(args.limits.department_max_in_flight);
    if args.min_free_mib > 0 {
        host = host.with_storage_watch(zhongtai_api::storage::StorageWatch::new(
            vec![data_dir.to_owned(), audit.dir().to_owned()],
            args.min_free_mib.saturating_mul(1024 * 1024),
        ));
    }
    if let Some(shared) = shared {
        host = host.with_shared(shared);
    }
    if let Some(traces) = traces {
        eprintln!("Exporting traces over OTLP");
        host = host.with_traces(traces);
    }
    let host = Arc::new(host);
    eprintln!(
        "Audit trail {} (checkpoints signed by {})",
        audit.dir().display(),
        audit.public_key().to_text()
    );
    for path in manifests(&args.dir)? {
        deploy_file(&host, &path)?;
    }
    Ok(host)
}

/// Deploys the manifest at `path` (pinned by the lock beside it) into
/// `host` and says so.
fn deploy_file(host: &zhongtai_api::Host, path: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file = path.display().to_string();
    let checked = zhongtai_manifest::parse(&text, &file)?;
    let lock = read_lock(path)?;
    let (department, services) = (checked.department.clone(), checked.services.len());
    let revision = host.deploy_manifest(
        checked,
        &file,
        lock.as_ref(),
        zhongtai_audit::sha256_hex(text.as_bytes()),
    )?;
    eprintln!("Deployed {department} ({services} services, revision {revision}) from {file}");
    Ok(())
}

/// What `up --watch` looks at: each file's modification time and length.
type Seen = std::collections::BTreeMap<PathBuf, (std::time::SystemTime, u64)>;

fn look(files: impl IntoIterator<Item = PathBuf>) -> Seen {
    files
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((path, (meta.modified().ok()?, meta.len())))
        })
        .collect()
}

/// Every file under `dir`, recursively, but `target/`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                found.extend(files_under(&path));
            }
        } else {
            found.push(path);
        }
    }
    found
}

/// The platform components' sources: each capability's crate and its WIT.
fn component_sources() -> Vec<PathBuf> {
    let Ok(root) = zhongtai_build::source_root() else {
        return Vec::new();
    };
    let mut files = files_under(&root.join("wit"));
    for package in ["guest", "ids", "auth", "payment", "credit", "license"] {
        files.extend(files_under(&root.join("components").join(package)));
    }
    files
}

/// `up --watch`: every half second, looks at the manifests, the policy
/// and the components' sources, and acts on what changed; runs until the
/// process ends.
pub fn watch(host: Arc<zhongtai_api::Host>, args: &UpArgs, data_dir: &Path) {
    let dir = args.dir.clone();
    let data_dir = data_dir.to_owned();
    let policy_path = read_policy(args, &data_dir).ok().map(|(path, ..)| path);
    let local_registry = !args.registry.is_remote();
    let manifests_now = move || look(manifests(&dir).unwrap_or_default());
    let policy_now = {
        let path = policy_path.clone();
        move || look(path.clone())
    };
    // What is there now is what was deployed: changes count from here.
    let mut manifests_seen = manifests_now();
    let mut policy_seen = policy_now();
    let mut sources_seen = look(component_sources());
    eprintln!("Watching the manifests, the policy and the components for changes");
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let policy = policy_now();
            if policy != policy_seen {
                policy_seen = policy;
                if let Some(path) = &policy_path {
                    match reload_policy(&host, path) {
                        Ok(()) => eprintln!("Took the changed policy {}", path.display()),
                        Err(e) => eprintln!("The policy was not changed: {e:#}"),
                    }
                }
            }
            let sources = look(component_sources());
            if sources != sources_seen && local_registry {
                sources_seen = sources;
                eprintln!("A component's source changed: building...");
                if let Some(admin) = host.admin()
                    && let Err(e) =
                        rebuild(admin.registry.as_ref(), &data_dir.join("publisher.key"))
                {
                    eprintln!("The components were not rebuilt: {e:#}");
                }
            }
            let manifests = manifests_now();
            for (path, stamp) in &manifests {
                if manifests_seen.get(path) == Some(stamp) {
                    continue;
                }
                if let Err(e) = deploy_file(&host, path) {
                    eprintln!(
                        "{} was not deployed; what is running stays:\n{e:#}",
                        path.display()
                    );
                }
            }
            for path in manifests_seen
                .keys()
                .filter(|p| !manifests.contains_key(*p))
            {
                eprintln!(
                    "{} is gone; its department stays deployed until the host restarts",
                    path.display()
                );
            }
            manifests_seen = manifests;
        }
    });
}

/// Takes the policy at `path` in place of the one in force.
fn reload_policy(host: &zhongtai_api::Host, path: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let policy = zhongtai_manifest::Policy::parse(&text, &path.display().to_string())?;
    host.replace_policy(text, policy)?;
    Ok(())
}

/// Builds the platform's components and compares them with the registry
/// (publishing what it lacks), as a start does.
fn rebuild(registry: &dyn Registry, key_path: &Path) -> anyhow::Result<()> {
    let root = zhongtai_build::source_root()?;
    zhongtai_build::build(&root, zhongtai_build::CAPABILITIES, false)?;
    publish_capabilities(registry, key_path)?;
    eprintln!("Built the components");
    Ok(())
}

/// Serves the departments on `args.addr` and the admin API on
/// `args.admin_addr` until SIGINT or SIGTERM, then lets requests in flight
/// finish.
pub fn serve(host: Arc<zhongtai_api::Host>, args: &UpArgs) -> anyhow::Result<ExitCode> {
    raise_open_files_limit();
    let runtime = tokio::runtime::Runtime::new()?;
    let mut limits = args.limits.limits();
    limits.uncapped_peers = args.trusted_proxies.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("listening on {}", args.addr))?;
        let admin = tokio::net::TcpListener::bind(&args.admin_addr)
            .await
            .with_context(|| format!("listening for the admin API on {}", args.admin_addr))?;
        let local = listener.local_addr()?;
        let admin_local = admin.local_addr()?;
        if !admin_local.ip().is_loopback() {
            eprintln!(
                "The admin API listens on {admin_local}, which is not a loopback address: other machines can reach it"
            );
        }
        eprintln!("zhongtai admin API on http://{admin_local}");
        eprintln!(
            "zhongtai serving {} on http://{local}",
            host.departments().join(", ")
        );
        let shutdown = async {
            crate::shutdown_signal().await;
            eprintln!("Shutting down: finishing requests in flight...");
        };
        zhongtai_api::serve(listener, Some(admin), host, limits, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Raises the soft limit on open files to the hard one: every connection
/// is a file, and the default soft limit (often 1024) is below the
/// connection limits.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open files limit"),
    }
}

/// Writes `zhongtai.lock` beside every manifest under `dir`.
pub fn lock(dir: &Path, registry_args: &RegistryArgs) -> anyhow::Result<ExitCode> {
    let registry = registry_args.open()?;
    for path in manifests(dir)? {
        let checked = zhongtai_manifest::load(&path)?;
        let lock = zhongtai_api::lock(&checked, &path.display().to_string(), registry.as_ref())?;
        let lock_path = path.with_file_name("zhongtai.lock");
        std::fs::write(&lock_path, lock.to_text())
            .with_context(|| format!("writing {}", lock_path.display()))?;
        println!(
            "{}: {} components locked",
            lock_path.display(),
            lock.components.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
