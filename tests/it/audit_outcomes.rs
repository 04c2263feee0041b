//! What a workflow records for each way a call can end: ok, a trap, a
//! timeout, refused by grants, an error case — and the answer it gives in
//! each case. Only a WIT `result` has an `ok` or an `err`: a record whose
//! field is named `ok`, or a variant with a case `err`, is a plain value.

use crate::support;

use std::time::Duration;

use zhongtai_api::workflow::{RequestData, run};
use zhongtai_audit::{AuditLog, AuditOptions, Filter, Trail, VerifyKey, verify};
use zhongtai_registry::TrustPolicy;
use zhongtai_runtime::{HostConfig, RuntimeLimits};

const MANIFEST: &str = include_str!("../manifests/sampler/civil-affairs.toml");

#[test]
fn every_way_a_call_ends_is_recorded() {
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = support::sampler_registry(registry_dir.path());
    let limits = RuntimeLimits {
        deadline: Duration::from_millis(200),
        ..RuntimeLimits::default()
    };
    let (runtime, _state) = support::runtime(limits, HostConfig::default());
    let checked = zhongtai_manifest::parse(MANIFEST, "civil-affairs.toml").unwrap();
    let mut deployment = zhongtai_api::deploy(
        checked,
        "civil-affairs.toml",
        None,
        &registry,
        &TrustPolicy::default(),
        &runtime,
    )
    .unwrap();
    // Deploy refuses a step its grants do not list; if a grant is withdrawn
    // after deploy, the run-time check still refuses the call.
    deployment
        .components
        .get_mut("sampler")
        .unwrap()
        .spec
        .grants
        .retain(|g| g != "antics.recurse");
    let trail = tempfile::tempdir().unwrap();
    let audit = AuditLog::open(trail.path(), None, AuditOptions::default()).unwrap();

    let mut answers = Vec::new();
    let order = [
        "counted",
        "crashing",
        "looping",
        "lookalike",
        "verdict",
        "even",
        "odd",
        "nosy",
    ];
    for (index, name) in order.iter().enumerate() {
        let service = deployment
            .manifest
            .services
            .iter()
            .find(|s| s.name == *name)
            .unwrap();
        let request = RequestData {
            request_id: format!("request-{index}"),
            ..RequestData::default()
        };
        let answer = match run(&runtime, Some(&audit), &deployment, service, &request) {
            Ok((status, body)) => format!("{} {status} {body}", service.name),
            Err(e) => format!("{} {} {}", service.name, e.status.as_u16(), e.code),
        };
        answers.push(answer);
    }
    assert_eq!(
        answers,
        [
            r#"counted 200 {"n":1,"request":"request-0"}"#,
            "crashing 500 trap",
            "looping 504 timeout",
            r#"lookalike 200 {"ok":7}"#,
            r#"verdict 200 {"err":"not an error"}"#,
            r#"even 200 {"ok":4}"#,
            "odd 409 err",
            "nosy 403 not-granted"
        ]
    );

    drop(audit);
    let read = Trail::read(trail.path()).unwrap();
    let key = VerifyKey::from_file(&trail.path().join("host.pub")).unwrap();
    verify(&read, &key).unwrap();
    let outcomes: Vec<String> = read
        .select(&Filter::default())
        .iter()
        .map(|r| {
            let e = &r.entry;
            format!(
                "{} {} {} {}",
                e.request.as_deref().unwrap_or_default(),
                e.function.as_deref().unwrap_or_default(),
                e.outcome,
                e.case.as_deref().unwrap_or_default()
            )
            .trim_end()
            .to_owned()
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            "request-0 count ok",
            "request-1 boom trap",
            "request-2 spin timeout",
            "request-3 lookalike ok",
            "request-4 verdict ok",
            "request-5 checked ok",
            "request-6 checked error err",
            "request-7 recurse refused not-granted"
        ]
    );
}
