//! What the Merkle tree over the trail costs: appending one record's leaf
//! as the log does (hashing the leaf, merging the perfect subtrees it
//! completes, collecting the hashes the tree file keeps), the tree head,
//! and inclusion and consistency proofs read from a tree file of ten
//! million records, with their sizes.
//!
//! The tree file is made once in the system's temporary directory (about
//! 640 MB, some tens of seconds) and removed afterwards; set
//! `ZHONGTAI_BENCH_RECORDS` for another size.

use std::fs::File;
use std::io::{BufWriter, Write};

use criterion::{Criterion, criterion_group, criterion_main};
use zhongtai_audit::merkle::{
    Frontier, Hash, Subtrees, leaf_hash, stored_consistency_proof, stored_inclusion_proof,
    stored_position, stored_root,
};

/// A record line about as long as the trail writes (~600 bytes).
fn line(n: u64) -> Vec<u8> {
    format!(
        "{{\"seq\":{n},\"prev\":\"{}\",\"kind\":\"call\",\"detail\":\"{}\"}}",
        "ab".repeat(32),
        "x".repeat(480)
    )
    .into_bytes()
}

/// A tree file read as the host reads it: one positioned read per hash.
struct TreeFile(File);

impl Subtrees for TreeFile {
    type Error = std::io::Error;
    fn subtree(&self, level: u32, index: u64) -> std::io::Result<Hash> {
        let mut hash = [0u8; 32];
        std::os::unix::fs::FileExt::read_exact_at(
            &self.0,
            &mut hash,
            stored_position(level, index) * 32,
        )?;
        Ok(hash)
    }
}

fn merkle(c: &mut Criterion) {
    let records: u64 = std::env::var("ZHONGTAI_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.hashes");
    let mut frontier = Frontier::new();
    {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&path).unwrap());
        let mut stored = Vec::new();
        for n in 0..records {
            stored.clear();
            frontier.push_stored(leaf_hash(&line(n)), &mut stored);
            for hash in &stored {
                out.write_all(hash).unwrap();
            }
        }
        out.flush().unwrap();
    }
    let tree = TreeFile(File::open(&path).unwrap());
    let millions = records as f64 / 1e6;

    let mut growing = frontier.clone();
    let mut n = records;
    let mut stored = Vec::new();
    c.bench_function(
        &format!("append one record's leaf to a tree of {millions}M"),
        |b| {
            b.iter(|| {
                stored.clear();
                growing.push_stored(leaf_hash(&line(n)), &mut stored);
                n += 1;
            })
        },
    );
    c.bench_function(&format!("tree head of a tree of {millions}M"), |b| {
        b.iter(|| frontier.root())
    });
    c.bench_function(
        &format!("tree head of {millions}M read from the tree file"),
        |b| b.iter(|| stored_root(&tree, records).unwrap()),
    );
    let mut seq = 0u64;
    c.bench_function(
        &format!("inclusion proof in a tree of {millions}M, from the file"),
        |b| {
            b.iter(|| {
                seq = (seq + 7_919_993) % records;
                stored_inclusion_proof(&tree, seq, records).unwrap()
            })
        },
    );
    let mut old = 1u64;
    c.bench_function(
        &format!("consistency proof to a tree of {millions}M, from the file"),
        |b| {
            b.iter(|| {
                old = 1 + (old + 7_919_993) % (records - 1);
                stored_consistency_proof(&tree, old, records).unwrap()
            })
        },
    );
    // Sizes: the longest proofs over a spread of indices.
    let inclusion = (0..1000)
        .map(|i| {
            stored_inclusion_proof(&tree, i * (records / 1000), records)
                .unwrap()
                .unwrap()
                .len()
        })
        .max()
        .unwrap();
    let consistency = (1..1000)
        .map(|i| {
            stored_consistency_proof(&tree, i * (records / 1000) + 1, records)
                .unwrap()
                .unwrap()
                .len()
        })
        .max()
        .unwrap();
    println!(
        "proof sizes at {records} records: inclusion at most {inclusion} hashes ({} bytes), consistency at most {consistency} hashes ({} bytes); tree file {} MB",
        inclusion * 32,
        consistency * 32,
        std::fs::metadata(&path).unwrap().len() / 1_000_000
    );
}

criterion_group!(benches, merkle);
criterion_main!(benches);
