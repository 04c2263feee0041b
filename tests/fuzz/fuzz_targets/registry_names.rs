//! Registry names, versions, requirements and digests: see `check`.
#![no_main]

include!("../checks/registry_names.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
