//! The writer under concurrency and crashes, and the invariant the trail
//! exists for: no byte of a signed record can change unseen.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use zhongtai_audit::{AuditLog, AuditOptions, Entry, Kind, Trail, VerifyKey, verify};

fn quiet() -> AuditOptions {
    AuditOptions {
        checkpoint_interval: Duration::from_secs(3600),
        checkpoint_records: u64::MAX,
        ..AuditOptions::default()
    }
}

fn entry(n: u64) -> Entry {
    let mut entry = Entry::new(Kind::Call);
    entry.department = Some(format!("department-{}", n % 3));
    entry.function = Some("verify".into());
    entry.duration_us = n;
    entry
}

fn check(dir: &Path) -> Result<zhongtai_audit::Report, zhongtai_audit::Problem> {
    let key = VerifyKey::from_file(&dir.join("host.pub")).unwrap();
    verify(&Trail::read(dir).unwrap(), &key)
}

#[test]
fn concurrent_appends_form_one_chain_and_shutdown_signs_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path(), None, quiet()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..100)
                    .map(|i| log.append(entry(t * 1000 + i)).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..800).collect::<Vec<_>>());
    drop(Arc::into_inner(log).expect("last reference"));
    let report = check(dir.path()).unwrap();
    assert_eq!((report.records, report.signed), (800, 800));
}

#[test]
fn a_half_written_record_is_cut_and_the_cut_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), None, quiet()).unwrap();
    log.append(entry(1)).unwrap();
    drop(log);
    let path = dir.path().join("trail.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"seq":1,"prev":"ab"#);
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(check(dir.path()).unwrap().incomplete_bytes, 19);

    let log = AuditLog::open(dir.path(), None, quiet()).unwrap();
    log.append(entry(2)).unwrap();
    drop(log);
    let report = check(dir.path()).unwrap();
    assert_eq!((report.records, report.incomplete_bytes), (3, 0));
    let trail = Trail::read(dir.path()).unwrap();
    let recovery = &trail.select(&Default::default())[1];
    assert_eq!(recovery.entry.kind, Kind::Recovery);
    assert!(
        recovery.entry.detail.as_ref().unwrap().contains("19 bytes"),
        "{recovery:?}"
    );
}

#[test]
fn the_host_will_not_sign_records_changed_while_it_was_down() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), None, quiet()).unwrap();
    for n in 0..5 {
        log.append(entry(n)).unwrap();
    }
    log.checkpoint().unwrap();
    for n in 5..8 {
        log.append(entry(n)).unwrap();
    }
    std::mem::forget(log); // a crash: no closing checkpoint, lock released below
    let path = dir.path().join("trail.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(r#""duration_us":6"#, r#""duration_us":600"#),
    )
    .unwrap();
    // The forgotten log still holds the lock on its file in this process;
    // a new open must wait for no one, so copy the trail elsewhere.
    let copy = tempfile::tempdir().unwrap();
    for file in ["trail.jsonl", "checkpoints.jsonl", "host.key", "host.pub"] {
        std::fs::copy(dir.path().join(file), copy.path().join(file)).unwrap();
    }
    let refused = AuditLog::open(copy.path(), None, quiet()).err().unwrap();
    let message = refused.to_string();
    assert!(
        message.contains("does not verify") && message.contains("record 6 was changed"),
        "{message}"
    );

    // Cut below the last checkpoint: refused too.
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(
        copy.path().join("trail.jsonl"),
        lines[..3].join("\n") + "\n",
    )
    .unwrap();
    let message = AuditLog::open(copy.path(), None, quiet())
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("records were removed"), "{message}");
}

#[test]
fn a_trail_is_signed_by_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), None, quiet()).unwrap();
    log.append(entry(1)).unwrap();
    drop(log);
    let other = zhongtai_audit::HostKey::from_text(
        "zhongtai-ed25519-secret:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
    )
    .unwrap();
    let refused = AuditLog::open(dir.path(), Some(other), quiet())
        .err()
        .unwrap()
        .to_string();
    assert!(refused.contains("not by this host's key"), "{refused}");
    // The trail and its public key are untouched.
    assert!(check(dir.path()).is_ok());
}

#[test]
fn one_process_at_a_time_writes_a_trail() {
    let dir = tempfile::tempdir().unwrap();
    let _log = AuditLog::open(dir.path(), None, quiet()).unwrap();
    let second = AuditLog::open(dir.path(), None, quiet()).err().unwrap();
    assert!(
        second
            .to_string()
            .contains("open in another zhongtai process"),
        "{second}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever byte of a signed record is changed, to whatever, verify
    /// refuses the trail.
    #[test]
    fn no_byte_of_a_signed_record_changes_unseen(
        records in 1u64..12,
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), None, quiet()).unwrap();
        for n in 0..records {
            log.append(entry(n)).unwrap();
        }
        drop(log);
        prop_assert!(check(dir.path()).is_ok());
        let path = dir.path().join("trail.jsonl");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = position.index(bytes.len());
        prop_assume!(bytes[at] != replacement);
        bytes[at] = replacement;
        std::fs::write(&path, bytes).unwrap();
        prop_assert!(check(dir.path()).is_err());
    }
}

#[test]
fn removing_the_first_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), None, quiet()).unwrap();
    for n in 0..3 {
        log.append(entry(n)).unwrap();
    }
    std::mem::forget(log);
    let path = dir.path().join("trail.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let rest: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, rest).unwrap();
    let problem = check(dir.path()).unwrap_err();
    assert_eq!(
        problem.to_string(),
        "trail.jsonl:1: record 0 is missing: this line holds record 1 at the start of the trail"
    );
    assert_eq!((problem.record, problem.line), (Some(0), Some(1)));
}
