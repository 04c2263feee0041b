//! Semver resolution by cargo's rules.

use semver::{Version, VersionReq};

/// The highest version matching `requirement` among those not yanked.
/// Pre-releases match only when the requirement names a pre-release of the
/// same major.minor.patch (the `semver` crate's, and cargo's, rule).
pub fn highest_match<'a>(
    requirement: &VersionReq,
    versions: impl IntoIterator<Item = (&'a Version, bool)>,
) -> Option<&'a Version> {
    versions
        .into_iter()
        .filter(|(version, yanked)| !yanked && requirement.matches(version))
        .map(|(version, _)| version)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn cargo_rules() {
        let versions = [v("1.0.0"), v("1.2.0"), v("1.3.0-beta.1"), v("2.0.0")];
        let pick = |req: &str, yanked: &[&str]| {
            highest_match(
                &VersionReq::parse(req).unwrap(),
                versions
                    .iter()
                    .map(|x| (x, yanked.contains(&x.to_string().as_str()))),
            )
            .map(ToString::to_string)
        };
        assert_eq!(pick("^1", &[]).as_deref(), Some("1.2.0"));
        assert_eq!(pick("^1", &["1.2.0"]).as_deref(), Some("1.0.0"));
        assert_eq!(pick(">=1.3.0-beta", &[]).as_deref(), Some("2.0.0"));
        assert_eq!(pick("~1.3.0-beta", &[]).as_deref(), Some("1.3.0-beta.1"));
        assert_eq!(pick("^3", &[]), None);
        assert_eq!(pick("=2.0.0", &["2.0.0"]), None);
    }

    /// A model of the rule without the `semver` crate's matcher, for the
    /// property test: caret requirements `^M.m.p` on release versions.
    fn caret_model(req: (u64, u64, u64), version: (u64, u64, u64)) -> bool {
        let (rm, rn, rp) = req;
        let (vm, vn, vp) = version;
        if version < req {
            return false;
        }
        match (rm, rn) {
            (0, 0) => vm == 0 && vn == 0 && vp == rp,
            (0, _) => vm == 0 && vn == rn,
            _ => vm == rm,
        }
    }

    proptest! {
        #[test]
        fn resolution_matches_a_simple_model(
            published in proptest::collection::vec(((0u64..3, 0u64..3, 0u64..3), any::<bool>()), 0..12),
            req in (0u64..3, 0u64..3, 0u64..3),
        ) {
            let versions: Vec<(Version, bool)> = published
                .iter()
                .map(|((a, b, c), yanked)| (Version::new(*a, *b, *c), *yanked))
                .collect();
            let requirement = VersionReq::parse(&format!("^{}.{}.{}", req.0, req.1, req.2)).unwrap();
            let got = highest_match(&requirement, versions.iter().map(|(v, y)| (v, *y))).cloned();
            let expected = versions
                .iter()
                .filter(|(v, yanked)| !yanked && caret_model(req, (v.major, v.minor, v.patch)))
                .map(|(v, _)| v.clone())
                .max();
            prop_assert_eq!(got, expected);
        }
    }
}
