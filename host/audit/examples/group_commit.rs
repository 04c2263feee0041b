//! Appends from N threads at once and prints records per second: how well
//! concurrent requests share one fdatasync. `cargo run --release -p
//! zhongtai-audit --example group_commit -- [threads] [records per thread] [dir]`

use std::sync::Arc;
use std::time::Instant;

use zhongtai_audit::{AuditLog, AuditOptions, Entry, Kind};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let each: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let dir = match args.get(3) {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("a temporary directory");
    let log = Arc::new(AuditLog::open(dir.path(), None, AuditOptions::default()).expect("open"));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0..each {
                    let mut entry = Entry::new(Kind::Call);
                    entry.duration_us = n;
                    log.append(entry).expect("append");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let elapsed = started.elapsed();
    drop(Arc::into_inner(log));
    let total = threads * each;
    println!(
        "{threads} threads, {total} records in {:.2} s: {:.0} records/s, {:.1} µs per record",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / total as f64
    );
}
