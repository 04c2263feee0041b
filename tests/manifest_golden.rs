//! Golden tests: every manifest under `tests/manifests/bad/` produces exactly
//! the error text in the `.err` file beside it (`UPDATE_GOLDEN=1` rewrites
//! them).

use std::path::Path;

#[test]
fn every_bad_manifest_produces_its_expected_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/bad");
    let mut manifests: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 10, "the golden set shrank");
    let mut failures = Vec::new();
    for path in manifests {
        let file = format!("bad/{}", path.file_name().unwrap().to_string_lossy());
        let text = std::fs::read_to_string(&path).unwrap();
        let actual = match zhongtai_manifest::parse(&text, &file) {
            Ok(_) => "(accepted)\n".to_owned(),
            Err(errors) => format!("{errors}\n"),
        };
        let expected_path = path.with_extension("err");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{file}\n  expected: {expected}  actual:   {actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
