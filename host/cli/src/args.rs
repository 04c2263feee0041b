//! Arguments several commands share: where the registry is and whom to
//! trust, where the host keeps its data, and how to reach a running host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use zhongtai_registry::{PublicKey, Registry, TrustPolicy};
use zhongtai_runtime::{
    Compiler, HostConfig, KeyValueStore, PostgresStore, Runtime, RuntimeLimits, RuntimeOptions,
    SqliteStore,
};

/// Where the registry is, and the token for changing it.
#[derive(Args)]
pub struct RegistryArgs {
    /// A registry directory (embedded), a zhongtai registry's URL
    /// (`http://host:port`), or an OCI registry
    /// (`oci://host:port/namespace`).
    #[arg(long, env = "ZHONGTAI_REGISTRY", default_value = ".zhongtai/registry")]
    pub registry: String,
    /// Publisher token for a remote registry (for an OCI registry,
    /// `user:password`).
    #[arg(long, env = "ZHONGTAI_REGISTRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl RegistryArgs {
    /// Whether the registry is a URL (zhongtai's own API, or an OCI
    /// registry) rather than a directory.
    pub fn is_remote(&self) -> bool {
        ["http://", "https://", "oci://"]
            .iter()
            .any(|scheme| self.registry.starts_with(scheme))
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
    /// A call that has used this many milliseconds of CPU goes on at idle
    /// CPU priority, using only what shorter calls leave; its service's
    /// calls (as after one that timed out) start there for the next
    /// second. 0: never.
    #[arg(long, default_value_t = 200)]
    pub demote_after_ms: u64,
    /// How many requests' steps run at once (those waiting for a lock, the
    /// store or a timer, or running longer than 2 ms, not counted); more
    /// wait their turn. 0: twice the CPUs.
    #[arg(long, default_value_t = 0)]
    pub step_threads: usize,
    /// The Ed25519 key (from `zhongtai keygen`) that signs audit
    /// checkpoints; default `<data-dir>/audit/host.key`, made on first use.
    #[arg(long, env = "ZHONGTAI_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
    /// The audit trail is sealed into a segment of its own every this many
    /// records (`<data-dir>/audit/segments/`), so that old records can be
    /// archived; every segment still verifies with the rest.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_segment_records: u64,
    /// The audit log's name in its checkpoints (C2SP origin), e.g.
    /// `audit.tax.example.gov/host-1`; default `zhongtai/audit/` and a
    /// hash of the host's key. Keep it once witnesses follow the log;
    /// hosts sharing one key each need their own.
    #[arg(long, env = "ZHONGTAI_AUDIT_ORIGIN")]
    pub audit_origin: Option<String>,
    /// A witness whose cosignatures of the log's checkpoints the host
    /// accepts at `POST /audit/v1/cosignature` and publishes:
    /// `NAME=PUBLIC-KEY` (a key file from `zhongtai keygen`, or base64).
    /// Repeatable.
    #[arg(long = "witness", value_name = "NAME=KEY")]
    pub witnesses: Vec<String>,
    /// Where component state lives: a PostgreSQL URL
    /// (`postgres://user@host/database`), shared by every host pointed at
    /// it; default the embedded store `<data-dir>/state.db`.
    #[arg(long, env = "ZHONGTAI_STATE")]
    pub state: Option<String>,
}

impl HostArgs {
    /// The witnesses given with `--witness`.
    pub fn witnesses(&self) -> anyhow::Result<Vec<zhongtai_audit::Witness>> {
        self.witnesses
            .iter()
            .map(|given| {
                let (name, key) = given.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("--witness {given:?}: expected NAME=PUBLIC-KEY")
                })?;
                Ok(zhongtai_audit::Witness {
                    name: name.to_owned(),
                    key: public_key(key).map_err(|e| anyhow::anyhow!("--witness {name}: {e}"))?,
                })
            })
            .collect()
    }

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

    /// A runtime with the data directory's compile cache but empty,
    /// temporary state and no host configuration: for running a component
    /// file that has not been told which package's state and secrets it
    /// may use.
    pub fn scratch_runtime(&self) -> anyhow::Result<Runtime> {
        zhongtai_audit::private_dir(&self.data_dir)
            .with_context(|| format!("creating data directory {}", self.data_dir.display()))?;
        Runtime::new(RuntimeOptions {
            limits: self.limits(),
            cache_dir: Some(self.data_dir.join("cache")),
            config: HostConfig::default(),
            store: Arc::new(SqliteStore::temporary()?),
            compiler: compiler(),
        })
    }

    /// The limits every call runs under.
    fn limits(&self) -> RuntimeLimits {
        RuntimeLimits {
            memory_bytes: self.memory_mib.saturating_mul(1024 * 1024),
            deadline: Duration::from_millis(self.deadline_ms),
            demote_after: (self.demote_after_ms > 0)
                .then(|| Duration::from_millis(self.demote_after_ms)),
            step_threads: match self.step_threads {
                0 => zhongtai_runtime::limits::default_step_threads(),
                n => n,
            },
            ..RuntimeLimits::default()
        }
    }

    /// A runtime over the state and compile cache in the data directory,
    /// which is owner-only (0700), as is the state in it.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        self.measured_runtime(None)
    }

    /// [`HostArgs::runtime`], with its state commits counted in `metrics`
    /// when given.
    pub fn measured_runtime(
        &self,
        metrics: Option<&Arc<zhongtai_api::metrics::Metrics>>,
    ) -> anyhow::Result<Runtime> {
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
        let store = match metrics {
            Some(metrics) => metrics.measure_store(store),
            None => store,
        };
        Runtime::new(RuntimeOptions {
            limits: self.limits(),
            cache_dir: Some(self.data_dir.join("cache")),
            config,
            store,
            compiler: compiler(),
        })
    }
}

