//! What the Merkle tree over the trail costs: appending one record's leaf
//! to a tree of a million (hashing the leaf and merging the perfect
//! subtrees it completes), and the tree head of that tree.

use criterion::{Criterion, criterion_group, criterion_main};
use zhongtai_audit::merkle::{Frontier, leaf_hash};

/// A record line about as long as the trail writes (~600 bytes).
fn line(n: u64) -> Vec<u8> {
    format!(
        "{{\"seq\":{n},\"prev\":\"{}\",\"kind\":\"call\",\"detail\":\"{}\"}}",
        "ab".repeat(32),
        "x".repeat(480)
    )
    .into_bytes()
}

fn merkle(c: &mut Criterion) {
    let mut frontier = Frontier::new();
    for n in 0..1_000_000u64 {
        frontier.push(leaf_hash(&n.to_le_bytes()));
    }
    let mut n = 1_000_000u64;
    c.bench_function("append one record's leaf to a tree of 1M", |b| {
        b.iter(|| {
            frontier.push(leaf_hash(&line(n)));
            n += 1;
        })
    });
    c.bench_function("tree head of a tree of 1M+", |b| b.iter(|| frontier.root()));
}

criterion_group!(benches, merkle);
criterion_main!(benches);
