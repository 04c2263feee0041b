// What the `manifest` fuzz target checks of one input; included by the
// target and by the corpus replay in `tests/it/fuzz_corpus.rs`.

/// Any text given to the manifest loader and checker, the policy loader
/// and the lock reader is refused with errors or accepted — never a panic —
/// and every error names a line inside the text.
pub fn check(data: &[u8]) {
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
}
