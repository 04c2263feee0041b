//! What the audit trail costs: one durable append (one fdatasync), the five
//! records of a business-license request in one write, appends from eight
//! threads sharing syncs (group commit), and verifying a trail.
//!
//! The trail lives in a temporary directory under `AUDIT_BENCH_DIR` (default
//! the system's temp directory): put it on the disk the host will use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use zhongtai_audit::{AuditLog, AuditOptions, Entry, Kind, Trail, VerifyKey, hash_json, verify};

fn entry(n: u64) -> Entry {
    let mut entry = Entry::new(Kind::Call);
    entry.department = Some("market-regulation".into());
    entry.service = Some("apply-business-license".into());
    entry.request = Some(format!("{n:032x}"));
    entry.subject = Some("91350100M000100Y43".into());
    entry.package = Some("zhongtai:license".into());
    entry.version = Some("1.0.0".into());
    entry.digest = Some(format!("sha256:{}", "ab".repeat(32)));
    entry.interface = Some("register".into());
    entry.function = Some("issue".into());
    entry.duration_us = 1450;
    entry.args = Some(hash_json(&serde_json::json!({ "n": n })));
    entry.result = Some(hash_json(&serde_json::json!({ "ok": n })));
    entry
}

fn dir() -> tempfile::TempDir {
    match std::env::var_os("AUDIT_BENCH_DIR") {
        Some(parent) => tempfile::tempdir_in(parent).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn append(c: &mut Criterion) {
    let dir = dir();
    let log = Arc::new(AuditLog::open(dir.path(), None, AuditOptions::default()).unwrap());
    let mut n = 0;
    c.bench_function("append 1 record (durable)", |b| {
        b.iter(|| {
            n += 1;
            log.append(entry(n)).unwrap()
        })
    });
    c.bench_function("append 5 records in one write (durable)", |b| {
        b.iter(|| {
            n += 5;
            log.append_all((n..n + 5).map(entry).collect()).unwrap()
        })
    });
    c.bench_function("append 1 record, 8 threads (per record)", |b| {
        b.iter_custom(|iterations| {
            let per_thread = iterations.div_ceil(8);
            let started = Instant::now();
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let log = log.clone();
                    std::thread::spawn(move || {
                        for i in 0..per_thread {
                            log.append(entry(i)).unwrap();
                        }
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            started
                .elapsed()
                .mul_f64(iterations as f64 / (per_thread * 8) as f64)
        })
    });
}

fn verify_trail(c: &mut Criterion) {
    let dir = dir();
    let log = AuditLog::open(dir.path(), None, AuditOptions::default()).unwrap();
    for chunk in 0..100 {
        log.append_all((chunk * 1000..(chunk + 1) * 1000).map(entry).collect())
            .unwrap();
    }
    drop(log);
    let key = VerifyKey::from_file(&dir.path().join("host.pub")).unwrap();
    let trail = Trail::read(dir.path()).unwrap();
    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("100k records", |b| b.iter(|| verify(&trail, &key).unwrap()));
    group.finish();
}

criterion_group!(benches, append, verify_trail);
criterion_main!(benches);