/// Components are compiled in a child process running this executable
/// (see `zhongtai_runtime::compiler`), or here if it cannot be found.
fn compiler() -> Compiler {
    Compiler::this_executable().unwrap_or_else(|error| {
        tracing::warn!(%error, "this executable cannot be found; compiling components in this process");
        Compiler::InProcess
    })
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
    /// Address of the admin API (deploy, upgrade, rollback, policy, audit).
    /// Loopback by default: only this machine reaches it.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_addr: String,
    /// Admin tokens (TOML, owner-only): `operator = "…"`, `metrics = "…"`
    /// (reads `/metrics` only, for a scraper) and `[departments]` with a
    /// token per department. The operator's token may instead come from
    /// `ZHONGTAI_ADMIN_TOKEN`, the metrics token from
    /// `ZHONGTAI_METRICS_TOKEN`. Without any, the admin API refuses
    /// everything.
    #[arg(long, env = "ZHONGTAI_ADMIN_TOKENS")]
    pub admin_tokens: Option<PathBuf>,
    /// Not accepted: a token on the command line is visible to every user
    /// of the machine.
    #[arg(long = "admin-token", hide = true)]
    pub admin_token_on_command_line: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Free space (MiB) below which the host refuses writing work with 503
    /// `storage-low`, on the filesystems of the data directory and the
    /// audit trail; reads go on. 0 turns the watch off.
    #[arg(long, default_value_t = 128)]
    pub min_free_mib: u64,
    /// Export traces (a span per request, step and component call) over
    /// OTLP/HTTP to this collector's base URL, e.g. `http://127.0.0.1:4318`
    /// (`/v1/traces` is added). Off unless this, or the standard
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (a full URL), is set.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Development: watch the manifests, the policy and (in the source
    /// tree) the platform's components; redeploy a department whose
    /// manifest changed, take a changed policy, rebuild changed components
    /// and say what it did and any error with its place.
    #[arg(long)]
    pub watch: bool,
    /// A load balancer or proxy in front of the host (an IP address,
    /// repeatable): its `X-Forwarded-For` names the client. From anyone
    /// else the header is ignored.
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// What clients may hold of the host; see `zhongtai_api::connections`.
#[derive(Args)]
pub struct LimitArgs {
    /// Seconds a client has to send a request head (and an idle
    /// connection stays open).
    #[arg(long, default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request body.
    #[arg(long, default_value_t = 10)]
    pub body_timeout_secs: u64,
    /// Seconds a write of an answer may wait for the client to read it.
    #[arg(long, default_value_t = 30)]
    pub write_timeout_secs: u64,
    /// Requests handled at once; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = 512)]
    pub max_in_flight: usize,
    /// Requests of one department handled at once; more are answered 503
    /// `department-busy`, and other departments are served as before.
    #[arg(long, default_value_t = zhongtai_api::admission::DEFAULT_LIMIT)]
    pub department_max_in_flight: usize,
    /// Open connections from one client address.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_client: usize,
    /// Open connections in all.
    #[arg(long, default_value_t = 16_384)]
    pub max_connections: usize,
}

impl LimitArgs {
    /// The limits these arguments set.
    pub fn limits(&self) -> zhongtai_api::ServeLimits {
        zhongtai_api::ServeLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            write_timeout: Duration::from_secs(self.write_timeout_secs.max(1)),
            max_in_flight: self.max_in_flight.max(1),
            max_connections_per_client: self.max_connections_per_client.max(1),
            max_connections: self.max_connections.max(1),
            ..zhongtai_api::ServeLimits::default()
        }
    }
}

/// The refusal of a token given on the command line.
const TOKEN_ON_COMMAND_LINE: &str = "--admin-token is not accepted: every user of this machine can read a command line (ps); put the token in ZHONGTAI_ADMIN_TOKEN, or in a file (--admin-tokens for `up`, --admin-token-file for `deploy` and `rollback`)";

impl UpArgs {
    /// The trace exporter, when a collector is configured.
    pub fn traces(&self) -> anyhow::Result<Option<Arc<zhongtai_api::traces::Traces>>> {
        let by_environment =
            std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some_and(|v| !v.is_empty());
        let endpoint = self.otlp_endpoint.as_deref().filter(|e| !e.is_empty());
        if endpoint.is_none() && !by_environment {
            return Ok(None);
        }
        let traces = zhongtai_api::traces::Traces::otlp(endpoint)?;
        Ok(Some(Arc::new(traces)))
    }

    /// The admin tokens: the file's, and the operator's from
    /// `ZHONGTAI_ADMIN_TOKEN`; every one checked for strength.
    pub fn admin_tokens(&self) -> anyhow::Result<zhongtai_api::admin::AdminTokens> {
        if self.admin_token_on_command_line.is_some() {
            anyhow::bail!(TOKEN_ON_COMMAND_LINE);
        }
        let mut tokens = match &self.admin_tokens {
            Some(path) => {
                let text = read_secret_file(path)?;
                zhongtai_api::admin::AdminTokens::parse(&text, &path.display().to_string())
                    .map_err(anyhow::Error::msg)?
            }
            None => zhongtai_api::admin::AdminTokens::default(),
        };
        if let Some(token) = env_token()? {
            tokens = tokens
                .with_operator(&token)
                .map_err(|e| anyhow::anyhow!("ZHONGTAI_ADMIN_TOKEN: {e}"))?;
        }
        if let Some(token) = env_secret("ZHONGTAI_METRICS_TOKEN")? {
            tokens = tokens
                .with_metrics(&token)
                .map_err(|e| anyhow::anyhow!("ZHONGTAI_METRICS_TOKEN: {e}"))?;
        }
        Ok(tokens)
    }
}

/// `ZHONGTAI_ADMIN_TOKEN`, when set and not empty.
fn env_token() -> anyhow::Result<Option<String>> {
    env_secret("ZHONGTAI_ADMIN_TOKEN")
}

/// The environment variable `name`, trimmed, when set and not empty.
fn env_secret(name: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(name) {
        Ok(token) if !token.trim().is_empty() => Ok(Some(token.trim().to_owned())),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{name} is not valid UTF-8")
        }
    }
}

