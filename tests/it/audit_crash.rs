//! kill -9 of the host under load loses no audit record of a request that
//! got a response, and the host restarts on the same trail — sealed into
//! small segments, so that the kill may land in the middle of a seal.

use crate::support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::platform::Platform;
use zhongtai_audit::{Filter, Kind, VerifyKey, each_record, verify_dir};

const CITIZEN: &str = "11010519491231002X";
const PASSWORD: &str = "tea-and-silk-2026";

fn check(trail: &std::path::Path) -> (zhongtai_audit::Report, Vec<zhongtai_audit::Record>) {
    let key = VerifyKey::from_file(&trail.join("host.pub")).unwrap();
    let report = verify_dir(trail, &key)
        .unwrap()
        .unwrap_or_else(|problem| panic!("{problem}"));
    let mut records = Vec::new();
    each_record(trail, &Filter::default(), |record| {
        records.push(record);
        Ok(())
    })
    .unwrap();
    (report, records)
}

#[test]
fn a_killed_host_has_recorded_every_request_it_answered() {
    support::guests();
    let departments = support::root().join("examples");
    let data = tempfile::tempdir().unwrap();
    // A segment every 64 records: a few hundred seals under the load.
    let segments = ["--audit-segment-records", "64"];
    let mut platform = Platform::start_with(&departments, data.path(), &segments);
    let token =
        platform.register_and_login("/public-security/citizens", CITIZEN, "Li Lei", PASSWORD);

    let killed = AtomicBool::new(false);
    let answered: BTreeSet<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|client| {
                let (platform, token, killed) = (&platform, &token, &killed);
                scope.spawn(move || {
                    let mut answered = Vec::new();
                    for n in 0.. {
                        let id = format!("load-{client}-{n}");
                        let response = platform
                            .agent
                            .get(&format!("{}/public-security/whoami", platform.url))
                            .header("Authorization", &format!("Bearer {token}"))
                            .header("x-request-id", &id)
                            .call();
                        // Only a whole answer counts as answered.
                        match response
                            .map(|mut r| (r.status().as_u16(), r.body_mut().read_to_string()))
                        {
                            Ok((200, Ok(_))) => answered.push(id),
                            Ok((status, body)) if !killed.load(Ordering::SeqCst) => {
                                panic!("{status} {body:?} before the kill")
                            }
                            _ => {
                                if killed.load(Ordering::SeqCst) {
                                    break;
                                }
                            }
                        }
                    }
                    answered
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        killed.store(true, Ordering::SeqCst);
        let pid = platform.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    platform.child.wait().unwrap();
    assert!(answered.len() > 50, "only {} answered", answered.len());

    let trail = data.path().join("audit");
    let (report, records) = check(&trail);
    let recorded: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r.entry.client_request.as_deref())
        .collect();
    let lost: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} answered requests have no record, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(3)]
    );

    assert!(report.segments > 3, "{report}");
    println!(
        "answered {} requests before the kill; trail: {} records in {} segments, {} signed, {} bytes of a record being written",
        answered.len(),
        report.records,
        report.segments,
        report.signed,
        report.incomplete_bytes
    );

    // The host comes back on the same trail, signs what it finds and goes on.
    drop(platform);
    let platform = Platform::start_with(&departments, data.path(), &segments);
    assert_eq!(platform.send("GET", "/healthz", None, None).0, 200);
    drop(platform);
    let (after, records) = check(&trail);
    assert!(after.records > report.records);
    assert!(
        after.signed >= report.records,
        "the restart signed the records it found"
    );
    assert!(
        records
            .iter()
            .all(|r| r.entry.kind != Kind::Recovery || r.entry.detail.is_some())
    );
}
