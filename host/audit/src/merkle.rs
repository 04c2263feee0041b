//! Merkle trees as RFC 6962 (Certificate Transparency) and RFC 9162 define
//! them: a leaf is hashed as `SHA-256(0x00 || data)`, an inner node as
//! `SHA-256(0x01 || left || right)`, and a tree of `n` leaves splits at the
//! largest power of two below `n`. On top of them: the tree head of any
//! prefix of the leaves, an inclusion proof (a record is in the log at its
//! index) and a consistency proof (a tree of `m` leaves is a prefix of one
//! of `n`), and the verifiers of both, which need only hashes — neither
//! the other records nor trust in whoever serves them.
//!
//! The functions over a slice of leaf hashes are the RFC's definitions
//! as written; those named `stored_*` compute the same from a
//! [`Subtrees`] store — the heads of the tree's perfect subtrees, kept
//! by a log in a file as it appends — reading `O(log² n)` hashes, so a
//! proof in a log of ten million records needs neither the records nor
//! their hashes in memory. The trail's records are the leaves (each
//! record's line, as written).

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two smaller than `n` (`n` > 1).
fn split(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The tree head (root hash) of `leaves` (leaf hashes): MTH of RFC 6962;
/// the empty tree's is `SHA-256("")`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// A tree kept as it grows: the heads of its perfect subtrees, largest
/// first (one per set bit of its size), so that appending a leaf costs at
/// most `log2(size)` node hashes and the tree head as many more, whatever
/// the size — what a log appending records needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, head) of each perfect subtree, left to right.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many leaves the tree has.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the leaf with hash `leaf`.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_| {});
    }

    /// Appends `leaf`, handing `completed` the head of every perfect
    /// subtree it completes, lowest first.
    fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(Hash)) {
        self.size += 1;
        let mut peak = (0, leaf);
        while let Some(&(height, left)) = self.peaks.last() {
            if height != peak.0 {
                break;
            }
            self.peaks.pop();
            peak = (height + 1, node_hash(&left, &peak.1));
            completed(peak.1);
        }
        self.peaks.push(peak);
    }

    /// The tree head, as [`root`] computes it over all the leaves.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(&(_, mut head)) = peaks.next() else {
            return Sha256::digest([]).into();
        };
        for (_, left) in peaks {
            head = node_hash(left, &head);
        }
        head
    }
}

impl Frontier {
    /// Appends the leaf with hash `leaf`, adding to `stored` the hashes a
    /// [`Subtrees`] store keeps for it, in store order: the leaf, then the
    /// head of every perfect subtree it completes, lowest first.
    pub fn push_stored(&mut self, leaf: Hash, stored: &mut Vec<Hash>) {
        stored.push(leaf);
        self.push_with(leaf, |head| stored.push(head));
    }

    /// The tree of the first `size` leaves of `store`, read from its
    /// perfect subtrees (one per set bit of `size`).
    pub fn from_subtrees<S: Subtrees>(store: &S, size: u64) -> Result<Self, S::Error> {
        let mut peaks = Vec::new();
        let mut start = 0;
        for height in (0..u64::BITS).rev() {
            if size & (1 << height) != 0 {
                peaks.push((height, store.subtree(height, start >> height)?));
                start += 1 << height;
            }
        }
        Ok(Self { size, peaks })
    }
}

