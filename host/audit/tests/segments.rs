//! A long trail in segments: sealed as it grows, verified, read, paged and
//! exported across them, continued after a restart, and checked when a
//! segment is changed, removed or archived.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use zhongtai_audit::{
    AuditLog, AuditOptions, Entry, Filter, Kind, Problem, Report, VerifyKey, each_record, export,
    latest, segments, verify_dir,
};

/// Ten records a segment, a checkpoint every five.
fn small_segments() -> AuditOptions {
    AuditOptions {
        checkpoint_interval: Duration::from_secs(3600),
        checkpoint_records: 5,
        segment_records: 10,
        ..AuditOptions::default()
    }
}

fn entry(n: u64) -> Entry {
    let mut entry = Entry::new(Kind::Call);
    entry.department = Some(format!("department-{}", n % 3));
    entry.detail = Some(format!("call {n}"));
    entry
}

/// A trail of `records` records in segments of ten.
fn trail(records: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), None, small_segments()).unwrap();
    for n in 0..records {
        log.append(entry(n)).unwrap();
    }
    drop(log);
    dir
}

fn check(dir: &Path) -> Result<Report, Problem> {
    let key = VerifyKey::from_file(&dir.join("host.pub")).unwrap();
    verify_dir(dir, &key).unwrap()
}

fn firsts(dir: &Path) -> Vec<(u64, bool)> {
    segments(dir)
        .unwrap()
        .iter()
        .map(|s| (s.first, s.sealed))
        .collect()
}

fn all_seqs(dir: &Path) -> Vec<u64> {
    let mut seqs = Vec::new();
    each_record(dir, &Filter::default(), |record| {
        seqs.push(record.seq);
        Ok(())
    })
    .unwrap();
    seqs
}

#[test]
fn a_growing_trail_is_sealed_into_segments_that_verify_as_one() {
    let dir = trail(35);
    let d = dir.path();
    assert_eq!(
        firsts(d),
        [(0, true), (10, true), (20, true), (30, false)],
        "sealed every ten records"
    );
    assert!(
        d.join("segments/00000000000000000010/trail.jsonl")
            .is_file()
    );
    let report = check(d).unwrap();
    assert_eq!(report.records, 35);
    assert_eq!(report.segments, 4);
    assert_eq!(report.first_record, 0);
    assert_eq!(report.signed, 35, "shutdown signed the last records");
    assert!(report.to_string().contains("in 4 segments"), "{report}");

    // Read forward, and back a page at a time, across the segments.
    assert_eq!(all_seqs(d), (0..35).collect::<Vec<_>>());
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let filter = Filter {
            limit: Some(4),
            ..Filter::default()
        };
        let page = latest(d, &filter, before).unwrap();
        paged.splice(0..0, page.records.iter().map(|r| r.seq));
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, (0..35).collect::<Vec<_>>());

    // A restart goes on in the open segment, and seals it in its turn.
    let log = AuditLog::open(d, None, small_segments()).unwrap();
    assert_eq!(log.append(entry(35)).unwrap(), 35);
    for n in 36..45 {
        log.append(entry(n)).unwrap();
    }
    drop(log);
    assert_eq!(firsts(d).last(), Some(&(40, false)));
    assert_eq!(check(d).unwrap().records, 45);
}

#[test]
fn concurrent_appends_across_seals_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path(), None, small_segments()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0..100 {
                    log.append(entry(t * 100 + n)).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(log);
    let report = check(dir.path()).unwrap();
    assert_eq!(report.records, 400);
    assert!(report.segments > 5, "{report}");
    assert_eq!(all_seqs(dir.path()), (0..400).collect::<Vec<_>>());
}

#[test]
fn a_change_in_a_sealed_segment_is_named_with_its_file() {
    let dir = trail(35);
    let path = dir.path().join("segments/00000000000000000010/trail.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("call 13", "call 99")).unwrap();
    let problem = check(dir.path()).unwrap_err();
    assert_eq!(problem.file, "segments/00000000000000000010/trail.jsonl");
    assert_eq!(problem.record, Some(13));
    assert_eq!(
        problem.line,
        Some(4),
        "lines count from the segment's start"
    );
    assert!(
        problem
            .to_string()
            .starts_with("segments/00000000000000000010/trail.jsonl:4: "),
        "{problem}"
    );
}

#[test]
fn a_segment_removed_from_the_middle_is_found() {
    let dir = trail(35);
    std::fs::remove_dir_all(dir.path().join("segments/00000000000000000010")).unwrap();
    let problem = check(dir.path()).unwrap_err();
    assert_eq!(
        problem.file,
        "segments/00000000000000000020/checkpoints.jsonl"
    );
    assert!(
        problem.message.contains("opens after record 19")
            && problem.message.contains("ends after record 9"),
        "{problem}"
    );
}

#[test]
fn a_record_cut_from_a_sealed_segment_is_found() {
    let dir = trail(25);
    let sealed = dir.path().join("segments/00000000000000000000/trail.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&sealed)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // Dropping the last record of a sealed segment: its last checkpoint
    // no longer holds.
    std::fs::write(&sealed, lines[..9].join("\n") + "\n").unwrap();
    let problem = check(dir.path()).unwrap_err();
    assert_eq!(
        problem.file,
        "segments/00000000000000000000/checkpoints.jsonl"
    );
    assert!(
        problem.message.contains("removed from its end"),
        "{problem}"
    );
}

#[test]
fn archived_segments_leave_a_trail_that_still_verifies_and_goes_on() {
    let dir = trail(35);
    let archive = tempfile::tempdir().unwrap();
    for first in ["00000000000000000000", "00000000000000000010"] {
        std::fs::rename(
            dir.path().join("segments").join(first),
            archive.path().join(first),
        )
        .unwrap();
    }
    let report = check(dir.path()).unwrap();
    assert_eq!((report.first_record, report.records), (20, 35));
    assert!(
        report.to_string().contains("records 0 to 19 are not here"),
        "{report}"
    );
    assert_eq!(all_seqs(dir.path()), (20..35).collect::<Vec<_>>());
    let log = AuditLog::open(dir.path(), None, small_segments()).unwrap();
    assert_eq!(log.append(entry(35)).unwrap(), 35, "numbering goes on");
    drop(log);
    assert_eq!(check(dir.path()).unwrap().records, 36);
}

#[test]
fn an_export_holds_every_segment_and_verifies() {
    let dir = trail(35);
    let out = tempfile::tempdir().unwrap();
    let report = export(dir.path(), out.path()).unwrap().unwrap();
    assert_eq!((report.records, report.segments), (35, 4));
    assert!(
        out.path()
            .join("segments/00000000000000000020/checkpoints.jsonl")
            .is_file()
    );
}

#[test]
fn a_trail_whose_open_segment_was_lost_opens_after_its_last_sealed_record() {
    let dir = trail(30);
    assert_eq!(firsts(dir.path()).last(), Some(&(30, false)));
    std::fs::remove_file(dir.path().join("trail.jsonl")).unwrap();
    std::fs::remove_file(dir.path().join("checkpoints.jsonl")).unwrap();
    let log = AuditLog::open(dir.path(), None, small_segments()).unwrap();
    assert_eq!(log.append(entry(30)).unwrap(), 30);
    drop(log);
    assert_eq!(check(dir.path()).unwrap().records, 31);
}
