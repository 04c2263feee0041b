//! Proofs anyone holding a checkpoint can check: every record is proved in
//! the log, every checkpoint proved to extend the ones before, the tree
//! survives crashes, restarts, segments and trails from before it had one,
//! and any change to a record, a checkpoint or a proof is caught.
//!
//! The proofs are checked twice: with the crate's verifier, and with the
//! one below, written from RFC 6962's definitions and using nothing of the
//! crate but its types.

use std::fs;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use zhongtai_audit::{
    AuditLog, AuditOptions, COSIGNATURES_FILE, CosignError, Entry, HostKey, InclusionProof, Kind,
    Prover, TREE_FILE, VerifyKey, Witness, note, verify_dir,
};

/// RFC 6962 §2.1, from the text: the head of a list of leaf hashes.
mod rfc6962 {
    use super::*;

    pub fn leaf(data: &[u8]) -> [u8; 32] {
        Sha256::digest([&[0u8][..], data].concat()).into()
    }

    fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
        Sha256::digest([&[1u8][..], left, right].concat()).into()
    }

    fn k(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// The head computed from leaf `m` of a tree of `n` leaves and its
    /// audit path (the path lists siblings from the leaf up, so the
    /// recursion takes them from the end).
    pub fn head_from_path(
        m: usize,
        n: usize,
        leaf: [u8; 32],
        path: &[[u8; 32]],
    ) -> Option<[u8; 32]> {
        if n == 1 {
            return path.is_empty().then_some(leaf);
        }
        let (sibling, below) = path.split_last()?;
        let k = k(n);
        Some(if m < k {
            node(&head_from_path(m, k, leaf, below)?, sibling)
        } else {
            node(sibling, &head_from_path(m - k, n - k, leaf, below)?)
        })
    }

    /// Both heads computed from a consistency proof between trees of `m`
    /// and `n` leaves (§2.1.2's SUBPROOF, run backwards): the old head is
    /// known when the old tree is a complete subtree of the walk.
    pub fn heads_from_consistency(
        m: usize,
        n: usize,
        old: [u8; 32],
        proof: &[[u8; 32]],
    ) -> Option<([u8; 32], [u8; 32])> {
        fn walk(
            m: usize,
            n: usize,
            complete: bool,
            old: [u8; 32],
            proof: &[[u8; 32]],
        ) -> Option<([u8; 32], [u8; 32])> {
            if m == n {
                return if complete {
                    proof.is_empty().then_some((old, old))
                } else {
                    let (only, rest) = proof.split_last()?;
                    rest.is_empty().then_some((*only, *only))
                };
            }
            let (last, rest) = proof.split_last()?;
            let k = k(n);
            if m <= k {
                let (o, new) = walk(m, k, complete, old, rest)?;
                Some((o, node(&new, last)))
            } else {
                let (o, new) = walk(m - k, n - k, false, old, rest)?;
                Some((node(last, &o), node(last, &new)))
            }
        }
        walk(m, n, true, old, proof)
    }
}

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

fn lines(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    let mut segments: Vec<_> = fs::read_dir(dir.join("segments"))
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    segments.sort();
    segments.push(dir.to_owned());
    for segment in segments {
        let text = fs::read_to_string(segment.join("trail.jsonl")).unwrap();
        all.extend(text.lines().map(str::to_owned));
    }
    all
}

fn hashes(proof: &[String]) -> Vec<[u8; 32]> {
    proof
        .iter()
        .map(|h| STANDARD.decode(h).unwrap().try_into().unwrap())
        .collect()
}

fn head_of(checkpoint: &str) -> note::TreeHead {
    note::TreeHead::parse(note::body(checkpoint).unwrap()).unwrap()
}

/// A log of `records` records with a checkpoint after every `every`.
fn log_with(
    dir: &Path,
    records: u64,
    every: u64,
    options: AuditOptions,
) -> (AuditLog, Vec<String>) {
    let log = AuditLog::open(dir, None, options).unwrap();
    let mut checkpoints = Vec::new();
    for n in 0..records {
        log.append(entry(n)).unwrap();
        if (n + 1) % every == 0 {
            log.checkpoint().unwrap();
            checkpoints.push(log.latest_checkpoint().unwrap());
        }
    }
    log.checkpoint().unwrap();
    (log, checkpoints)
}