/// Where the heads of a tree's perfect subtrees are kept — a file, for a
/// log too long to hold in memory. Node `index` at `level` is the head of
/// leaves `index << level .. (index + 1) << level`; level 0 holds the leaf
/// hashes. Heads of other ranges, and proofs, are made from these.
///
/// The store's order is the order a log appends them ([`stored_position`]):
/// each leaf, then the heads it completes, so that a store only ever grows
/// at its end.
pub trait Subtrees {
    /// Why a head could not be read.
    type Error;
    /// The head of the perfect subtree `index` at `level`.
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// Where the head of perfect subtree `index` at `level` is in a store:
/// after the hashes of leaf `m = ((index + 1) << level) - 1` (which
/// completes it) and the `level - 1` heads below it that leaf completes.
/// A tree of `m` leaves stores `2m - popcount(m)` hashes, so leaf `m`'s
/// hash is at that position.
pub fn stored_position(level: u32, index: u64) -> u64 {
    let m = ((index + 1) << level) - 1;
    stored_count(m) + u64::from(level)
}

/// How many hashes a store holds for a tree of `size` leaves.
pub fn stored_count(size: u64) -> u64 {
    2 * size - u64::from(size.count_ones())
}

/// The largest tree whose hashes fit in the first `count` of a store (a
/// store whose last write was cut short holds a few more).
pub fn stored_size(count: u64) -> u64 {
    // stored_count(n) is at least 2n - 64, so n is at most count / 2 + 32.
    let mut size = count / 2 + 32;
    while size > 0 && stored_count(size) > count {
        size -= 1;
    }
    size
}

/// The head of leaves `start .. start + n` (`n` > 0) of `store`. Every
/// range the RFC's recursion asks for starts at a multiple of its largest
/// perfect part, so it is made of stored heads.
fn range_head<S: Subtrees>(store: &S, start: u64, n: u64) -> Result<Hash, S::Error> {
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return store.subtree(level, start >> level);
    }
    let k = split64(n);
    Ok(node_hash(
        &range_head(store, start, k)?,
        &range_head(store, start + k, n - k)?,
    ))
}

fn split64(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The head of the tree of the first `size` leaves of `store`.
pub fn stored_root<S: Subtrees>(store: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(Sha256::digest([]).into());
    }
    range_head(store, 0, size)
}

/// [`inclusion_proof`] of leaf `index` in the tree of the first `size`
/// leaves of `store`; `None` when `index` is outside that tree.
pub fn stored_inclusion_proof<S: Subtrees>(
    store: &S,
    index: u64,
    size: u64,
) -> Result<Option<Vec<Hash>>, S::Error> {
    if index >= size {
        return Ok(None);
    }
    let mut proof = Vec::new();
    // PATH(m, D[start, start + n)) from the leaf up: walk down, keeping
    // the sibling ranges, then add their heads bottom first.
    let (mut start, mut n, mut m) = (0, size, index);
    let mut siblings = Vec::new();
    while n > 1 {
        let k = split64(n);
        if m < k {
            siblings.push((start + k, n - k));
            n = k;
        } else {
            siblings.push((start, k));
            start += k;
            m -= k;
            n -= k;
        }
    }
    for &(start, n) in siblings.iter().rev() {
        proof.push(range_head(store, start, n)?);
    }
    Ok(Some(proof))
}

/// [`consistency_proof`] from the first `old_size` leaves of `store` to
/// the first `size`; `None` when `old_size` is 0 or larger than `size`.
pub fn stored_consistency_proof<S: Subtrees>(
    store: &S,
    old_size: u64,
    size: u64,
) -> Result<Option<Vec<Hash>>, S::Error> {
    if old_size == 0 || old_size > size {
        return Ok(None);
    }
    // SUBPROOF(m, D[start, start + n), complete), walked down as above.
    let (mut start, mut n, mut m, mut complete) = (0, size, old_size, true);
    let mut parts = Vec::new();
    loop {
        if m == n {
            if !complete {
                parts.push((start, n));
            }
            break;
        }
        let k = split64(n);
        if m <= k {
            parts.push((start + k, n - k));
            n = k;
        } else {
            parts.push((start, k));
            start += k;
            m -= k;
            n -= k;
            complete = false;
        }
    }
    let mut proof = Vec::with_capacity(parts.len());
    for &(start, n) in parts.iter().rev() {
        proof.push(range_head(store, start, n)?);
    }
    Ok(Some(proof))
}

/// The inclusion proof of leaf `index` in the tree of `leaves` (PATH of
/// RFC 6962), leaf to root; `None` when `index` is outside the tree.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    (index < leaves.len()).then(|| path(index, leaves))
}

