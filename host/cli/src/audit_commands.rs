//! `zhongtai audit verify|show|export|disclose|digest|prove|check-proof`,
//! and the audit trail
//! of the CLI's own calls.
//!
//! The host keeps its trail in `<data-dir>/audit`. `verify` and `show` read
//! it directly (the host may be running: they see every record already
//! answered for), or read an export given to an auditor.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value as Json;
use zhongtai_audit::{
    AuditLog, AuditOptions, ConsistencyProof, DIGEST_KEY_FILE, DigestKey, Filter, HostKey,
    InclusionProof, Kind, PUBLIC_KEY_FILE, Prover, Record, RequestKey, VerifyKey, parse_time,
};
use zhongtai_runtime::{CallContext, LoadedComponent, Runtime};

/// Where a trail is.
#[derive(Args)]
pub struct TrailArgs {
    /// The trail directory: the host's `<data-dir>/audit`, or an export.
    #[arg(long, env = "ZHONGTAI_AUDIT_DIR", default_value = ".zhongtai/audit")]
    pub dir: PathBuf,
}

/// `zhongtai audit …`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain and every checkpoint signature; names the
    /// first broken record. Exit status 1 when the trail does not verify.
    Verify {
        #[command(flatten)]
        trail: TrailArgs,
        /// The host's public key (file or base64) as obtained from its
        /// operator; without it the key stored in the trail directory is
        /// used, which proves only that the trail is consistent with itself.
        #[arg(long)]
        key: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Other hosts' trails (repeatable): with `--state`, every host's
        /// trail is checked against the checkpoints it published.
        #[arg(long = "and")]
        and: Vec<PathBuf>,
        /// The database several hosts share (`postgres://…`): each trail
        /// must hold the latest checkpoint its host published there, and
        /// every host that published one must have its trail given.
        #[arg(long)]
        state: Option<String>,
    },
    /// Print records, oldest first, filtered.
    Show {
        #[command(flatten)]
        trail: TrailArgs,
        /// Only this department's records.
        #[arg(long)]
        department: Option<String>,
        /// Only this service's records.
        #[arg(long)]
        service: Option<String>,
        /// Only records of calls made for this subject.
        #[arg(long)]
        subject: Option<String>,
        /// Only this request's records.
        #[arg(long)]
        request: Option<String>,
        /// Records at or after this time (`2026-11-26` or `2026-11-26T09:00:00Z`).
        #[arg(long)]
        since: Option<String>,
        /// Records before this time.
        #[arg(long)]
        until: Option<String>,
        /// Only the latest N matching records (read from the end of the
        /// trail).
        #[arg(long)]
        limit: Option<usize>,
        /// Only records numbered below this (to page back with --limit).
        #[arg(long)]
        before: Option<u64>,
        /// One JSON record per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Copy the trail (records, checkpoints, public key) to a directory for
    /// a third party, who checks it with `zhongtai audit verify --dir OUT
    /// --key host.pub`.
    Export {
        #[command(flatten)]
        trail: TrailArgs,
        /// Where to write the copy.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Print the key of one request's argument and result digests, for an
    /// auditor of that one case (it reveals nothing of other requests).
    Disclose {
        #[command(flatten)]
        trail: TrailArgs,
        /// The request id, as its records hold it.
        #[arg(long)]
        request: String,
    },
    /// Print, as JSON, a proof from the trail's Merkle tree: that record
    /// `--seq` is in the log (with the record's line), or that the tree of
    /// `--from` records is a prefix of the latest (or of `--to`). With
    /// neither, the latest checkpoint (a C2SP signed note).
    Prove {
        #[command(flatten)]
        trail: TrailArgs,
        /// The record's sequence number (a receipt's `zhongtai-audit-records`).
        #[arg(long, conflicts_with_all = ["from", "to"])]
        seq: Option<u64>,
        /// The tree size to prove it in: a checkpoint's (default the latest).
        #[arg(long, requires = "seq")]
        size: Option<u64>,
        /// The size of the older tree, for a consistency proof.
        #[arg(long)]
        from: Option<u64>,
        /// The size of the newer tree (default the latest checkpoint's).
        #[arg(long, requires = "from")]
        to: Option<u64>,
    },
    /// Check a proof (from `zhongtai audit prove` or the host's
    /// `/audit/v1/proof/…`), or a checkpoint, offline against the host's
    /// public key. Exit status 1 when it does not verify.
    CheckProof {
        /// The proof or checkpoint file; `-` reads standard input.
        proof: PathBuf,
        /// The host's public key (its `audit/host.pub`, or base64), as
        /// obtained from its operator.
        #[arg(long)]
        key: String,
        /// A checkpoint held from before: a consistency proof must extend
        /// it.
        #[arg(long)]
        old: Option<PathBuf>,
        /// The record's line as obtained elsewhere (its department's copy,
        /// say): it must be the record the log holds.
        #[arg(long)]
        record: Option<PathBuf>,
        /// A witness that must have cosigned the checkpoint:
        /// `NAME=PUBLIC-KEY`. Repeatable.
        #[arg(long = "witness", value_name = "NAME=KEY")]
        witnesses: Vec<String>,
    },
    /// Compute the digest a record holds for a value, with a request key
    /// from `zhongtai audit disclose`.
    Digest {
        /// The disclosed request key (64 hex digits).
        #[arg(long)]
        key: String,
        /// The value (arguments or result) as JSON.
        value: String,
    },
}

/// Runs an `audit` command.
pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            trail,
            key,
            json,
            and,
            state,
        } => match state {
            Some(url) => {
                let mut dirs = vec![trail.dir];
                dirs.extend(and);
                verify_hosts(&dirs, &url)
            }
            None if and.is_empty() => verify(&trail.dir, key.as_deref(), json),
            None => anyhow::bail!(
                "--and checks several hosts' trails against the checkpoints in their shared database: give it with --state"
            ),
        },
        AuditCommand::Show {
            trail,
            department,
            service,
            subject,
            request,
            since,
            until,
            limit,
            before,
            json,
        } => {
            let time = |t: Option<String>, flag: &str| {
                t.map(|t| parse_time(&t))
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
            };
            let filter = Filter {
                department,
                service,
                subject,
                request,
                since: time(since, "since")?,
                until: time(until, "until")?,
                limit,
                kind: None,
            };
            show(&trail.dir, &filter, before, json)
        }
        AuditCommand::Disclose { trail, request } => {
            let secret = trail.dir.join(DIGEST_KEY_FILE);
            if !secret.is_file() {
                anyhow::bail!(
                    "{} holds no digest secret; disclose from the host's own trail directory, not an export",
                    trail.dir.display()
                );
            }
            let key = DigestKey::load_or_create(&secret)?;
            println!("{}", key.for_request(&request).to_hex());
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Digest { key, value } => {
            let key = RequestKey::from_hex(&key).map_err(|e| anyhow::anyhow!("--key: {e}"))?;
            let value: Json = serde_json::from_str(&value).context("the value is not JSON")?;
            println!("{}", key.digest(&value));
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prove {
            trail,
            seq,
            size,
            from,
            to,
        } => prove(&trail.dir, seq, size, from, to),
        AuditCommand::CheckProof {
            proof,
            key,
            old,
            record,
            witnesses,
        } => check_proof(&proof, &key, old.as_deref(), record.as_deref(), &witnesses),
        AuditCommand::Export { trail, out } => {
            let checked = zhongtai_audit::export(&trail.dir, &out)?;
            println!("exported {} to {}", trail.dir.display(), out.display());
            match checked {
                Ok(report) => {
                    print!("{report}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(problem) => {
                    println!("the exported trail does NOT verify: {problem}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn verify(dir: &Path, key: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let (key, from_trail) = match key {
        Some(key) if Path::new(key).is_file() => (VerifyKey::from_file(Path::new(key))?, false),
        Some(key) => (
            VerifyKey::from_text(key).map_err(|e| anyhow::anyhow!("--key: {e}"))?,
            false,
        ),
        None => (VerifyKey::from_file(&dir.join(PUBLIC_KEY_FILE))?, true),
    };
    let checked = zhongtai_audit::verify_dir(dir, &key)?;
    if json {
        let value = match &checked {
            Ok(report) => serde_json::json!({"verified": true, "report": report}),
            Err(problem) => {
                serde_json::json!({"verified": false, "problem": problem, "message": problem.to_string()})
            }
        };
        println!("{value}");
    } else {
        match &checked {
            Ok(report) => {
                print!("{report}");
                if from_trail {
                    println!(
                        "note: checked against {}; pass --key with the host's public key obtained from its operator to rule out a replaced key",
                        dir.join(PUBLIC_KEY_FILE).display()
                    );
                }
            }
            Err(problem) => println!("audit trail {} does NOT verify:\n{problem}", dir.display()),
        }
    }
    Ok(if checked.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Verifies each trail in `dirs` and checks it against the latest
/// checkpoint its host published in the database at `url`; names every
/// host whose trail is missing.
fn verify_hosts(dirs: &[PathBuf], url: &str) -> anyhow::Result<ExitCode> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .with_context(|| "connecting to the state database")?;
    let published = client.query(
        "SELECT DISTINCT ON (key) key, host, records, head, signature
         FROM zhongtai_audit_checkpoints ORDER BY key, records DESC",
        &[],
    )?;
    let mut problems = 0;
    let mut given = Vec::new();
    for dir in dirs {
        let key = VerifyKey::from_file(&dir.join(PUBLIC_KEY_FILE))?;
        let report = match zhongtai_audit::verify_dir(dir, &key)? {
            Ok(report) => report,
            Err(problem) => {
                println!("{}: does NOT verify: {problem}", dir.display());
                problems += 1;
                continue;
            }
        };
        let key = key.to_base64();
        given.push(key.clone());
        let Some(row) = published.iter().find(|row| row.get::<_, String>(0) == key) else {
            println!(
                "{}: verified ({} records), but its host published no checkpoint in the database",
                dir.display(),
                report.records
            );
            problems += 1;
            continue;
        };
        let (host, records, head, signature): (String, i64, String, String) =
            (row.get(1), row.get(2), row.get(3), row.get(4));
        // The published checkpoint is in some segment: look in each, one
        // at a time.
        let mut held = false;
        let mut last = 0;
        for segment in zhongtai_audit::segments(dir)? {
            let checkpoints_file =
                std::fs::read(segment.dir.join(zhongtai_audit::CHECKPOINTS_FILE))?;
            for checkpoint in String::from_utf8_lossy(&checkpoints_file)
                .lines()
                .filter_map(|line| serde_json::from_str::<zhongtai_audit::Checkpoint>(line).ok())
            {
                held |= checkpoint.records as i64 == records
                    && checkpoint.head == head
                    && checkpoint.signature == signature;
                last = checkpoint.records as i64;
            }
        }
        if held {
            println!(
                "{}: host {host}: verified ({} records); it holds the host's latest published checkpoint ({records} records)",
                dir.display(),
                report.records
            );
        } else if last < records {
            println!(
                "{}: host {host}: cut short — the host published a checkpoint of {records} records, the trail's last covers {last}",
                dir.display()
            );
            problems += 1;
        } else {
            println!(
                "{}: host {host}: its checkpoint of {records} records differs from the one the host published",
                dir.display()
            );
            problems += 1;
        }
    }
    for row in &published {
        let key: String = row.get(0);
        if !given.contains(&key) {
            let host: String = row.get(1);
            let records: i64 = row.get(2);
            println!(
                "host {host} (key {key}) published a checkpoint of {records} records, but its trail was not given"
            );
            problems += 1;
        }
    }
    Ok(if problems == 0 {
        println!("{} trails verified against the database", dirs.len());
        ExitCode::SUCCESS
    } else {
        println!("{problems} problem(s)");
        ExitCode::FAILURE
    })
}

fn describe(record: &Record) -> String {
    let e = &record.entry;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let what = match e.kind {
        Kind::Call => format!(
            "{}@{} {}.{}",
            or(&e.package),
            or(&e.version),
            or(&e.interface),
            or(&e.function)
        ),
        _ => format!("{:?} {}", e.kind, e.action.clone().unwrap_or_default()).to_lowercase(),
    };
    let outcome = match &e.case {
        Some(case) => format!("{} {case}", e.outcome),
        None => e.outcome.clone(),
    };
    let mut line = format!(
        "{:>6} {} {}/{} {} subject={} {} {}µs",
        record.seq,
        record.time,
        or(&e.department),
        or(&e.service),
        what,
        or(&e.subject),
        outcome,
        e.duration_us
    );
    if let Some(request) = &e.request {
        line.push_str(&format!(" request={request}"));
    }
    if let Some(detail) = &e.detail {
        line.push_str(&format!(" — {detail}"));
    }
    line
}

/// Prints the selected records, reading the trail a block at a time:
/// the latest `filter.limit` from the end, or every one from the start.
fn show(dir: &Path, filter: &Filter, before: Option<u64>, json: bool) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut print = |record: &zhongtai_audit::Record| -> std::io::Result<()> {
        if json {
            writeln!(out, "{}", serde_json::to_string(record)?)
        } else {
            writeln!(out, "{}", describe(record))
        }
    };
    if filter.limit.is_some() || before.is_some() {
        let page = zhongtai_audit::latest(dir, filter, before)?;
        for record in &page.records {
            print(record)?;
        }
        if let Some(next) = page.next_before.filter(|_| !json) {
            eprintln!("(older records: --before {next})");
        }
    } else {
        zhongtai_audit::each_record(dir, filter, |record| {
            print(&record).map_err(|e| zhongtai_audit::AuditError::Io {
                path: "stdout".into(),
                message: e.to_string(),
            })
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `zhongtai audit prove`.
fn prove(
    dir: &Path,
    seq: Option<u64>,
    size: Option<u64>,
    from: Option<u64>,
    to: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let prover = Prover::open(dir)?;
    let printed = match (seq, from) {
        (Some(seq), _) => serde_json::to_string_pretty(&prover.inclusion_proof(seq, size)?)?,
        (None, Some(from)) => serde_json::to_string_pretty(&prover.consistency_proof(from, to)?)?,
        (None, None) => prover
            .latest_checkpoint()
            .unwrap_or_default()
            .trim_end()
            .to_owned(),
    };
    println!("{printed}");
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `zhongtai audit check-proof`.
fn check_proof(
    path: &Path,
    key: &str,
    old: Option<&Path>,
    record: Option<&Path>,
    witnesses: &[String],
) -> anyhow::Result<ExitCode> {
    let key = crate::args::public_key(key).context("--key")?;
    let text = read_input(path)?;
    let record = record
        .map(|p| read_input(p).map(|r| r.trim_end_matches('\n').to_owned()))
        .transpose()?;
    let value: Option<Json> = serde_json::from_str(&text).ok();
    let checked = match value {
        Some(value) if value.get("seq").is_some() => {
            let mut proof: InclusionProof =
                serde_json::from_value(value).context("not an inclusion proof")?;
            if record.is_some() {
                proof.record = record;
            }
            proof.check(&key).map(|head| {
                let shown = if proof.record.is_some() {
                    "the record given is record"
                } else {
                    "the leaf is record"
                };
                (
                    format!(
                        "{shown} {} of the log {} at {} records",
                        proof.seq, head.origin, head.size
                    ),
                    proof.checkpoint,
                )
            })
        }
        Some(value) if value.get("from").is_some() => {
            let proof: ConsistencyProof =
                serde_json::from_value(value).context("not a consistency proof")?;
            let Some(old) = old else {
                anyhow::bail!(
                    "a consistency proof is checked against the checkpoint you held before: give it with --old"
                );
            };
            let old = read_input(old)?;
            proof.check(&old, &key).map(|head| {
                (
                    format!(
                        "the log {} at {} records extends the checkpoint of {} records you hold",
                        head.origin, head.size, proof.from
                    ),
                    proof.checkpoint,
                )
            })
        }
        _ => {
            // A checkpoint alone: check its signature.
            let origin = zhongtai_audit::note::body(&text)
                .ok()
                .and_then(|body| zhongtai_audit::note::TreeHead::parse(body).ok())
                .map(|head| head.origin)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} is neither a proof (JSON) nor a checkpoint",
                        path.display()
                    )
                })?;
            zhongtai_audit::open_checkpoint(&text, &origin, &key).map(|head| {
                (
                    format!("a checkpoint of the log {origin} at {} records", head.size),
                    text.clone(),
                )
            })
        }
    };
    let (said, checkpoint) = match checked {
        Ok(checked) => checked,
        Err(why) => {
            println!("does NOT verify: {why}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for given in witnesses {
        let (name, witness_key) = given
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--witness {given:?}: expected NAME=PUBLIC-KEY"))?;
        let witness_key =
            crate::args::public_key(witness_key).with_context(|| format!("--witness {name}"))?;
        if let Err(why) = zhongtai_audit::note::cosigned(&checkpoint, name, &witness_key) {
            println!("does NOT verify: the checkpoint is not cosigned by the witness: {why}");
            return Ok(ExitCode::FAILURE);
        }
    }
    let witnessed = if witnesses.is_empty() {
        String::new()
    } else {
        format!(
            ", cosigned by {}",
            witnesses
                .iter()
                .filter_map(|w| w.split_once('='))
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    println!("verified: {said}{witnessed}");
    Ok(ExitCode::SUCCESS)
}

/// Opens the trail in `<data_dir>/audit`, signing with `key_file` when
/// given (a key made by `zhongtai keygen`), else with the trail's own key.
pub fn open(
    data_dir: &Path,
    key_file: Option<&Path>,
    options: AuditOptions,
) -> anyhow::Result<AuditLog> {
    let key = match key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(
                HostKey::from_text(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    Ok(AuditLog::open(&data_dir.join("audit"), key, options)?)
}

/// Calls a component as `zhongtai call` and `zhongtai demo` do, recording
/// the call in `audit` before the result is shown. `component` comes with
/// its registry version when it was loaded from a registry.
pub fn call(
    runtime: &Runtime,
    audit: &AuditLog,
    (component, version): &(LoadedComponent, Option<semver::Version>),
    context: CallContext,
    interface: &str,
    function: &str,
    args: &Json,
) -> anyhow::Result<Json> {
    let target = zhongtai_api::audited::CallTarget {
        component,
        version: version.as_ref(),
        interface,
        function,
    };
    let (result, entry) =
        zhongtai_api::audited::call(runtime, target, context, args, Some(audit.digests()));
    audit
        .append(entry)
        .context("the call ran but its audit record could not be written")?;
    result
        .map(|returned| returned.json)
        .map_err(anyhow::Error::from)
}
