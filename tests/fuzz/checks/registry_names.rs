// What the `registry_names` fuzz target checks of one input; included by
// the target and by the corpus replay in `tests/it/fuzz_corpus.rs`.

/// Registry names, versions, requirements and digests: any text is parsed
/// or refused without a panic, and whatever is accepted prints back as
/// text that parses to the same thing.
pub fn check(data: &[u8]) {
    use zhongtai_registry::name::{parse_requirement, parse_version};
    use zhongtai_registry::{Digest, PackageName};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = PackageName::parse(text) {
        let again = PackageName::parse(&name.to_string()).expect("a printed name parses");
        assert_eq!(again, name);
        assert!(name.as_str().starts_with(name.namespace()));
    }
    if let Ok(version) = parse_version(text) {
        assert!(
            version.build.is_empty(),
            "build metadata accepted: {version}"
        );
        assert_eq!(
            parse_version(&version.to_string()).expect("a printed version parses"),
            version
        );
    }
    if let Ok(requirement) = parse_requirement(text) {
        let printed = requirement.to_string();
        assert_eq!(
            parse_requirement(&printed).expect("a printed requirement parses"),
            requirement
        );
    }
    if let Ok(digest) = Digest::parse(text) {
        assert_eq!(
            Digest::parse(&digest.to_string()).expect("a printed digest parses"),
            digest
        );
        assert_eq!(digest.hex().len(), 64);
    }
}
