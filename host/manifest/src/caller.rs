//! Who may call a service: anyone (`public = true`), or a caller whose
//! bearer token the named auth capability verifies (`authenticate`) and
//! whose verified claims meet the service's `require`. The host checks it
//! before any step runs; [`Requirement::refusal`] is the one place the
//! claims are judged.

use serde_json::Value as Json;
use zhongtai_ids::Slug;

/// The kinds of subject a requirement may name.
pub const KINDS: &[&str] = &["citizen", "legal-entity", "official"];

/// How a service's caller is admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Anyone, on purpose.
    Public,
    /// A bearer token verified by `alias`'s `authn.verify`, with claims
    /// meeting `require`.
    Authenticated {
        /// The auth capability's alias.
        alias: String,
        /// What the claims must show.
        require: Requirement,
    },
}

/// What verified claims must show; empty parts ask nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    /// One of these kinds.
    pub kinds: Vec<String>,
    /// An official of this department (their id is `<department>/<number>`,
    /// which only that department can register).
    pub department: Option<Slug>,
    /// Every one of these roles.
    pub roles: Vec<String>,
}

impl Requirement {
    /// Why `claims` (the verified `claims` record: `subject-id`, `kind`,
    /// `roles`, …) do not meet the requirement, or `None` when they do.
    pub fn refusal(&self, claims: &Json) -> Option<String> {
        let subject = claims["subject-id"].as_str().unwrap_or_default();
        let kind = claims["kind"].as_str().unwrap_or_default();
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == kind) {
            return Some(format!(
                "this service is for callers of kind {}; the caller is of kind {kind}",
                self.kinds.join(" or ")
            ));
        }
        if let Some(department) = &self.department {
            let own = kind == "official"
                && subject
                    .split_once('/')
                    .is_some_and(|(d, _)| d == department.as_str());
            if !own {
                return Some(format!("this service is for officials of {department}"));
            }
        }
        let held: Vec<&str> = claims["roles"]
            .as_array()
            .map(|roles| roles.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        if let Some(missing) = self.roles.iter().find(|r| !held.contains(&r.as_str())) {
            return Some(format!("this service needs the role `{missing}`"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(subject: &str, kind: &str, roles: &[&str]) -> Json {
        json!({"subject-id": subject, "kind": kind, "roles": roles})
    }

    #[test]
    fn requirements_judge_kind_department_and_roles() {
        let admin_of_market = Requirement {
            kinds: vec!["official".into()],
            department: Some(Slug::parse("department", "market-regulation").unwrap()),
            roles: vec!["admin".into()],
        };
        let applicant = Requirement {
            kinds: vec!["citizen".into(), "legal-entity".into()],
            ..Requirement::default()
        };
        let anyone = Requirement::default();
        let cases = [
            (
                &admin_of_market,
                claims("market-regulation/A1", "official", &["admin"]),
                true,
            ),
            (
                &admin_of_market,
                claims("market-regulation/A2", "official", &[]),
                false,
            ),
            (
                &admin_of_market,
                claims("taxation/A1", "official", &["admin"]),
                false,
            ),
            (
                &admin_of_market,
                claims("market-regulation-x/A1", "official", &["admin"]),
                false,
            ),
            (
                &admin_of_market,
                claims("91350100M000100Y43", "legal-entity", &["admin"]),
                false,
            ),
            (
                &applicant,
                claims("11010519491231002X", "citizen", &[]),
                true,
            ),
            (
                &applicant,
                claims("91350100M000100Y43", "legal-entity", &[]),
                true,
            ),
            (
                &applicant,
                claims("market-regulation/A1", "official", &["admin"]),
                false,
            ),
            (&anyone, claims("taxation/T1", "official", &[]), true),
            (&anyone, json!({}), true),
        ];
        for (requirement, claims, admitted) in cases {
            assert_eq!(
                requirement.refusal(&claims).is_none(),
                admitted,
                "{requirement:?} for {claims}"
            );
        }
    }

    #[test]
    fn a_refusal_says_what_was_missing() {
        let roles = Requirement {
            roles: vec!["admin".into()],
            ..Requirement::default()
        };
        assert_eq!(
            roles
                .refusal(&claims("x/1", "official", &["clerk"]))
                .unwrap(),
            "this service needs the role `admin`"
        );
    }
}
