// What the `audit_trail` fuzz target checks of one input; included by the
// target and by the corpus replay in `tests/it/fuzz_corpus.rs`.

/// The audit trail reader and verifier on any bytes: a trail and its
/// checkpoints file (split at the first 0xff byte) are verified against a
/// fixed key, whole and from files in `dir` a block at a time, and paged
/// from the end; nothing panics, the two verdicts agree, and the page holds
/// the last records a whole read selects.
pub fn check(data: &[u8], dir: &std::path::Path) {
    use zhongtai_audit::{HostKey, Trail, verify};
    let (records, checkpoints) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let key =
        HostKey::from_text("zhongtai-ed25519-secret:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=")
            .unwrap()
            .public();
    let trail = Trail {
        records: records.to_vec(),
        checkpoints: checkpoints.to_vec(),
    };
    let whole = verify(&trail, &key).map_err(|p| p.to_string());
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(zhongtai_audit::TRAIL_FILE), records).unwrap();
    std::fs::write(dir.join(zhongtai_audit::CHECKPOINTS_FILE), checkpoints).unwrap();
    let streamed = zhongtai_audit::verify_dir(dir, &key)
        .unwrap()
        .map_err(|p| p.to_string());
    assert_eq!(whole, streamed);
    let everything = trail.select(&Default::default());
    let filter = zhongtai_audit::Filter {
        limit: Some(3),
        ..Default::default()
    };
    let page = zhongtai_audit::latest(dir, &filter, None).unwrap();
    let tail: Vec<u64> = everything
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|r| r.seq)
        .collect();
    assert_eq!(page.records.iter().map(|r| r.seq).collect::<Vec<_>>(), tail);
}