#[test]
fn every_record_is_proved_in_the_log_and_every_checkpoint_extends_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let (log, checkpoints) = log_with(dir.path(), 100, 17, quiet());
    let key = log.public_key();
    let origin = log.origin().to_owned();
    assert!(origin.starts_with("zhongtai/audit/"), "{origin}");
    let latest = log.latest_checkpoint().unwrap();
    let head = note::open(&latest, &origin, &key).unwrap();
    assert_eq!(head.size, 100);
    let records = lines(dir.path());

    for seq in 0..100u64 {
        let mut proof = log.inclusion_proof(seq, None).unwrap();
        assert_eq!(
            (proof.seq, proof.size, &proof.checkpoint),
            (seq, 100, &latest)
        );
        let leaf = rfc6962::leaf(records[seq as usize].as_bytes());
        assert_eq!(STANDARD.decode(&proof.leaf).unwrap(), leaf);
        assert_eq!(
            rfc6962::head_from_path(seq as usize, 100, leaf, &hashes(&proof.proof)),
            Some(head.root),
            "record {seq}"
        );
        proof.record = Some(records[seq as usize].clone());
        assert_eq!(proof.check(&key).unwrap(), head);
        // Against an older checkpoint too.
        if seq < 17 {
            let old = log.inclusion_proof(seq, Some(17)).unwrap();
            assert_eq!(old.checkpoint, checkpoints[0]);
            old.check(&key).unwrap();
        }
    }
    // Each checkpoint extends the one before, and the latest all of them.
    for pair in checkpoints.windows(2) {
        let (old, new) = (head_of(&pair[0]), head_of(&pair[1]));
        let proof = log.consistency_proof(old.size, Some(new.size)).unwrap();
        assert_eq!(proof.checkpoint, pair[1]);
        assert_eq!(proof.check(&pair[0], &key).unwrap(), new);
        assert_eq!(
            rfc6962::heads_from_consistency(
                old.size as usize,
                new.size as usize,
                old.root,
                &hashes(&proof.proof)
            ),
            Some((old.root, new.root))
        );
    }
    for old in &checkpoints {
        log.consistency_proof(head_of(old).size, None)
            .unwrap()
            .check(old, &key)
            .unwrap();
    }

    // Offline, beside the running writer: the same proofs, with the record.
    let prover = Prover::open(dir.path()).unwrap();
    assert_eq!(prover.latest_checkpoint().unwrap(), latest);
    let offline = prover.inclusion_proof(42, None).unwrap();
    assert_eq!(offline.record.as_deref(), Some(records[42].as_str()));
    assert_eq!(
        InclusionProof {
            record: None,
            ..offline.clone()
        },
        log.inclusion_proof(42, None).unwrap()
    );
    offline.check(&key).unwrap();
    assert_eq!(
        prover.consistency_proof(17, Some(34)).unwrap(),
        log.consistency_proof(17, Some(34)).unwrap()
    );
    let error = prover.inclusion_proof(3, Some(20)).unwrap_err().to_string();
    assert!(
        error.contains("no checkpoint of this trail is of exactly 20 records"),
        "{error}"
    );

    // Nothing beyond the signed log.
    assert!(
        log.inclusion_proof(100, None)
            .unwrap_err()
            .to_string()
            .contains("not in the tree of 100")
    );
    assert!(
        log.inclusion_proof(3, Some(101))
            .unwrap_err()
            .to_string()
            .contains("covers 100 records")
    );
    assert!(log.consistency_proof(0, None).is_err());
    let report = verify_dir(dir.path(), &key).unwrap().unwrap();
    assert!(
        report.tree_heads == 6 && report.tree_heads_recomputed,
        "{report}"
    );
}

