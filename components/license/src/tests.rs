//! Native tests of issuing, verifying and revoking licenses.

use proptest::prelude::*;
use zhongtai_guest::testing::{FakePlatform, MemoryStore};

use crate::model::*;
use crate::service::Licenses;
use crate::signing;

const COMPANY: &str = "91350100M000100Y43";
const SEED_A: &str = "a:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const SEED_B: &str = "b:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

fn request() -> NewLicense {
    NewLicense {
        license_type: "business-license".into(),
        holder_id: COMPANY.into(),
        holder_name: "Fuzhou Example Trading Co., Ltd.".into(),
        fields: vec![
            Field {
                name: "registered-capital".into(),
                value: "1000000 CNY".into(),
            },
            Field {
                name: "business-scope".into(),
                value: "wholesale of tea".into(),
            },
        ],
        valid_from: "2023-11-01".into(),
        valid_until: "2043-10-31".into(),
    }
}

#[test]
fn issue_verify_and_revoke() {
    let (store, env) = (
        MemoryStore::default(),
        FakePlatform::new("market-regulation"),
    );
    env.set_config("signing-keys", SEED_A);
    let licenses = Licenses::new(&store, &env);
    let license = licenses.issue(request()).unwrap();
    assert_eq!(license.number, "BL-2023-00000001-4");
    assert_eq!(license.issuing_department, "market-regulation");
    assert_eq!(licenses.verify(&license.number).unwrap(), license);
    assert_eq!(
        licenses.list_by_holder(COMPANY).unwrap(),
        vec![license.clone()]
    );

    env.call_as("taxation");
    assert!(matches!(
        licenses.revoke(&license.number, "fraud"),
        Err(LicenseError::Forbidden(_))
    ));
    env.call_as("market-regulation");
    let revoked = licenses
        .revoke(&license.number, "obtained by fraud")
        .unwrap();
    assert_eq!(revoked.revoked.unwrap().reason, "obtained by fraud");
    assert_eq!(
        licenses.verify(&license.number),
        Err(LicenseError::Revoked("obtained by fraud".into()))
    );
    assert_eq!(
        licenses.revoke(&license.number, "again"),
        Err(LicenseError::Revoked("obtained by fraud".into()))
    );
}

#[test]
fn validity_periods_are_enforced() {
    let (store, env) = (
        MemoryStore::default(),
        FakePlatform::new("market-regulation"),
    );
    let licenses = Licenses::new(&store, &env);
    let mut future = request();
    future.valid_from = "2024-01-01".into();
    let future = licenses.issue(future).unwrap();
    assert_eq!(
        licenses.verify(&future.number),
        Err(LicenseError::NotYetValid)
    );
    let mut past = request();
    past.valid_from = "2020-01-01".into();
    past.valid_until = "2023-11-13".into();
    let past = licenses.issue(past).unwrap();
    assert_eq!(licenses.verify(&past.number), Err(LicenseError::Expired));
}

