//! Arguments several commands share: where the registry is and whom to
//! trust, where the host keeps its data, and how to reach a running host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use zhongtai_registry::{PublicKey, Registry, TrustPolicy};
use zhongtai_runtime::{
    HostConfig, KeyValueStore, PostgresStore, Runtime, RuntimeLimits, RuntimeOptions, SqliteStore,
};

/// Where the registry is, and the token for changing it.
#[derive(Args)]
pub struct RegistryArgs {
    /// A registry directory (embedded) or URL (`http://host:port`).
    #[arg(long, env = "ZHONGTAI_REGISTRY", default_value = ".zhongtai/registry")]
    pub registry: String,
    /// Publisher token for a remote registry.
    #[arg(long, env = "ZHONGTAI_REGISTRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl RegistryArgs {
    /// Whether the registry is a URL rather than a directory.
    pub fn is_remote(&self) -> bool {
        self.registry.starts_with("http://") || self.registry.starts_with("https://")
    }

    /// Opens the registry these arguments name.
    pub fn open(&self) -> anyhow::Result<Box<dyn Registry>> {
        zhongtai_registry::client::open(
            &self.registry,
            self.token.clone(),
            zhongtai_runtime::platform::provided_interfaces(),
        )
        .with_context(|| format!("opening the registry at {}", self.registry))
    }
}

/// Reads trusted public keys from files or literal base64.
pub fn trust_policy(trust: &[String]) -> anyhow::Result<TrustPolicy> {
    let keys = trust
        .iter()
        .map(|entry| {
            let text = if Path::new(entry).is_file() {
                std::fs::read_to_string(entry).with_context(|| format!("reading {entry}"))?
            } else {
                entry.clone()
            };
            PublicKey::parse(&text).with_context(|| format!("trusted key {entry}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(if keys.is_empty() {
        TrustPolicy::default()
    } else {
        TrustPolicy::trusting(keys)
    })
}

/// Where the host keeps its data, and the limits every call runs under.
#[derive(Args)]
pub struct HostArgs {
    /// Where state, compiled components and host configuration live.
    #[arg(long, env = "ZHONGTAI_DATA", default_value = ".zhongtai")]
    pub data_dir: PathBuf,
    /// Host configuration (TOML); defaults to `<data-dir>/config.toml` when present.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Linear memory one call may use, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mib: usize,
    /// Wall-clock time one call may run, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub deadline_ms: u64,
    /// The Ed25519 key (from `zhongtai keygen`) that signs audit
    /// checkpoints; default `<data-dir>/audit/host.key`, made on first use.
    #[arg(long, env = "ZHONGTAI_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
    /// Where component state lives: a PostgreSQL URL
    /// (`postgres://user@host/database`), shared by every host pointed at
    /// it; default the embedded store `<data-dir>/state.db`.
    #[arg(long, env = "ZHONGTAI_STATE")]
    pub state: Option<String>,
}

impl HostArgs {
    /// The state URL when it names PostgreSQL.
    fn postgres_url(&self) -> Option<&str> {
        self.state
            .as_deref()
            .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
    }

    /// Deployments shared with the other hosts on the same PostgreSQL
    /// state, if the state is there.
    pub fn shared_deployments(
        &self,
    ) -> anyhow::Result<Option<Arc<zhongtai_api::SharedDeployments>>> {
        self.postgres_url()
            .map(|url| {
                zhongtai_api::SharedDeployments::new(url, zhongtai_api::shared::host_id())
                    .map(Arc::new)
            })
            .transpose()
    }

    /// A runtime over the state and compile cache in the data directory,
    /// which is owner-only (0700), as is the state in it.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        zhongtai_audit::private_dir(&self.data_dir)
            .with_context(|| format!("creating data directory {}", self.data_dir.display()))?;
        let config_path = self
            .config
            .clone()
            .or_else(|| Some(self.data_dir.join("config.toml")).filter(|p| p.is_file()));
        let config = match config_path {
            Some(path) => HostConfig::load(&path)?,
            None => HostConfig::default(),
        };
        let store: Arc<dyn KeyValueStore> = match (self.postgres_url(), &self.state) {
            (Some(url), _) => Arc::new(
                PostgresStore::connect(url)
                    .with_context(|| format!("connecting to the state database {}", redact(url)))?,
            ),
            (None, Some(other)) => anyhow::bail!(
                "--state {other:?}: expected a postgres:// URL (leave it out for the embedded store)"
            ),
            (None, None) => Arc::new(open_state(&self.data_dir)?),
        };
        Runtime::new(RuntimeOptions {
            limits: RuntimeLimits {
                memory_bytes: self.memory_mib.saturating_mul(1024 * 1024),
                deadline: Duration::from_millis(self.deadline_ms),
                ..RuntimeLimits::default()
            },
            cache_dir: Some(self.data_dir.join("cache")),
            config,
            store,
        })
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The component state in `<data_dir>/state.db`. The state of an earlier
/// version (a sled directory, `<data_dir>/store`) is imported on first
/// start and kept as `store.imported`.
pub fn open_state(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    let path = data_dir.join("state.db");
    let earlier = data_dir.join("store");
    let import = !path.exists() && earlier.join("db").is_file();
    let store = SqliteStore::open(&path)
        .with_context(|| format!("opening the state store {}", path.display()))?;
    if import {
        let (count, kept) = zhongtai_runtime::import_sled(&earlier, &store).with_context(|| {
            format!(
                "importing the state of an earlier version from {}; move it away to start empty",
                earlier.display()
            )
        })?;
        eprintln!(
            "Imported {count} keys of component state from {} (kept as {})",
            earlier.display(),
            kept.display()
        );
    }
    Ok(store)
}

/// Where a component named by package comes from, and whom to trust.
#[derive(Args)]
pub struct SourceArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Load only components signed by these publisher keys (files or base64).
    #[arg(long)]
    pub trust: Vec<String>,
}

/// `zhongtai up`.
#[derive(Args)]
pub struct UpArgs {
    /// Directory of departments, each `<dir>/<department>/zhongtai.toml`.
    #[arg(long, default_value = "examples")]
    pub dir: PathBuf,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Load only components signed by these publisher keys. Required with
    /// a remote registry (or `--allow-unsigned`).
    #[arg(long)]
    pub trust: Vec<String>,
    /// Load unsigned components from a remote registry, trusting the
    /// registry and the network to it.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// The platform policy (TOML): what each department may call. Default:
    /// `<data-dir>/policy.toml` when present, else `<dir>/policy.toml`.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Token for the admin API (deploy, upgrade, rollback); without one the
    /// admin API refuses every request.
    #[arg(long, env = "ZHONGTAI_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A load balancer or proxy in front of the host (an IP address,
    /// repeatable): its `X-Forwarded-For` names the client. From anyone
    /// else the header is ignored.
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `zhongtai deploy` and `zhongtai rollback`: where the host is.
#[derive(Args)]
pub struct AdminArgs {
    /// The host's URL.
    #[arg(long, env = "ZHONGTAI_HOST", default_value = "http://127.0.0.1:8080")]
    pub host: String,
    /// The admin token.
    #[arg(long, env = "ZHONGTAI_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}
