//! The manifest, policy and lock loaders on any text: see `check`.
#![no_main]

include!("../checks/manifest.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
