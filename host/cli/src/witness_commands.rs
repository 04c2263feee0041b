//! `zhongtai witness`: another party — a second department, the registry's
//! operator, an auditor — that watches a host's audit log. Every
//! `--interval` it fetches the latest checkpoint, checks it is signed by
//! the log's key, and that it extends the last checkpoint this witness
//! cosigned (a consistency proof from the host, checked here); then it
//! cosigns it (C2SP `tlog-cosignature`) and hands the cosignature to the
//! host, which publishes it with the checkpoint.
//!
//! A checkpoint that does not extend the last one — fewer records, another
//! tree of the same size, a proof that fails — is refused: nothing is
//! cosigned, the state keeps the last good checkpoint, and the refused one
//! is written beside the state file as evidence. A log that rewrote its
//! history can then show no checkpoint this witness cosigned after it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use zhongtai_audit::{ConsistencyProof, HostKey, VerifyKey, note, open_checkpoint};

/// `zhongtai witness …`.
#[derive(Args)]
pub struct WitnessArgs {
    /// The host's public address, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    log: String,
    /// The log's public key (the host's `audit/host.pub`, or base64), as
    /// obtained from its operator.
    #[arg(long)]
    log_key: String,
    /// The log's origin; default the one of the first checkpoint seen,
    /// kept in the state from then on.
    #[arg(long)]
    origin: Option<String>,
    /// This witness's name in its cosignatures (the host is started with
    /// `--witness NAME=PUBLIC-KEY`).
    #[arg(long)]
    name: String,
    /// This witness's secret key (`zhongtai keygen --out witness.key`).
    #[arg(long)]
    key: PathBuf,
    /// Where the witness keeps the last checkpoint it cosigned.
    #[arg(long)]
    state: PathBuf,
    /// Seconds between checks.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Check once and exit: status 1 when the checkpoint is refused or
    /// the log cannot be reached.
    #[arg(long)]
    once: bool,
}

/// What the witness remembers: the last checkpoint it cosigned.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Seen {
    origin: String,
    size: u64,
    checkpoint: String,
    cosigned_at: u64,
}

/// How one check ended.
enum Round {
    Cosigned(String),
    /// The log showed a checkpoint that does not extend the last one.
    Refused(String),
}

/// Runs the witness.
pub fn run(args: WitnessArgs) -> anyhow::Result<ExitCode> {
    let log_key = crate::args::public_key(&args.log_key).context("--log-key")?;
    let key_text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let key = HostKey::from_text(&key_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.key.display()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    loop {
        let round = check_once(&args, &agent, &log_key, &key);
        let failed = match &round {
            Ok(Round::Cosigned(said)) => {
                println!("{said}");
                false
            }
            Ok(Round::Refused(why)) => {
                eprintln!("REFUSED: {why}");
                true
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                true
            }
        };
        if args.once {
            return Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        std::thread::sleep(Duration::from_secs(args.interval));
    }
}

fn get(agent: &ureq::Agent, url: &str) -> anyhow::Result<String> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("fetching {url}"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if status != 200 {
        anyhow::bail!("{url} answered {status}: {text}");
    }
    Ok(text)
}

fn check_once(
    args: &WitnessArgs,
    agent: &ureq::Agent,
    log_key: &VerifyKey,
    key: &HostKey,
) -> anyhow::Result<Round> {
    let base = args.log.trim_end_matches('/');
    let seen = read_state(&args.state)?;
    let fetched = get(agent, &format!("{base}/audit/v1/checkpoint"))?;
    let body = note::body(&fetched)
        .map_err(|e| anyhow::anyhow!("the log's checkpoint: {e}"))?
        .to_owned();
    let claimed =
        note::TreeHead::parse(&body).map_err(|e| anyhow::anyhow!("the log's checkpoint: {e}"))?;
    let origin = args
        .origin
        .clone()
        .or_else(|| seen.as_ref().map(|s| s.origin.clone()))
        .unwrap_or_else(|| claimed.origin.clone());
    let refuse = |why: String| -> anyhow::Result<Round> {
        let evidence = evidence_path(&args.state);
        std::fs::write(&evidence, format!("{why}\n\n{fetched}"))
            .with_context(|| format!("writing {}", evidence.display()))?;
        Ok(Round::Refused(format!(
            "{why} (the checkpoint is kept in {})",
            evidence.display()
        )))
    };
    let head = match open_checkpoint(&fetched, &origin, log_key) {
        Ok(head) => head,
        Err(why) => return refuse(format!("the log's latest checkpoint: {why}")),
    };
    let extends = match &seen {
        None => "the first checkpoint this witness sees".to_owned(),
        Some(seen) if head.size < seen.size => {
            return refuse(format!(
                "the log's latest checkpoint has {} records, fewer than the {} this witness cosigned: the log was cut or rolled back",
                head.size, seen.size
            ));
        }
        Some(seen) if head.size == seen.size => {
            let old = open_checkpoint(&seen.checkpoint, &origin, log_key)
                .map_err(|e| anyhow::anyhow!("the state's checkpoint: {e}"))?;
            if old.root != head.root {
                return refuse(format!(
                    "the log shows another tree of {} records than the one this witness cosigned: its history was rewritten",
                    head.size
                ));
            }
            format!("the same {} records as before", head.size)
        }
        Some(seen) => {
            let url = format!(
                "{base}/audit/v1/proof/consistency?from={}&to={}",
                seen.size, head.size
            );
            let proof: ConsistencyProof = serde_json::from_str(&get(agent, &url)?)
                .with_context(|| format!("{url} is not a consistency proof"))?;
            match proof.check(&seen.checkpoint, log_key) {
                Ok(proved) if proved.root == head.root => format!("extends {}", seen.size),
                Ok(_) => {
                    return refuse(format!(
                        "the log proved consistency with a tree of {} records other than its latest checkpoint's",
                        head.size
                    ));
                }
                Err(why) => {
                    return refuse(format!(
                        "the latest checkpoint does not extend the one of {} records this witness cosigned: {why}",
                        seen.size
                    ));
                }
            }
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cosigned = fetched.clone() + &note::cosign(&body, &args.name, key, now);
    let url = format!("{base}/audit/v1/cosignature");
    let mut response = agent
        .post(&url)
        .header("content-type", "text/plain; charset=utf-8")
        .send(cosigned.clone())
        .with_context(|| format!("handing the cosignature to {url}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        anyhow::bail!("the log did not take the cosignature (HTTP {status}): {message}");
    }
    write_state(
        &args.state,
        &Seen {
            origin: origin.clone(),
            size: head.size,
            checkpoint: cosigned,
            cosigned_at: now,
        },
    )?;
    Ok(Round::Cosigned(format!(
        "cosigned {origin} at {} records ({extends})",
        head.size
    )))
}

fn read_state(path: &Path) -> anyhow::Result<Option<Seen>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not a witness state file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the state whole or not at all (a new file renamed over the old).
fn write_state(path: &Path, seen: &Seen) -> anyhow::Result<()> {
    let fresh = path.with_extension("new");
    let text = serde_json::to_string_pretty(seen)?;
    std::fs::write(&fresh, text + "\n")
        .and_then(|()| std::fs::rename(&fresh, path))
        .with_context(|| format!("writing {}", path.display()))
}

fn evidence_path(state: &Path) -> PathBuf {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = state.file_name().map_or_else(
        || "witness".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    state.with_file_name(format!("{name}.refused-{now}.txt"))
}
