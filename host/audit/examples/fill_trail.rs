//! Writes a trail of N realistic call records (in batches of 1,000, signed
//! every 10,000), for measuring `zhongtai audit verify`, `audit show` and
//! the admin audit routes on a long trail:
//! `cargo run --release -p zhongtai-audit --example fill_trail -- DIR N`.
//! Appends to a trail already in DIR.

use std::time::Instant;

use zhongtai_audit::{AuditLog, AuditOptions, Entry, Kind, hash_json};

fn entry(n: u64) -> Entry {
    let mut entry = Entry::new(Kind::Call);
    entry.department =
        Some(["market-regulation", "public-security", "taxation"][(n % 3) as usize].into());
    entry.service = Some("apply-business-license".into());
    entry.request = Some(format!("{n:032x}"));
    entry.subject = Some("91350100M000100Y43".into());
    entry.package = Some("zhongtai:license".into());
    entry.version = Some("1.1.0".into());
    entry.digest = Some(format!("sha256:{}", "ab".repeat(32)));
    entry.interface = Some("register".into());
    entry.function = Some("issue-for-application".into());
    entry.duration_us = 1450;
    entry.args = Some(hash_json(&serde_json::json!({ "n": n })));
    entry.result = Some(hash_json(&serde_json::json!({ "ok": n })));
    entry
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(count)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: fill_trail DIR RECORDS");
        std::process::exit(2);
    };
    let log = AuditLog::open(std::path::Path::new(dir), None, AuditOptions::default())
        .expect("opening the trail");
    let started = Instant::now();
    let mut written = 0;
    while written < count {
        let batch = (count - written).min(1_000);
        log.append_all((written..written + batch).map(entry).collect())
            .expect("appending");
        written += batch;
        if written % 1_000_000 == 0 {
            eprintln!(
                "{written} records, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    drop(log);
    eprintln!(
        "{count} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
