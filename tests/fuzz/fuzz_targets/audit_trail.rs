//! The audit trail reader and verifier on any bytes: a trail and its
//! checkpoints file (split at the first 0xff byte) are verified against a
//! fixed key, read in blocks of any size, and selected from; nothing
//! panics, and reading in blocks gives the verdict a whole read gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zhongtai_audit::{HostKey, Trail, verify};

fuzz_target!(|data: &[u8]| {
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
    let dir = std::env::temp_dir().join(format!("zhongtai-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(zhongtai_audit::TRAIL_FILE), records).unwrap();
    std::fs::write(dir.join(zhongtai_audit::CHECKPOINTS_FILE), checkpoints).unwrap();
    let streamed = zhongtai_audit::verify_dir(&dir, &key)
        .unwrap()
        .map_err(|p| p.to_string());
    assert_eq!(whole, streamed);
    let everything = trail.select(&Default::default());
    let filter = zhongtai_audit::Filter {
        limit: Some(3),
        ..Default::default()
    };
    let page = zhongtai_audit::latest(&dir, &filter, None).unwrap();
    let tail: Vec<u64> = everything
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|r| r.seq)
        .collect();
    assert_eq!(page.records.iter().map(|r| r.seq).collect::<Vec<_>>(), tail);
});