/// Reads a file holding secrets, refusing one that others may read.
pub fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "{} holds admin tokens but others may read it (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            );
        }
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `zhongtai deploy` and `zhongtai rollback`: where the host's admin API
/// is, and the token.
#[derive(Args)]
pub struct AdminArgs {
    /// The host's admin address.
    #[arg(long, env = "ZHONGTAI_HOST", default_value = "http://127.0.0.1:8081")]
    pub host: String,
    /// A file holding the admin token (owner-only); default the
    /// environment variable `ZHONGTAI_ADMIN_TOKEN`.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// Not accepted: a token on the command line is visible to every user
    /// of the machine.
    #[arg(long = "admin-token", hide = true)]
    pub admin_token_on_command_line: Option<String>,
}

impl AdminArgs {
    /// The token to send: the file's, else `ZHONGTAI_ADMIN_TOKEN`'s.
    pub fn token(&self) -> anyhow::Result<String> {
        if self.admin_token_on_command_line.is_some() {
            anyhow::bail!(TOKEN_ON_COMMAND_LINE);
        }
        if let Some(path) = &self.admin_token_file {
            return Ok(read_secret_file(path)?.trim().to_owned());
        }
        env_token()?
            .context("no admin token: set ZHONGTAI_ADMIN_TOKEN or give --admin-token-file FILE")
    }
}

/// A public key given as a file (`zhongtai keygen`'s `.pub`, or a trail's
/// `host.pub`) or as text (base64, or the `zhongtai-ed25519-public:` line).
pub fn public_key(given: &str) -> anyhow::Result<zhongtai_audit::VerifyKey> {
    let path = std::path::Path::new(given);
    if path.is_file() {
        return Ok(zhongtai_audit::VerifyKey::from_file(path)?);
    }
    zhongtai_audit::VerifyKey::from_text(given)
        .map_err(|e| anyhow::anyhow!("{e} (and no such key file)"))
}