fn path(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    let mut proof = if index < k {
        let mut proof = path(index, &leaves[..k]);
        proof.push(root(&leaves[k..]));
        proof
    } else {
        let mut proof = path(index - k, &leaves[k..]);
        proof.push(root(&leaves[..k]));
        proof
    };
    proof.shrink_to_fit();
    proof
}

/// The consistency proof that the tree of the first `old_size` leaves is
/// a prefix of the tree of all `leaves` (PROOF of RFC 6962); `None` when
/// `old_size` is 0 or larger than the tree (nothing to prove).
pub fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    (old_size > 0 && old_size <= leaves.len()).then(|| subproof(old_size, leaves, true))
}

fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete {
            Vec::new()
        } else {
            vec![root(leaves)]
        };
    }
    let k = split(n);
    if m <= k {
        let mut proof = subproof(m, &leaves[..k], complete);
        proof.push(root(&leaves[k..]));
        proof
    } else {
        let mut proof = subproof(m - k, &leaves[k..], false);
        proof.push(root(&leaves[..k]));
        proof
    }
}

/// Whether `proof` shows the leaf with hash `leaf` at `index` in a tree of
/// `size` leaves whose head is `root` (RFC 9162, 2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// Whether `proof` shows that the tree of `old_size` leaves with head
/// `old_root` is a prefix of the tree of `new_size` leaves with head
/// `new_root` (RFC 9162, 2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size == 0 || old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    // When the old tree is a complete subtree, its head starts the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    f_r == *old_root && s_r == *new_root && s_n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The leaves of the RFC 6962 reference tests (certificate-transparency).
    fn reference_leaves() -> Vec<Hash> {
        let data: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        data.iter().map(|d| leaf_hash(d)).collect()
    }

    #[test]
    fn heads_match_the_reference_values() {
        let leaves = reference_leaves();
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(root(&leaves[..1])),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            hex::encode(root(&leaves)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
    }

    /// The head of `leaves` computed from leaf `index` and its proof, by
    /// the recursion of RFC 6962 itself: an independent check of the
    /// verifier.
    fn head_from_path(index: usize, size: usize, leaf: Hash, proof: &[Hash]) -> Option<Hash> {
        if size == 1 {
            return proof.is_empty().then_some(leaf);
        }
        let (last, rest) = proof.split_last()?;
        let k = split(size);
        if index < k {
            Some(node_hash(&head_from_path(index, k, leaf, rest)?, last))
        } else {
            Some(node_hash(
                last,
                &head_from_path(index - k, size - k, leaf, rest)?,
            ))
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("record {i}").as_bytes()))
            .collect()
    }

    /// A store kept in memory, as a log writes it.
    struct Stored(Vec<Hash>);

    impl Subtrees for Stored {
        type Error = ();
        fn subtree(&self, level: u32, index: u64) -> Result<Hash, ()> {
            self.0
                .get(stored_position(level, index) as usize)
                .copied()
                .ok_or(())
        }
    }

    fn stored(leaves: &[Hash]) -> Stored {
        let (mut frontier, mut hashes) = (Frontier::new(), Vec::new());
        for leaf in leaves {
            frontier.push_stored(*leaf, &mut hashes);
        }
        assert_eq!(hashes.len() as u64, stored_count(leaves.len() as u64));
        Stored(hashes)
    }

    #[test]
    fn the_store_order_is_the_order_of_appending() {
        // L0 L1 N(0..2) L2 L3 N(2..4) N(0..4) L4
        let positions: Vec<u64> = [
            (0, 0),
            (0, 1),
            (1, 0),
            (0, 2),
            (0, 3),
            (1, 1),
            (2, 0),
            (0, 4),
        ]
        .iter()
        .map(|&(level, index)| stored_position(level, index))
        .collect();
        assert_eq!(positions, (0..8).collect::<Vec<u64>>());
        for count in 0..2000 {
            let size = stored_size(count);
            assert!(stored_count(size) <= count && stored_count(size + 1) > count);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_frontier_has_the_head_of_all_its_leaves_at_every_size(size in 0usize..300) {
            let leaves = leaves(size);
            let mut frontier = Frontier::new();
            prop_assert_eq!(frontier.root(), root(&[]));
            for (n, leaf) in leaves.iter().enumerate() {
                frontier.push(*leaf);
                prop_assert_eq!(frontier.size(), n as u64 + 1);
                prop_assert_eq!(frontier.root(), root(&leaves[..=n]));
                prop_assert!(frontier.peaks.len() == (n as u64 + 1).count_ones() as usize);
            }
        }

        #[test]
        fn every_leaf_is_proved_included_and_nothing_else(size in 1usize..300, pick in 0usize..300) {
            let leaves = leaves(size);
            let head = root(&leaves);
            let index = pick % size;
            let proof = inclusion_proof(index, &leaves).unwrap();
            prop_assert!(verify_inclusion(index as u64, size as u64, &leaves[index], &proof, &head));
            prop_assert_eq!(head_from_path(index, size, leaves[index], &proof), Some(head));
            // Another leaf, another index, a changed hash. (The size is
            // bound to the head by the signed checkpoint, not by the proof:
            // a left-most leaf's path is the same in a larger tree.)
            let other = leaf_hash(b"not in the log");
            prop_assert!(!verify_inclusion(index as u64, size as u64, &other, &proof, &head));
            if size > 1 {
                let wrong = (index + 1) % size;
                prop_assert!(!verify_inclusion(wrong as u64, size as u64, &leaves[index], &proof, &head));
                let mut tampered = proof.clone();
                tampered[0][0] ^= 1;
                prop_assert!(!verify_inclusion(index as u64, size as u64, &leaves[index], &tampered, &head));
            }
        }

        #[test]
        fn a_prefix_is_proved_consistent_and_a_rewritten_one_is_not(new_size in 1usize..300, pick in 1usize..300) {
            let leaves = leaves(new_size);
            let old_size = 1 + pick % new_size;
            let (old_head, new_head) = (root(&leaves[..old_size]), root(&leaves));
            let proof = consistency_proof(old_size, &leaves).unwrap();
            prop_assert!(verify_consistency(old_size as u64, new_size as u64, &old_head, &new_head, &proof));
            // A history rewritten before the old size: no proof from the
            // new tree makes the old head fit.
            let mut rewritten = leaves.clone();
            rewritten[pick % old_size] = leaf_hash(b"rewritten");
            let forged = consistency_proof(old_size, &rewritten).unwrap();
            prop_assert!(!verify_consistency(old_size as u64, new_size as u64, &old_head, &root(&rewritten), &forged));
            if old_size < new_size {
                let mut tampered = proof.clone();
                let last = tampered.len() - 1;
                tampered[last][31] ^= 1;
                prop_assert!(!verify_consistency(old_size as u64, new_size as u64, &old_head, &new_head, &tampered));
            }
        }

        #[test]
        fn proofs_from_a_store_are_the_proofs_from_all_leaves(size in 1usize..300, pick in 0usize..300, old in 1usize..300) {
            let leaves = leaves(size);
            let store = stored(&leaves);
            let (index, old_size) = (pick % size, 1 + old % size);
            prop_assert_eq!(stored_root(&store, size as u64).unwrap(), root(&leaves));
            prop_assert_eq!(stored_root(&store, old_size as u64).unwrap(), root(&leaves[..old_size]));
            prop_assert_eq!(
                stored_inclusion_proof(&store, index as u64, size as u64).unwrap(),
                inclusion_proof(index, &leaves)
            );
            prop_assert_eq!(
                stored_consistency_proof(&store, old_size as u64, size as u64).unwrap(),
                consistency_proof(old_size, &leaves)
            );
            prop_assert_eq!(
                Frontier::from_subtrees(&store, old_size as u64).unwrap().root(),
                root(&leaves[..old_size])
            );
            prop_assert_eq!(stored_inclusion_proof(&store, size as u64, size as u64).unwrap(), None);
        }
    }
}