#[test]
fn a_changed_record_proof_or_checkpoint_fails_its_check() {
    let dir = tempfile::tempdir().unwrap();
    let (log, checkpoints) = log_with(dir.path(), 40, 10, quiet());
    let key = log.public_key();
    let records = lines(dir.path());
    let mut proof = log.inclusion_proof(25, None).unwrap();
    proof.record = Some(records[25].clone());
    proof.check(&key).unwrap();

    let changed = |f: &dyn Fn(&mut InclusionProof)| {
        let mut changed = proof.clone();
        f(&mut changed);
        changed.check(&key).unwrap_err()
    };
    let error = changed(&|p| {
        p.record = Some(
            p.record
                .as_ref()
                .unwrap()
                .replace("department-1", "department-2"),
        )
    });
    assert!(error.contains("does not hash to the leaf"), "{error}");
    let error = changed(&|p| p.proof[2] = STANDARD.encode([9u8; 32]));
    assert!(error.contains("does not lead from leaf 25"), "{error}");
    let error = changed(&|p| p.seq = 24);
    assert!(
        error.contains("does not hash") || error.contains("does not lead"),
        "{error}"
    );
    let error = changed(&|p| p.checkpoint = p.checkpoint.replacen("\n40\n", "\n41\n", 1));
    assert!(error.contains("not signed"), "{error}");
    let other = HostKey::generate().unwrap();
    assert!(
        proof
            .check(&other.public())
            .unwrap_err()
            .contains("not signed")
    );

    // A checkpoint of a rewritten history: signed by the same key (the
    // operator's), but not an extension of what an auditor holds.
    let forged_dir = tempfile::tempdir().unwrap();
    fs::copy(
        dir.path().join("host.key"),
        forged_dir.path().join("host.key"),
    )
    .unwrap();
    let key_file = HostKey::load_or_create(&forged_dir.path().join("host.key")).unwrap();
    let forged = AuditLog::open(forged_dir.path(), Some(key_file), quiet()).unwrap();
    for n in 0..50 {
        forged.append(entry(n + 1000)).unwrap();
    }
    forged.checkpoint().unwrap();
    assert_eq!(forged.origin(), log.origin());
    let rewrite = forged.consistency_proof(20, None).unwrap();
    let error = rewrite.check(&checkpoints[1], &key).unwrap_err();
    assert!(error.contains("not an extension"), "{error}");
    drop(forged);

    // A checkpoint's tree head altered in the trail: verify names it.
    drop(log);
    let path = dir.path().join("checkpoints.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    let head = head_of(&checkpoints[1]);
    let altered = text.replacen(&STANDARD.encode(head.root), &STANDARD.encode([7u8; 32]), 1);
    assert_ne!(altered, text);
    fs::write(&path, altered).unwrap();
    let problem = verify_dir(dir.path(), &key)
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(problem.contains("tree head is not signed"), "{problem}");

    // Re-signed with the host's own key (an operator with the key), the
    // altered head is still caught: it is not the head of the records.
    let host = HostKey::load_or_create(&dir.path().join("host.key")).unwrap();
    let lying = note::TreeHead {
        root: [7u8; 32],
        ..head.clone()
    };
    let resigned = note::sign(&lying.body(), &head.origin, &host);
    let quoted = |note: &str| {
        serde_json::to_string(note)
            .unwrap()
            .trim_matches('"')
            .to_owned()
    };
    let replaced = text.replacen(&quoted(&checkpoints[1]), &quoted(&resigned), 1);
    assert_ne!(replaced, text);
    fs::write(&path, replaced).unwrap();
    let problem = verify_dir(dir.path(), &key)
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        problem.contains("its Merkle tree head is not the head of records 0 to 19"),
        "{problem}"
    );
}

#[test]
fn the_tree_is_made_again_after_a_crash_a_loss_or_for_a_trail_from_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), 30, 10, quiet());
    let key = log.public_key();
    let head = head_of(&log.latest_checkpoint().unwrap());
    drop(log);
    let tree = dir.path().join(TREE_FILE);

    // Garbage after the signed tree (a crash during a write): cut.
    let mut bytes = fs::read(&tree).unwrap();
    bytes.extend([7u8; 32 * 5]);
    fs::write(&tree, &bytes).unwrap();
    let log = AuditLog::open(dir.path(), None, quiet()).unwrap();
    assert_eq!(head_of(&log.latest_checkpoint().unwrap()), head);
    log.inclusion_proof(29, None).unwrap().check(&key).unwrap();
    log.append(entry(30)).unwrap();
    drop(log);

    // The file lost, or damaged inside the signed part: made again.
    for damage in [0, 1] {
        if damage == 0 {
            fs::remove_file(&tree).unwrap();
        } else {
            let mut bytes = fs::read(&tree).unwrap();
            bytes[40] ^= 1;
            fs::write(&tree, &bytes).unwrap();
        }
        let log = AuditLog::open(dir.path(), None, quiet()).unwrap();
        let latest = head_of(&log.latest_checkpoint().unwrap());
        assert_eq!(latest.size, 31);
        log.consistency_proof(30, None)
            .unwrap()
            .check(
                &note::sign(
                    &head.body(),
                    log.origin(),
                    &HostKey::load_or_create(&dir.path().join("host.key")).unwrap(),
                ),
                &key,
            )
            .unwrap();
        drop(log);
    }

    // A trail from before the tree: no tree file, no tree heads in its
    // checkpoints. Opening it hashes it whole and signs its first head.
    let path = dir.path().join("checkpoints.jsonl");
    let stripped: String = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| {
            let mut checkpoint: serde_json::Value = serde_json::from_str(line).unwrap();
            checkpoint.as_object_mut().unwrap().remove("note");
            checkpoint.to_string() + "\n"
        })
        .collect();
    fs::write(&path, stripped).unwrap();
    fs::remove_file(&tree).unwrap();
    assert_eq!(verify_dir(dir.path(), &key).unwrap().unwrap().tree_heads, 0);
    let log = AuditLog::open(dir.path(), None, quiet()).unwrap();
    let first = head_of(&log.latest_checkpoint().unwrap());
    assert_eq!(
        first,
        note::TreeHead {
            size: 31,
            ..latest_of(&log)
        }
    );
    drop(log);
    let report = verify_dir(dir.path(), &key).unwrap().unwrap();
    assert_eq!(report.tree_heads, 1, "{report}");
}

