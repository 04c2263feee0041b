//! Golden tests: every manifest under `tests/manifests/bad/` produces exactly
//! the error text in the `.err` file beside it (`UPDATE_GOLDEN=1` rewrites
//! them).

use crate::support;

#[test]
fn every_bad_manifest_produces_its_expected_errors() {
    support::assert_golden_dir(
        "manifests/bad",
        12,
        |file, text| match zhongtai_manifest::parse(text, file) {
            Ok(_) => "(accepted)\n".to_owned(),
            Err(errors) => format!("{errors}\n"),
        },
    );
}
