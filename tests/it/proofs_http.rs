//! The audit log's proofs as a citizen, a department, an auditor and a
//! witness meet them, against a running `zhongtai up`: a receipt on every
//! answer, its record proved in the log without a token, a later
//! checkpoint proved to extend an earlier one, the same offline with
//! `zhongtai audit prove` / `check-proof`, a witness cosigning — and
//! refusing the checkpoint of a history the operator rewrote.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use zhongtai_audit::{ConsistencyProof, HostKey, InclusionProof, VerifyKey, note};

use crate::support;
use crate::support::platform::{OPERATOR_TOKEN, Platform};

const SECURITY_TOKEN: &str = "ps-4Kd9Lm2Qx7Vb1Nz8Rt5Wy3Hc6Jf0Gp";
const TAXATION_TOKEN: &str = "tx-8Hj3Kp6Ls1Qw9Ez4Rv7Ty2Ub5Nm0Xc";

fn get_text(platform: &Platform, path: &str) -> (u16, String) {
    let mut response = platform
        .agent
        .get(format!("{}{path}", platform.url))
        .call()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// Makes a recorded request; its receipt: the first record and the log.
fn receipt(platform: &Platform) -> (u64, String) {
    let response = platform
        .agent
        .get(format!("{}/public-security/whoami", platform.url))
        .header("authorization", "Bearer not-a-session")
        .call()
        .unwrap();
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    let records = header("zhongtai-audit-records");
    let first = records.split_once('-').unwrap().0.parse().unwrap();
    (first, header("zhongtai-audit-log"))
}

/// The latest checkpoint, once it covers record `seq`.
fn checkpoint_covering(platform: &Platform, seq: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, text) = get_text(platform, "/audit/v1/checkpoint");
        if status == 200 && head(&text).size > seq {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint covers {seq}: {status} {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn head(checkpoint: &str) -> note::TreeHead {
    note::TreeHead::parse(note::body(checkpoint).unwrap()).unwrap()
}

/// The record's line as the operator's trail file holds it (the admin
/// API serves the files).
fn record_line(platform: &Platform, seq: u64) -> String {
    let (status, trail) = platform.admin(
        "GET",
        "/admin/v1/audit/files/trail.jsonl",
        Some(OPERATOR_TOKEN),
        None,
    );
    assert_eq!(status, 200);
    trail
        .lines()
        .find(|line| line.starts_with(&format!("{{\"seq\":{seq},")))
        .unwrap_or_else(|| panic!("record {seq} in the trail"))
        .to_owned()
}

fn zhongtai(args: &[&str]) -> (bool, String) {
    let output = support::zhongtai_in(None, args);
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), printed)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn receipts_are_proved_checkpoints_extend_and_a_witness_refuses_a_rewritten_history() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let witness_key = work.path().join("witness.key");
    let witness = HostKey::create(&witness_key).unwrap();
    let witness_pub = write(
        work.path(),
        "witness.pub",
        &(witness.public().to_text() + "\n"),
    );
    let witness_arg = format!("witness.taxation={witness_pub}");
    let tokens = write(
        work.path(),
        "admin-tokens.toml",
        &format!(
            "[departments]\npublic-security = \"{SECURITY_TOKEN}\"\ntaxation = \"{TAXATION_TOKEN}\"\n"
        ),
    );
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let platform = Platform::start_with(
        &support::root().join("examples"),
        data.path(),
        &["--witness", &witness_arg, "--admin-tokens", &tokens],
    );
    let host_pub = data.path().join("audit/host.pub").display().to_string();
    let key = VerifyKey::from_file(Path::new(&host_pub)).unwrap();

    // A citizen's answer carries its receipt; the record is proved in the
    // log with no token, and the proof holds hashes only.
    let (seq, origin) = receipt(&platform);
    assert!(origin.starts_with("zhongtai/audit/"), "{origin}");
    let first = checkpoint_covering(&platform, seq);
    assert_eq!(head(&first).origin, origin);
    note::open(&first, &origin, &key).unwrap();
    let (status, text) = get_text(&platform, &format!("/audit/v1/proof/inclusion?seq={seq}"));
    assert_eq!(status, 200, "{text}");
    assert!(
        !text.contains("public-security") && !text.contains("\"record\""),
        "{text}"
    );
    let mut proof: InclusionProof = serde_json::from_str(&text).unwrap();
    assert_eq!((proof.seq, &proof.origin), (seq, &origin));
    proof.check(&key).unwrap();
    // The department (or an auditor) holding the record's line checks it
    // is the one the log holds, offline, with the CLI.
    let line = record_line(&platform, seq);
    let proof_file = write(work.path(), "inclusion.json", &text);
    let record_file = write(work.path(), "record.jsonl", &(line.clone() + "\n"));
    let (ok, said) = zhongtai(&[
        "audit",
        "check-proof",
        &proof_file,
        "--key",
        &host_pub,
        "--record",
        &record_file,
    ]);
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!(
            "the record given is record {seq} of the log {origin}"
        )),
        "{said}"
    );
    // A changed record, a changed proof, another key: refused.
    let changed = write(
        work.path(),
        "changed.jsonl",
        &line.replacen("whoami", "whoamI", 1),
    );
    let (ok, said) = zhongtai(&[
        "audit",
        "check-proof",
        &proof_file,
        "--key",
        &host_pub,
        "--record",
        &changed,
    ]);
    assert!(
        !ok && said.contains("does NOT verify") && said.contains("does not hash to the leaf"),
        "{said}"
    );
    if !proof.proof.is_empty() {
        proof.proof[0] = proof.proof[0].replace(&proof.proof[0][..4], "AAAA");
        let tampered = write(
            work.path(),
            "tampered.json",
            &serde_json::to_string(&proof).unwrap(),
        );
        let (ok, said) = zhongtai(&["audit", "check-proof", &tampered, "--key", &host_pub]);
        assert!(!ok && said.contains("does not lead from leaf"), "{said}");
    }
    // The department asks, with its own admin token, for its record with
    // the proof; another department's token, or none, is refused.
    let path = format!("/admin/v1/audit/records/{seq}/proof");
    let (status, text) = platform.admin("GET", &path, Some(SECURITY_TOKEN), None);
    assert_eq!(status, 200, "{text}");
    let own: InclusionProof = serde_json::from_str(&text).unwrap();
    assert_eq!(own.record.as_deref(), Some(line.as_str()));
    own.check(&key).unwrap();
    let (status, text) = platform.admin("GET", &path, Some(TAXATION_TOKEN), None);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("not one of taxation's"), "{text}");
    assert_eq!(platform.admin("GET", &path, None, None).0, 401);

    let stranger = HostKey::generate().unwrap().public().to_base64();
    let (ok, said) = zhongtai(&["audit", "check-proof", &proof_file, "--key", &stranger]);
    assert!(
        !ok && said.contains("not signed by the given key"),
        "{said}"
    );

    // Asking wrongly is answered with what was wrong.
    for (path, status, says) in [
        ("/audit/v1/proof/inclusion", 400, "needs seq=<number>"),
        (
            "/audit/v1/proof/inclusion?seq=abc",
            400,
            "is not a record count",
        ),
        (
            "/audit/v1/proof/inclusion?seq=1&verbose=1",
            400,
            "unknown query parameter",
        ),
        (
            "/audit/v1/proof/inclusion?seq=99999999",
            404,
            "record 99999999 is not in the tree",
        ),
        (
            "/audit/v1/proof/inclusion?seq=0&size=99999999",
            404,
            "ask for a tree of at most",
        ),
        ("/audit/v1/proof/consistency?from=0", 404, "0 is not one"),
        (
            "/audit/v1/checkpoint/witnessed",
            404,
            "no witness has cosigned",
        ),
    ] {
        let (got, text) = get_text(&platform, path);
        assert_eq!(got, status, "{path}: {text}");
        assert!(text.contains(says), "{path}: {text}");
    }

    // The witness cosigns the checkpoint it sees first, and the host
    // publishes the cosignature.
    let state = work.path().join("witness-state.json").display().to_string();
    let witness_key = witness_key.display().to_string();
    let witness_run = |platform: &Platform| {
        zhongtai(&[
            "witness",
            "--log",
            &platform.url,
            "--log-key",
            &host_pub,
            "--name",
            "witness.taxation",
            "--key",
            &witness_key,
            "--state",
            &state,
            "--once",
        ])
    };
    let (ok, said) = witness_run(&platform);
    assert!(
        ok && said.contains("the first checkpoint this witness sees"),
        "{said}"
    );
    let (status, witnessed) = get_text(&platform, "/audit/v1/checkpoint/witnessed");
    assert_eq!(status, 200, "{witnessed}");
    assert!(
        note::cosigned(&witnessed, "witness.taxation", &witness.public()).is_ok(),
        "{witnessed}"
    );
    let witnessed_file = write(work.path(), "witnessed.txt", &witnessed);
    let (ok, said) = zhongtai(&[
        "audit",
        "check-proof",
        &witnessed_file,
        "--key",
        &host_pub,
        "--witness",
        &witness_arg,
    ]);
    assert!(
        ok && said.contains("cosigned by witness.taxation"),
        "{said}"
    );
    // A cosignature by a key the host does not know, or of a checkpoint
    // it never signed: refused.
    let body = note::body(&first).unwrap();
    let by_stranger =
        first.clone() + &note::cosign(body, "witness.taxation", &HostKey::generate().unwrap(), 1);
    let forged = note::sign(
        &note::TreeHead {
            size: 3,
            ..head(&first)
        }
        .body(),
        &origin,
        &HostKey::generate().unwrap(),
    );
    for (note, status) in [
        (by_stranger, 403),
        (forged, 409),
        ("not a note".to_owned(), 409),
    ] {
        let mut response = platform
            .agent
            .post(format!("{}/audit/v1/cosignature", platform.url))
            .send(note)
            .unwrap();
        let text = response.body_mut().read_to_string().unwrap();
        assert_eq!(response.status().as_u16(), status, "{text}");
    }

    // More answers; the auditor holding the first checkpoint checks the
    // new one extends it, and the witness cosigns it for the same reason.
    let mut later = seq;
    for _ in 0..5 {
        later = receipt(&platform).0;
    }
    let second = checkpoint_covering(&platform, later);
    let (status, text) = get_text(
        &platform,
        &format!("/audit/v1/proof/consistency?from={}", head(&first).size),
    );
    assert_eq!(status, 200, "{text}");
    let consistency: ConsistencyProof = serde_json::from_str(&text).unwrap();
    assert!(consistency.to >= head(&second).size);
    let old = write(work.path(), "first.txt", &first);
    let proof_file = write(work.path(), "consistency.json", &text);
    let (ok, said) = zhongtai(&[
        "audit",
        "check-proof",
        &proof_file,
        "--key",
        &host_pub,
        "--old",
        &old,
    ]);
    assert!(ok && said.contains("extends the checkpoint of"), "{said}");
    let (ok, said) = witness_run(&platform);
    assert!(ok && said.contains("extends"), "{said}");
    let cosigned_size: u64 =
        serde_json::from_str::<Json>(&std::fs::read_to_string(&state).unwrap()).unwrap()["size"]
            .as_u64()
            .unwrap();

    // Offline on the host's machine, the operator proves the same record
    // with its line, and the proof checks.
    let audit_dir = data.path().join("audit").display().to_string();
    let (ok, offline) = zhongtai(&[
        "audit",
        "prove",
        "--dir",
        &audit_dir,
        "--seq",
        &seq.to_string(),
    ]);
    assert!(ok, "{offline}");
    let offline_proof: InclusionProof = serde_json::from_str(&offline).unwrap();
    assert_eq!(offline_proof.record.as_deref(), Some(line.as_str()));
    let offline_file = write(work.path(), "offline.json", &offline);
    let (ok, said) = zhongtai(&["audit", "check-proof", &offline_file, "--key", &host_pub]);
    assert!(ok && said.contains(&format!("record {seq}")), "{said}");

    // The operator rewrites history: a new trail with the same key (and so
    // the same origin), grown past what the witness cosigned.
    drop(platform);
    let audit = data.path().join("audit");
    for entry in std::fs::read_dir(&audit).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !["host.key", "digest.key"].contains(&name.as_str()) {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    let platform = Platform::start_with(
        &support::root().join("examples"),
        data.path(),
        &["--witness", &witness_arg],
    );
    let mut last = 0;
    while last <= cosigned_size {
        last = receipt(&platform).0;
    }
    checkpoint_covering(&platform, last);
    let (ok, said) = witness_run(&platform);
    assert!(!ok, "{said}");
    assert!(
        said.contains("REFUSED") && said.contains("does not extend the one of"),
        "{said}"
    );
    // Nothing was cosigned: the witnessed checkpoint is not published,
    // and the witness still holds the last good one.
    assert_eq!(get_text(&platform, "/audit/v1/checkpoint/witnessed").0, 404);
    let kept: Json = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(kept["size"].as_u64(), Some(cosigned_size));
    let evidence = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains(".refused-"));
    assert!(evidence, "the refused checkpoint is kept as evidence");
}
