//! The audit trail as an auditor meets it: `zhongtai audit verify` over a
//! trail someone has tampered with names what was done, and where; `audit
//! show` filters; `audit export` hands a third party what they need.
//! Outputs are golden files (times and hashes masked).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use zhongtai_audit::{AuditLog, AuditOptions, Entry, HostKey, Kind, hash_json};

/// A fixed key, so that key names in the golden output are stable.
const HOST_KEY: &str = "zhongtai-ed25519-secret:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const OTHER_KEY: &str = "zhongtai-ed25519-secret:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn entry(i: u64) -> Entry {
    let mut entry = Entry::new(Kind::Call);
    let department = ["market-regulation", "taxation", "public-security"][i as usize % 3];
    entry.department = Some(department.to_owned());
    entry.service = Some(format!("service-{}", i % 2));
    entry.request = Some(format!("request-{}", i / 2));
    entry.subject = i.is_multiple_of(4).then(|| "91350100M000100Y43".to_owned());
    entry.package = Some("zhongtai:payment".to_owned());
    entry.version = Some("1.0.0".to_owned());
    entry.digest = Some(format!("sha256:{}", "ab".repeat(32)));
    entry.interface = Some("orders".to_owned());
    entry.function = Some("pay".to_owned());
    entry.args = Some(hash_json(&serde_json::json!({ "order": i })));
    entry.result = Some(hash_json(&serde_json::json!({ "ok": i })));
    entry.duration_us = 100 + i;
    if i % 5 == 3 {
        entry.outcome = "error".to_owned();
        entry.case = Some("channel-declined".to_owned());
    }
    entry
}