#[test]
fn a_third_party_verifies_offline_with_the_public_key_only() {
    let (store, env) = (
        MemoryStore::default(),
        FakePlatform::new("market-regulation"),
    );
    env.set_config("signing-keys", &format!("{SEED_A},{SEED_B}"));
    let licenses = Licenses::new(&store, &env);
    let license = licenses.issue(request()).unwrap();
    let keys = licenses.public_keys().unwrap();
    assert_eq!(
        keys.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(signing::verify_offline(&license, &keys[0].key), Ok(()));
    assert_eq!(
        signing::verify_offline(&license, &keys[1].key),
        Err(LicenseError::BadSignature)
    );
    let mut forged = license.clone();
    forged.valid_until = "2099-12-31".into();
    assert_eq!(
        signing::verify_offline(&forged, &keys[0].key),
        Err(LicenseError::BadSignature)
    );

    // Rotated: the old key still listed verifies; removed, it does not.
    env.set_config("signing-keys", &format!("{SEED_B},{SEED_A}"));
    assert!(licenses.verify(&license.number).is_ok());
    env.set_config("signing-keys", SEED_B);
    assert_eq!(
        licenses.verify(&license.number),
        Err(LicenseError::BadSignature)
    );
}

#[test]
fn bad_input_is_refused_precisely() {
    let (store, env) = (
        MemoryStore::default(),
        FakePlatform::new("market-regulation"),
    );
    let licenses = Licenses::new(&store, &env);
    let with = |change: fn(&mut NewLicense)| {
        let mut r = request();
        change(&mut r);
        licenses.issue(r).unwrap_err()
    };
    assert_eq!(
        with(|r| r.license_type = "fishing-licence".into()),
        LicenseError::UnknownLicenseType("fishing-licence".into())
    );
    assert!(matches!(
        with(|r| r.holder_id = "91350100M000100Y44".into()),
        LicenseError::InvalidIdentifier(_)
    ));
    assert!(matches!(
        with(|r| r.holder_name = "".into()),
        LicenseError::InvalidInput(_)
    ));
    assert!(
        matches!(with(|r| r.valid_until = "2020-01-01".into()), LicenseError::InvalidInput(m) if m.contains("before"))
    );
    assert!(matches!(
        with(|r| r.valid_from = "2023-13-01".into()),
        LicenseError::InvalidInput(_)
    ));
    assert!(matches!(
        with(|r| r.fields[0].name = "Bad Name".into()),
        LicenseError::InvalidInput(_)
    ));
    assert!(
        matches!(with(|r| r.fields[1].name = "registered-capital".into()), LicenseError::InvalidInput(m) if m.contains("twice"))
    );
    assert_eq!(
        licenses.verify("BL-2023-00000099-1"),
        Err(LicenseError::UnknownLicense)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn license_numbers_are_unique_and_well_formed(count in 1usize..30) {
        let (store, env) = (MemoryStore::default(), FakePlatform::new("market-regulation"));
        let licenses = Licenses::new(&store, &env);
        let mut numbers = std::collections::HashSet::new();
        for _ in 0..count {
            let number = licenses.issue(request()).unwrap().number;
            let parts: Vec<&str> = number.split('-').collect();
            prop_assert_eq!(parts.len(), 4);
            prop_assert_eq!(parts[0], "BL");
            prop_assert_eq!(parts[1], "2023");
            prop_assert_eq!(parts[2].len(), 8);
            prop_assert!(numbers.insert(number.clone()), "{} issued twice", number);
        }
    }
}

fn application(id: &str) -> Application {
    let request = request();
    Application {
        application_id: id.into(),
        license_type: request.license_type,
        holder_id: request.holder_id,
        holder_name: request.holder_name,
        fields: request.fields,
        valid_days: 1826,
    }
}

#[test]
fn an_application_buys_one_license() {
    let (store, env) = (
        MemoryStore::default(),
        FakePlatform::new("market-regulation"),
    );
    let licenses = Licenses::new(&store, &env);
    let first = licenses
        .issue_for_application(application("APP-1"))
        .unwrap();
    // Valid from the day of issue for the days the department gives.
    let today = (env.now.get() / 86_400) as i64;
    let day = |text: &str| {
        let (y, m, d) = zhongtai_ids::iso_date(text).unwrap();
        zhongtai_ids::days_from_civil(y, m, d)
    };
    assert_eq!(day(&first.valid_from), today);
    assert_eq!(day(&first.valid_until), today + 1825);

    // A retry, even on a later day, is the same license.
    env.now.set(env.now.get() + 86_400);
    assert_eq!(
        licenses.issue_for_application(application("APP-1")),
        Ok(first.clone())
    );
    // The same id with other contents issues nothing.
    let mut other = application("APP-1");
    other.fields[1].value = "banking".into();
    assert!(matches!(
        licenses.issue_for_application(other),
        Err(LicenseError::ApplicationConflict(m)) if m.contains("fields") && m.contains(&first.number)
    ));
    let mut longer = application("APP-1");
    longer.valid_days = 36_600;
    assert!(matches!(
        licenses.issue_for_application(longer),
        Err(LicenseError::ApplicationConflict(m)) if m.contains("validity")
    ));
    assert_eq!(
        licenses.list_by_holder(COMPANY).unwrap(),
        vec![first.clone()]
    );

    // Application ids are the department's own: another department's APP-1
    // is another application.
    env.call_as("food-safety");
    let theirs = licenses
        .issue_for_application(application("APP-1"))
        .unwrap();
    assert_ne!(theirs.number, first.number);

    // Bounds.
    let mut bad = application("APP 2");
    assert!(matches!(
        licenses.issue_for_application(bad.clone()),
        Err(LicenseError::InvalidInput(m)) if m.contains("application-id")
    ));
    bad.application_id = "APP-2".into();
    bad.valid_days = 0;
    assert!(matches!(
        licenses.issue_for_application(bad.clone()),
        Err(LicenseError::InvalidInput(m)) if m.contains("valid-days")
    ));
    bad.valid_days = 36_601;
    assert!(licenses.issue_for_application(bad).is_err());
}
