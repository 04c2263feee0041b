//! The credit component through the host runtime: recording, evaluation,
//! credit repair, and every error a caller can reach.

use crate::support::{Capability, runtime};
use serde_json::{Value as Json, json};
use zhongtai_runtime::{HostConfig, RuntimeLimits};

const CITIZEN: &str = "11010519491231002X";
const COMPANY: &str = "91350100M000100Y43";

struct Credit {
    capability: Capability,
    _dir: tempfile::TempDir,
}

impl Credit {
    fn new() -> Self {
        let (runtime, dir) = runtime(RuntimeLimits::default(), HostConfig::default());
        Self {
            capability: Capability::load(runtime, "zhongtai-credit"),
            _dir: dir,
        }
    }

    fn call_as(&self, department: &str, function: &str, args: Json) -> Json {
        self.capability.call_as(department, function, args)
    }

    fn add(
        &self,
        department: &str,
        subject: &str,
        category: &str,
        severity: &str,
        on: &str,
    ) -> Json {
        self.call_as(
            department,
            "records.add-event",
            json!({"event": {
                "subject-id": subject, "category": category, "severity": severity,
                "occurred-on": on, "legal-basis": "Regulation on Administrative Penalties, art. 9",
                "description": "",
            }}),
        )
    }

    fn evaluate(&self, subject: &str) -> Json {
        self.call_as(
            "market-regulation",
            "scoring.evaluate",
            json!({ "subject-id": subject }),
        )
    }
}

#[test]
fn record_evaluate_and_repair() {
    let credit = Credit::new();
    let clean = credit.evaluate(COMPANY);
    assert_eq!(clean["ok"]["score"], 800);
    assert_eq!(clean["ok"]["level"], "b");
    assert_eq!(clean["ok"]["serious-dishonesty"], false);

    let penalty = credit.add(
        "market-regulation",
        COMPANY,
        "administrative-penalty",
        "moderate",
        "2025-06-01",
    );
    assert_eq!(penalty["ok"]["issuing-department"], "market-regulation");
    let arrears = credit.add("taxation", COMPANY, "tax-arrears", "severe", "2025-09-01");
    let arrears_id = arrears["ok"]["id"].as_str().unwrap().to_owned();
    let listed = credit.evaluate(COMPANY);
    assert_eq!(listed["ok"]["serious-dishonesty"], true);
    assert_eq!(listed["ok"]["level"], "d");
    assert_eq!(listed["ok"]["active-events"], 2);

    let foreign = credit.call_as(
        "market-regulation",
        "records.withdraw",
        json!({"event-id": arrears_id, "reason": "paid"}),
    );
    assert!(foreign["err"]["forbidden"].is_string(), "{foreign}");
    let repaired = credit.call_as(
        "taxation",
        "records.withdraw",
        json!({"event-id": arrears_id, "reason": "arrears paid in full"}),
    );
    assert_eq!(
        repaired["ok"]["withdrawn"]["reason"],
        "arrears paid in full"
    );
    let again = credit.call_as(
        "taxation",
        "records.withdraw",
        json!({"event-id": arrears_id, "reason": "again"}),
    );
    assert_eq!(again, json!({"err": "already-withdrawn"}));

    let after = credit.evaluate(COMPANY);
    assert_eq!(after["ok"]["serious-dishonesty"], false);
    assert!(
        after["ok"]["score"].as_u64().unwrap() < 800,
        "the penalty still counts"
    );
    let active = credit.call_as(
        "taxation",
        "records.list-events",
        json!({"subject-id": COMPANY, "include-withdrawn": false}),
    );
    assert_eq!(active["ok"].as_array().unwrap().len(), 1);
    let all = credit.call_as(
        "taxation",
        "records.list-events",
        json!({"subject-id": COMPANY, "include-withdrawn": true}),
    );
    assert_eq!(all["ok"].as_array().unwrap().len(), 2);
}

#[test]
fn every_reachable_error() {
    let credit = Credit::new();
    assert!(credit.evaluate("91350100M000100Y44")["err"]["invalid-identifier"].is_string());
    assert!(credit.add("taxation", CITIZEN, "on-time-tax", "minor", "2025-02-29")["err"]["invalid-date"].is_string());
    assert!(credit.add("taxation", CITIZEN, "on-time-tax", "minor", "2999-01-01")["err"]["invalid-date"].is_string());
    let no_basis = credit.call_as(
        "taxation",
        "records.add-event",
        json!({"event": {"subject-id": CITIZEN, "category": "on-time-tax", "severity": "minor",
                          "occurred-on": "2025-01-01", "legal-basis": "", "description": ""}}),
    );
    assert!(no_basis["err"]["invalid-input"].is_string(), "{no_basis}");
    let unknown = credit.call_as(
        "taxation",
        "records.withdraw",
        json!({"event-id": "CE00000000000000000404", "reason": "x"}),
    );
    assert_eq!(unknown, json!({"err": "unknown-event"}));
}
