//! Deployments shared by several hosts on one PostgreSQL database.
//!
//! A deploy or rollback made through one host's admin API is appended to
//! `zhongtai_deployments` (after it succeeded there) and announced with
//! `NOTIFY zhongtai_deployments`. Every host follows the table from a
//! thread of its own: it `LISTEN`s, and on a notice — or after a second
//! without one, in case a notice was lost — applies, in order, each change
//! made by another host. A host that starts replays every change after
//! deploying its own manifests, so it serves what the others serve. Each
//! host also publishes its signed audit checkpoints
//! (`zhongtai_audit_checkpoints`). The tables are created by the state
//! store's migrations.

use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

use crate::host::Host;

/// The channel changes are announced on.
const CHANNEL: &str = "zhongtai_deployments";

/// A change to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A manifest deployed for a department.
    Deploy {
        /// The department.
        department: String,
        /// The manifest's text.
        manifest: String,
    },
    /// A department rolled back to its previous deployment.
    Rollback {
        /// The department.
        department: String,
    },
}

/// One host's view of the shared deployments.
pub struct SharedDeployments {
    config: postgres::Config,
    /// Names this host in the changes it makes.
    host_id: String,
}

impl SharedDeployments {
    /// Deployments shared through the database at `url` (whose schema the
    /// state store created), by the host named `host_id`.
    pub fn new(url: &str, host_id: String) -> anyhow::Result<Self> {
        let config = url
            .parse()
            .map_err(|e| anyhow::anyhow!("the state URL: {e}"))?;
        Ok(Self { config, host_id })
    }

    /// This host's name in the changes it makes.
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// Appends `change` and tells every host; returns its revision.
    pub fn announce(&self, change: &Change) -> anyhow::Result<i64> {
        let mut client = self.config.connect(NoTls)?;
        let (department, action, manifest) = match change {
            Change::Deploy {
                department,
                manifest,
            } => (department, "deploy", Some(manifest.as_str())),
            Change::Rollback { department } => (department, "rollback", None),
        };
        let mut transaction = client.transaction()?;
        let revision: i64 = transaction
            .query_one(
                "INSERT INTO zhongtai_deployments (department, action, manifest, made_by)
                 VALUES ($1, $2, $3, $4) RETURNING revision",
                &[department, &action, &manifest, &self.host_id],
            )?
            .get(0);
        transaction.execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &revision.to_string()],
        )?;
        transaction.commit()?;
        Ok(revision)
    }

    /// Publishes one of this host's signed audit checkpoints, for auditors
    /// who check every host's trail against the heads in the database.
    pub fn publish_checkpoint(
        &self,
        checkpoint: &zhongtai_audit::Checkpoint,
    ) -> anyhow::Result<()> {
        let mut client = self.config.connect(NoTls)?;
        client.execute(
            "INSERT INTO zhongtai_audit_checkpoints
                 (host, key, records, bytes, head, time, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (key, records) DO NOTHING",
            &[
                &self.host_id,
                &checkpoint.key,
                &(checkpoint.records as i64),
                &(checkpoint.bytes as i64),
                &checkpoint.head,
                &checkpoint.time,
                &checkpoint.signature,
            ],
        )?;
        Ok(())
    }

    /// [`SharedDeployments::publish_checkpoint`] as an audit trail's sink;
    /// failures are logged, and the next checkpoint tries again.
    pub fn checkpoint_sink(self: &Arc<Self>) -> zhongtai_audit::CheckpointSink {
        let shared = self.clone();
        zhongtai_audit::CheckpointSink(Arc::new(move |checkpoint| {
            if let Err(error) = shared.publish_checkpoint(checkpoint) {
                tracing::warn!(%error, records = checkpoint.records, "publishing an audit checkpoint");
            }
        }))
    }

    /// Follows the changes other hosts make, applying them to `host`, on a
    /// thread of its own, for as long as the process runs.
    pub fn follow(self: Arc<Self>, host: Arc<Host>) {
        std::thread::spawn(move || {
            let mut applied = 0i64;
            loop {
                if let Err(error) = self.follow_once(&host, &mut applied) {
                    tracing::warn!(%error, "following shared deployments; retrying in a second");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        });
    }

    /// Listens and applies changes until the connection fails.
    fn follow_once(&self, host: &Host, applied: &mut i64) -> anyhow::Result<()> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
        loop {
            self.catch_up(&mut client, host, applied)?;
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(Duration::from_secs(1));
            waiting.next()?;
        }
    }

    /// Applies every change after revision `applied`, in order.
    fn catch_up(&self, client: &mut Client, host: &Host, applied: &mut i64) -> anyhow::Result<()> {
        let rows = client.query(
            "SELECT revision, department, action, manifest, made_by FROM zhongtai_deployments
             WHERE revision > $1 ORDER BY revision",
            &[applied],
        )?;
        for row in rows {
            let revision: i64 = row.get(0);
            let department: String = row.get(1);
            let action: String = row.get(2);
            let made_by: String = row.get(4);
            if made_by != self.host_id {
                let outcome = match action.as_str() {
                    "deploy" => {
                        let manifest: String = row.get::<_, Option<String>>(3).unwrap_or_default();
                        crate::admin::deploy_text(
                            host,
                            &department,
                            &manifest,
                            zhongtai_audit::sha256_hex(manifest.as_bytes()),
                            crate::host::OPERATOR,
                        )
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                    }
                    _ => host
                        .rollback(&department)
                        .map(drop)
                        .map_err(|e| e.to_string()),
                };
                match outcome {
                    Ok(()) => {
                        tracing::info!(revision, %department, %action, %made_by, "followed a shared change")
                    }
                    Err(error) => {
                        tracing::warn!(revision, %department, %action, %made_by, %error, "could not follow a shared change")
                    }
                }
            }
            *applied = revision;
        }
        Ok(())
    }
}

/// A name for this process: the machine's hostname, the process id and
/// when it started, so that a restarted host is a new one.
pub fn host_id() -> String {
    let name = std::fs::read_to_string("/etc/hostname")
        .map(|n| n.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{name}/{}/{started:x}", std::process::id())
}
