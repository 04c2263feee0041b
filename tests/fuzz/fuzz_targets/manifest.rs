//! Any text given to the manifest loader and checker, the policy loader
//! and the lock reader is refused with errors or accepted — never a panic —
//! and every error names a line and column inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1);
    match zhongtai_manifest::parse(text, "fuzz.toml") {
        Ok(checked) => {
            // What a deploy reads of an accepted manifest works too.
            for service in &checked.services {
                let _ = service.body_fields();
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refusal without a reason");
            for error in &errors.0 {
                assert!(
                    error.line >= 1 && error.line <= lines + 1,
                    "line {} of a {lines}-line text: {error}",
                    error.line
                );
            }
        }
    }
    let _ = zhongtai_manifest::Policy::parse(text, "policy.toml");
    let _ = zhongtai_manifest::lock::Lock::parse(text);
});
