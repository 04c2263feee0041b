//! The audit trail reader and verifier on any bytes: see `check`.
#![no_main]

include!("../checks/audit_trail.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("zhongtai-fuzz-{}", std::process::id()));
    check(data, &dir);
});
