//! The license component through the host runtime: issue, verify, revoke,
//! list, every reachable error, and offline verification by a third party
//! holding only the public key.

use crate::support;

use crate::support::Capability;
use serde_json::{Value as Json, json};
use zhongtai_runtime::{HostConfig, RuntimeLimits};

const COMPANY: &str = "91350100M000100Y43";
const KEYS: &str = "k2026:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";

struct License {
    capability: Capability,
    dir: tempfile::TempDir,
}

impl License {
    fn new() -> Self {
        Self::in_dir(tempfile::tempdir().unwrap(), KEYS)
    }

    fn in_dir(dir: tempfile::TempDir, keys: &str) -> Self {
        let mut config = HostConfig::default();
        config.set("zhongtai:license", "signing-keys", keys);
        let runtime = support::runtime_in(dir.path(), RuntimeLimits::default(), config);
        Self {
            capability: Capability::load(runtime, "zhongtai-license"),
            dir,
        }
    }

    fn call_as(&self, department: &str, function: &str, args: Json) -> Json {
        self.capability.call_as(department, function, args)
    }

    fn issue(&self, request: Json) -> Json {
        self.call_as(
            "market-regulation",
            "register.issue",
            json!({ "request": request }),
        )
    }
}

fn request() -> Json {
    json!({
        "license-type": "food-operation-permit",
        "holder-id": COMPANY,
        "holder-name": "Fuzhou Example Catering Co., Ltd.",
        "fields": [{"name": "premises", "value": "12 Wuyi Road, Gulou District"}],
        "valid-from": "2025-01-01",
        "valid-until": "2030-12-31",
    })
}

#[test]
fn issue_verify_revoke_and_list() {
    let license = License::new();
    let issued = license.issue(request());
    let number = issued["ok"]["number"]
        .as_str()
        .unwrap_or_else(|| panic!("{issued}"))
        .to_owned();
    assert!(number.starts_with("FO-"), "{number}");
    assert_eq!(issued["ok"]["key-id"], "k2026");
    assert_eq!(issued["ok"]["revoked"], Json::Null);

    let verified = license.call_as(
        "public-security",
        "verification.verify",
        json!({ "number": number }),
    );
    assert_eq!(verified["ok"], issued["ok"]);
    let listed = license.call_as(
        "public-security",
        "register.list-by-holder",
        json!({ "holder-id": COMPANY }),
    );
    assert_eq!(listed["ok"].as_array().unwrap().len(), 1);

    let foreign = license.call_as(
        "taxation",
        "register.revoke",
        json!({"number": number, "reason": "x"}),
    );
    assert!(foreign["err"]["forbidden"].is_string(), "{foreign}");
    let revoked = license.call_as(
        "market-regulation",
        "register.revoke",
        json!({"number": number, "reason": "premises closed"}),
    );
    assert_eq!(revoked["ok"]["revoked"]["reason"], "premises closed");
    let refused = license.call_as(
        "public-security",
        "verification.verify",
        json!({ "number": number }),
    );
    assert_eq!(refused, json!({"err": {"revoked": "premises closed"}}));
    let stored = license.call_as(
        "public-security",
        "register.get",
        json!({ "number": number }),
    );
    assert_eq!(stored["ok"]["revoked"]["reason"], "premises closed");
}

#[test]
fn a_third_party_verifies_a_license_offline() {
    let license = License::new();
    let issued = license.issue(request());
    let keys = license.call_as("public-security", "verification.public-keys", json!({}));
    assert_eq!(keys[0]["algorithm"], "ed25519");
    let public_key = keys[0]["key"].as_str().unwrap();

    // What a third party holds: the license as JSON and the public key.
    let document: zhongtai_license::License = serde_json::from_value(issued["ok"].clone()).unwrap();
    assert_eq!(
        zhongtai_license::signing::verify_offline(&document, public_key),
        Ok(())
    );
    let mut altered = document.clone();
    altered.holder_name = "Someone Else Ltd.".into();
    assert_eq!(
        zhongtai_license::signing::verify_offline(&altered, public_key),
        Err(zhongtai_license::LicenseError::BadSignature)
    );
}

#[test]
fn every_reachable_error() {
    let license = License::new();
    let with = |field: &str, value: Json| {
        let mut r = request();
        r[field] = value;
        license.issue(r)
    };
    assert_eq!(
        with("license-type", json!("hunting-permit")),
        json!({"err": {"unknown-license-type": "hunting-permit"}})
    );
    assert!(with("holder-id", json!("123"))["err"]["invalid-identifier"].is_string());
    assert!(with("valid-until", json!("2024-12-31"))["err"]["invalid-input"].is_string());
    let number = |r: Json| r["ok"]["number"].as_str().unwrap().to_owned();
    let future = {
        let mut r = request();
        r["valid-from"] = json!("2099-01-01");
        r["valid-until"] = json!("2099-12-31");
        number(license.issue(r))
    };
    let verify = |n: &str| {
        license.call_as(
            "public-security",
            "verification.verify",
            json!({ "number": n }),
        )
    };
    let expired = {
        let mut r = request();
        r["valid-from"] = json!("2020-01-01");
        r["valid-until"] = json!("2020-12-31");
        number(license.issue(r))
    };
    assert_eq!(verify(&future), json!({"err": "not-yet-valid"}));
    assert_eq!(verify(&expired), json!({"err": "expired"}));
    assert_eq!(
        verify("FO-2026-00009999-1"),
        json!({"err": "unknown-license"})
    );
}

#[test]
fn a_license_signed_by_a_removed_key_and_a_broken_key_configuration() {
    let license = License::new();
    let number = license.issue(request())["ok"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let License { capability, dir } = license;
    drop(capability);
    let rotated = License::in_dir(dir, "k2027:BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=");
    let verify = rotated.call_as(
        "public-security",
        "verification.verify",
        json!({ "number": number }),
    );
    assert_eq!(verify, json!({"err": "bad-signature"}));
    let broken = License::in_dir(tempfile::tempdir().unwrap(), "k2027:not-base64");
    let issued = broken.issue(request());
    assert!(
        issued["err"]["other"]
            .as_str()
            .unwrap_or_default()
            .contains("signing-keys"),
        "{issued}"
    );
}
