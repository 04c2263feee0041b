//! The operator's policy: which functions of which capability each
//! department may call. A manifest's `grants` are a request; deploy refuses
//! one that asks for more than the policy gives its department, naming the
//! grant and where the manifest asks for it. The run-time `not-granted`
//! check stays behind it.
//!
//! ```toml
//! policy-version = 1
//!
//! [departments.market-regulation]
//! "zhongtai:auth" = ["authn.verify", "authn.register"]
//! "zhongtai:license" = ["register.*"]
//! ```
//!
//! Entries are `interface.function` or `interface.*`. A manifest grant
//! `interface.function` is covered by either; `interface.*` only by
//! `interface.*`. A department or package the policy does not name is
//! given nothing: deny by default.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{ManifestError, ManifestErrors};
use crate::validate::{Checked, grant_covers, is_grant};

/// The policy file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyFile {
    policy_version: u32,
    #[serde(default)]
    departments: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// What each department may call, by package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    departments: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Policy {
    /// Parses a policy's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ManifestErrors> {
        let parsed: PolicyFile =
            toml::from_str(text).map_err(|e| crate::toml_error(file, text, &e))?;
        let mut problems = Vec::new();
        if parsed.policy_version != 1 {
            problems.push(format!(
                "policy-version: expected 1, found {}",
                parsed.policy_version
            ));
        }
        for (department, packages) in &parsed.departments {
            for (package, grants) in packages {
                for grant in grants {
                    if !is_grant(grant) {
                        problems.push(format!(
                            "departments.{department}.\"{package}\": {grant:?} must be interface.function or interface.*"
                        ));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(ManifestErrors(
                problems
                    .into_iter()
                    .map(|message| ManifestError {
                        file: file.to_owned(),
                        line: 0,
                        column: 0,
                        field: "(policy)".into(),
                        message,
                    })
                    .collect(),
            ));
        }
        Ok(Self {
            departments: parsed.departments,
        })
    }

    /// What the policy gives `department` of `package`.
    pub fn grants(&self, department: &str, package: &str) -> &[String] {
        self.departments
            .get(department)
            .and_then(|packages| packages.get(package))
            .map_or(&[], Vec::as_slice)
    }

    /// Checks that every grant `manifest` (from `file`) asks for is given
    /// to its department; each refusal names the grant and its place.
    pub fn check(&self, manifest: &Checked, file: &str) -> Result<(), ManifestErrors> {
        let department = manifest.department.as_str();
        let mut problems = Vec::new();
        for (alias, spec) in &manifest.components {
            let given = self.grants(department, &spec.package);
            for grant in spec.grants.iter().filter(|g| !covers(given, g)) {
                let given = if given.is_empty() {
                    "nothing".to_owned()
                } else {
                    given.join(", ")
                };
                problems.push(spec.place.error(
                    file,
                    ".grants",
                    format!(
                        "`{grant}` of {} ({alias}) is not given to {department} by the platform policy, which gives it: {given}",
                        spec.package
                    ),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestErrors(problems))
        }
    }
}

/// Whether the policy entries `given` cover the manifest grant `wanted`.
fn covers(given: &[String], wanted: &str) -> bool {
    wanted
        .rsplit_once('.')
        .is_some_and(|(interface, function)| {
            given.iter().any(|g| grant_covers(g, interface, function))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"policy-version = 1
[departments.taxation]
"zhongtai:payment" = ["orders.create", "orders.pay"]
"zhongtai:credit" = ["records.*"]
"#;

    fn manifest(grants: &str) -> Checked {
        let text = format!(
            "manifest-version = 1\ndepartment = \"taxation\"\n[components]\npayment = {{ package = \"zhongtai:payment\", version = \"^1\", grants = {grants} }}\ncredit = {{ package = \"zhongtai:credit\", version = \"^1\", grants = [\"records.add-event\"] }}\n"
        );
        crate::parse(&text, "taxation.toml").unwrap()
    }

    #[test]
    fn a_manifest_may_ask_for_what_the_policy_gives_and_no_more() {
        let policy = Policy::parse(POLICY, "policy.toml").unwrap();
        assert!(policy.check(&manifest(r#"["orders.pay"]"#), "t").is_ok());
        let refused = policy
            .check(
                &manifest(r#"["orders.pay", "orders.refund", "orders.*"]"#),
                "t",
            )
            .unwrap_err()
            .to_string();
        assert!(
            refused
                .contains("`orders.refund` of zhongtai:payment (payment) is not given to taxation"),
            "{refused}"
        );
        assert!(refused.contains("`orders.*`"), "{refused}");
        assert!(
            refused.starts_with("t:4:11: components.payment.grants:"),
            "{refused}"
        );
        let nothing = Policy::default().check(&manifest(r#"["orders.pay"]"#), "t");
        assert!(
            nothing
                .unwrap_err()
                .to_string()
                .contains("which gives it: nothing")
        );
    }

    #[test]
    fn a_malformed_policy_is_refused_with_its_place() {
        let error = Policy::parse("policy-version = 1\nextra = 2\n", "p.toml").unwrap_err();
        assert!(error.to_string().starts_with("p.toml:2:1:"), "{error}");
        let error = Policy::parse(
            "policy-version = 1\n[departments.x]\n\"a:b\" = [\"nodot\"]\n",
            "p.toml",
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("must be interface.function"),
            "{error}"
        );
    }
}
