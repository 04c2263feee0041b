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

const MANIFEST: &str = r#"manifest-version = 1
department = "civil-affairs"

[components]
sampler = { package = "example:sampler", version = "^1", grants = ["antics.count", "antics.boom", "antics.spin", "shapes.*"] }

[[services]]
name = "counted"
method = "POST"
path = "/count"
[[services.steps]]
name = "n"
call = "sampler.antics.count"
[services.response]
body = "steps.n"

[[services]]
name = "crashing"
method = "POST"
path = "/boom"
[[services.steps]]
name = "boom"
call = "sampler.antics.boom"
args = { message = "'the guest gave up'" }
[services.response]
body = "true"

[[services]]
name = "looping"
method = "POST"
path = "/spin"
[[services.steps]]
name = "spin"
call = "sampler.antics.spin"
[services.response]
body = "true"

[[services]]
name = "lookalike"
method = "POST"
path = "/lookalike"
[[services.steps]]
name = "x"
call = "sampler.shapes.lookalike"
args = { ok = "7" }
[services.response]
body = "steps.x"

[[services]]
name = "verdict"
method = "POST"
path = "/verdict"
[[services.steps]]
name = "v"
call = "sampler.shapes.verdict"
args = { err = "'not an error'" }
[services.response]
body = "steps.v"

[[services]]
name = "even"
method = "POST"
path = "/even"
[[services.steps]]
name = "c"
call = "sampler.shapes.checked"
args = { n = "4" }
[services.response]
body = "steps.c"

[[services]]
name = "odd"
method = "POST"
path = "/odd"
[[services.steps]]
name = "c"
call = "sampler.shapes.checked"
args = { n = "3" }
errors = { err = 409 }
[services.response]
body = "steps.c"

[[services]]
name = "nosy"
method = "POST"
path = "/recurse"
[[services.steps]]
name = "deep"
call = "sampler.antics.recurse"
args = { depth = "3" }
[services.response]
body = "steps.deep"
"#;

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
    let deployment = zhongtai_api::deploy(
        checked,
        "civil-affairs.toml",
        None,
        &registry,
        &TrustPolicy::default(),
        &runtime,
    )
    .unwrap();
    let trail = tempfile::tempdir().unwrap();
    let audit = AuditLog::open(trail.path(), None, AuditOptions::default()).unwrap();

    let mut answers = Vec::new();
    for (index, service) in deployment.manifest.services.iter().enumerate() {
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
            "counted 200 1",
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