/// 24 records: checkpoints after 10 and after 20, then 4 not yet signed.
fn trail(dir: &Path) {
    let options = AuditOptions {
        checkpoint_interval: Duration::from_secs(3600),
        checkpoint_records: u64::MAX,
        ..AuditOptions::default()
    };
    let key = HostKey::from_text(HOST_KEY).unwrap();
    let log = AuditLog::open(dir, Some(key), options).unwrap();
    for i in 0..24 {
        log.append(entry(i)).unwrap();
        if i == 9 || i == 19 {
            log.checkpoint().unwrap().expect("a checkpoint");
        }
    }
    // Forget the log without its closing checkpoint, as a crash would.
    std::mem::forget(log);
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

/// Replaces RFC 3339 times and 12-digit hash prefixes, which differ per run.
fn mask(text: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 27)].iter().collect();
        let is_time = rest.len() == 27
            && rest.as_bytes()[4] == b'-'
            && rest.as_bytes()[10] == b'T'
            && rest.ends_with('Z')
            && rest.as_bytes()[0].is_ascii_digit();
        if is_time {
            out.push_str("<time>");
            i += 27;
            continue;
        }
        let hex = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            .count();
        let boundary = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if boundary
            && (hex == 12 || hex == 64)
            && chars
                .get(i + hex)
                .is_none_or(|c| !c.is_ascii_alphanumeric())
        {
            out.push_str("<hash>");
            i += hex;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn zhongtai(args: &[&str], dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    (
        output.status.success(),
        mask(&text.replace(&dir.display().to_string(), "<trail>")),
    )
}

/// A copy of the pristine trail, tampered with by `change`.
fn tampered(pristine: &Path, work: &Path, name: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["trail.jsonl", "checkpoints.jsonl", "host.pub"] {
        std::fs::copy(pristine.join(file), dir.join(file)).unwrap();
    }
    change(&dir);
    dir
}

fn edit_record(dir: &Path, index: usize, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("trail.jsonl");
    let mut records = lines(&path);
    let mut record: serde_json::Value = serde_json::from_str(&records[index]).unwrap();
    edit(&mut record);
    records[index] = serde_json::to_string(&record).unwrap();
    write_lines(&path, &records);
}

#[test]
fn verify_names_every_kind_of_tampering() {
    let work = tempfile::tempdir().unwrap();
    let pristine = work.path().join("pristine");
    trail(&pristine);
    let key = pristine.join("host.pub");
    let key = key.to_str().unwrap();

    let cases: Vec<(&str, PathBuf)> = vec![
        ("intact", tampered(&pristine, work.path(), "intact", |_| {})),
        (
            "a field of record 4 changed (outcome ok -> error)",
            tampered(&pristine, work.path(), "changed", |dir| {
                edit_record(dir, 4, |r| r["outcome"] = "error".into())
            }),
        ),
        (
            "the prev link of record 7 changed",
            tampered(&pristine, work.path(), "relinked", |dir| {
                edit_record(dir, 7, |r| r["prev"] = "0".repeat(64).into())
            }),
        ),
        (
            "record 6 deleted",
            tampered(&pristine, work.path(), "deleted", |dir| {
                let path = dir.join("trail.jsonl");
                let mut records = lines(&path);
                records.remove(6);
                write_lines(&path, &records);
            }),
        ),
        (
            "records 12 and 13 swapped",
            tampered(&pristine, work.path(), "swapped", |dir| {
                let path = dir.join("trail.jsonl");
                let mut records = lines(&path);
                records.swap(12, 13);
                write_lines(&path, &records);
            }),
        ),
        (
            "tail cut to 15 records, after the checkpoint covering 20",
            tampered(&pristine, work.path(), "truncated", |dir| {
                let path = dir.join("trail.jsonl");
                let records = lines(&path);
                write_lines(&path, &records[..15]);
            }),
        ),
        (
            "record 3 changed and every later link recomputed",
            tampered(&pristine, work.path(), "rewritten", |dir| {
                let path = dir.join("trail.jsonl");
                let mut records = lines(&path);
                let mut prev = String::new();
                for (i, line) in records.iter_mut().enumerate() {
                    let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
                    if i == 3 {
                        record["subject"] = "somebody-else".into();
                    }
                    if i > 0 {
                        record["prev"] = prev.clone().into();
                    }
                    *line = serde_json::to_string(&record).unwrap();
                    prev = zhongtai_audit::sha256_hex(line.as_bytes());
                }
                write_lines(&path, &records);
            }),
        ),
        (
            "checkpoint 1 altered to cover only 15 records",
            tampered(&pristine, work.path(), "forged", |dir| {
                let path = dir.join("checkpoints.jsonl");
                let mut checkpoints = lines(&path);
                let mut checkpoint: serde_json::Value =
                    serde_json::from_str(&checkpoints[1]).unwrap();
                checkpoint["records"] = 15.into();
                checkpoints[1] = serde_json::to_string(&checkpoint).unwrap();
                write_lines(&path, &checkpoints);
            }),
        ),
        (
            "checkpoint 1 replaced by one signed with another key",
            tampered(&pristine, work.path(), "foreign", |dir| {
                let path = dir.join("checkpoints.jsonl");
                let mut checkpoints = lines(&path);
                let mut checkpoint: zhongtai_audit::Checkpoint =
                    serde_json::from_str(&checkpoints[1]).unwrap();
                let other = HostKey::from_text(OTHER_KEY).unwrap();
                checkpoint.key = other.public().to_base64();
                checkpoint.signature = other.sign(&checkpoint.statement());
                checkpoints[1] = serde_json::to_string(&checkpoint).unwrap();
                write_lines(&path, &checkpoints);
            }),
        ),
        (
            "only unsigned records (after the last checkpoint) cut: not detectable",
            tampered(&pristine, work.path(), "unsigned-cut", |dir| {
                let path = dir.join("trail.jsonl");
                let records = lines(&path);
                write_lines(&path, &records[..22]);
            }),
        ),
    ];
    let mut report = String::new();
    for (what, dir) in &cases {
        let (ok, output) = zhongtai(&["audit", "verify", "--key", key], dir);
        assert_eq!(
            ok,
            what.starts_with("intact") || what.contains("not detectable"),
            "{what}: {output}"
        );
        report.push_str(&format!("## {what}\n{output}\n"));
    }
    support::assert_golden("audit-tamper.txt", &report);
}

#[test]
fn show_filters_and_export_verifies_offline() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("audit");
    trail(&dir);
    let (ok, all) = zhongtai(&["audit", "show"], &dir);
    assert!(ok, "{all}");
    assert_eq!(all.lines().count(), 24);
    let (_, filtered) = zhongtai(
        &[
            "audit",
            "show",
            "--department",
            "market-regulation",
            "--subject",
            "91350100M000100Y43",
        ],
        &dir,
    );
    // Records 0, 12 (i % 3 == 0 and i % 4 == 0).
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    assert!(filtered.lines().all(|l| l.contains("market-regulation/")));
    // The numbers of the records `show … --json` prints.
    let shown = |args: &[&str]| -> Vec<u64> {
        let (_, printed) = zhongtai(args, &dir);
        printed
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(
        shown(&["audit", "show", "--limit", "3", "--json"]),
        [21, 22, 23]
    );
    // Paging back from the end.
    assert_eq!(
        shown(&["audit", "show", "--limit", "3", "--before", "21", "--json"]),
        [18, 19, 20]
    );
    let (_, table) = zhongtai(&["audit", "show", "--limit", "2"], &dir);
    assert!(table.ends_with("(older records: --before 22)\n"), "{table}");
    let (_, none) = zhongtai(&["audit", "show", "--since", "2999-01-01"], &dir);
    assert_eq!(none, "");
    let (ok, bad) = zhongtai(&["audit", "show", "--since", "yesterday"], &dir);
    assert!(
        !ok && bad.contains("--since") && bad.contains("not a time"),
        "{bad}"
    );

    // The third party gets the export and, separately, the host's key.
    let out = work.path().join("export");
    let (ok, exported) = zhongtai(&["audit", "export", "--out", out.to_str().unwrap()], &dir);
    assert!(ok, "{exported}");
    let key = dir.join("host.pub");
    let (ok, verified) = zhongtai(&["audit", "verify", "--key", key.to_str().unwrap()], &out);
    assert!(
        ok && verified.contains("24 records, 2 checkpoints"),
        "{verified}"
    );
    let other = HostKey::from_text(OTHER_KEY).unwrap().public().to_text();
    let (ok, refused) = zhongtai(&["audit", "verify", "--key", &other], &out);
    assert!(!ok && refused.contains("not by the host key"), "{refused}");
}