fn latest_of(log: &AuditLog) -> note::TreeHead {
    head_of(&log.latest_checkpoint().unwrap())
}

#[test]
fn proofs_span_sealed_and_archived_segments() {
    let dir = tempfile::tempdir().unwrap();
    let options = AuditOptions {
        segment_records: 10,
        ..quiet()
    };
    let (log, _) = log_with(dir.path(), 35, 5, options.clone());
    let key = log.public_key();
    assert!(dir.path().join("segments").exists());
    let records = lines(dir.path());
    for seq in [0, 9, 10, 22, 34] {
        let mut proof = log.inclusion_proof(seq, None).unwrap();
        proof.record = Some(records[seq as usize].clone());
        proof.check(&key).unwrap();
    }
    drop(log);
    let report = verify_dir(dir.path(), &key).unwrap().unwrap();
    assert!(
        report.segments > 2 && report.tree_heads_recomputed,
        "{report}"
    );

    // The first segment archived: proofs still come from the tree file,
    // and verify checks the heads' signatures.
    let mut sealed: Vec<_> = fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    sealed.sort();
    let archive = tempfile::tempdir().unwrap();
    fs::rename(&sealed[0], archive.path().join("first")).unwrap();
    let log = AuditLog::open(dir.path(), None, options.clone()).unwrap();
    log.inclusion_proof(3, None).unwrap().check(&key).unwrap();
    drop(log);
    let report = verify_dir(dir.path(), &key).unwrap().unwrap();
    assert!(
        !report.tree_heads_recomputed && report.tree_heads > 0,
        "{report}"
    );

    // Without the tree file, it cannot be made again: the host says
    // what to put back.
    fs::remove_file(dir.path().join(TREE_FILE)).unwrap();
    let error = AuditLog::open(dir.path(), None, options)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("put the archived segments back"), "{error}");
}

#[test]
fn witnesses_cosignatures_are_kept_and_published() {
    let dir = tempfile::tempdir().unwrap();
    let witness = HostKey::generate().unwrap();
    let stranger = HostKey::generate().unwrap();
    let options = AuditOptions {
        witnesses: vec![Witness {
            name: "witness.taxation".into(),
            key: witness.public(),
        }],
        ..quiet()
    };
    let (log, _) = log_with(dir.path(), 12, 100, options.clone());
    let latest = log.latest_checkpoint().unwrap();
    let body = note::body(&latest).unwrap().to_owned();
    assert_eq!(log.witnessed_checkpoint().unwrap(), None);

    let by_stranger =
        latest.clone() + &note::cosign(&body, "witness.taxation", &stranger, 1_800_000_000);
    assert!(matches!(
        log.add_cosignatures(&by_stranger),
        Err(CosignError::Unknown(_))
    ));
    let cosigned =
        latest.clone() + &note::cosign(&body, "witness.taxation", &witness, 1_800_000_000);
    assert_eq!(
        log.add_cosignatures(&cosigned).unwrap(),
        vec!["witness.taxation"]
    );
    assert_eq!(log.latest_checkpoint().unwrap(), cosigned);
    assert_eq!(log.witnessed_checkpoint().unwrap().unwrap(), cosigned);
    let time = note::cosigned(
        &log.latest_checkpoint().unwrap(),
        "witness.taxation",
        &VerifyKey::from_text(&witness.public().to_base64()).unwrap(),
    )
    .unwrap()
    .time;
    assert_eq!(time, 1_800_000_000);

    // A checkpoint this log never signed is refused, cosigned or not.
    let forged = note::TreeHead {
        size: 12,
        root: [1; 32],
        origin: log.origin().to_owned(),
    };
    let foreign = note::sign(&forged.body(), log.origin(), &stranger)
        + &note::cosign(&forged.body(), "witness.taxation", &witness, 1);
    assert!(matches!(
        log.add_cosignatures(&foreign),
        Err(CosignError::NotOurs(_))
    ));

    // After more records, the latest checkpoint has no cosignature yet;
    // the witnessed one stays published, also after a restart.
    log.append(entry(99)).unwrap();
    log.checkpoint().unwrap();
    assert!(
        !log.latest_checkpoint()
            .unwrap()
            .contains("witness.taxation")
    );
    drop(log);
    assert!(dir.path().join(COSIGNATURES_FILE).exists());
    let log = AuditLog::open(dir.path(), None, options).unwrap();
    assert_eq!(log.witnessed_checkpoint().unwrap().unwrap(), cosigned);
}
