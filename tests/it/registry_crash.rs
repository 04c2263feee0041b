//! A publish killed with SIGKILL at any moment leaves either the whole
//! version or none of it: after a restart the registry opens and every
//! listed version's blob is present and intact. `ZHONGTAI_CRASH_ROUNDS`
//! sets how many kills (default 10).

use crate::support;

use std::os::unix::process::CommandExt;
use std::process::Command;

use zhongtai_registry::{LocalRegistry, PackageName, Registry, TrustPolicy, fetch};

/// `bytes` with a custom section appended, so that every version differs.
fn with_custom_section(bytes: &[u8], label: &str) -> Vec<u8> {
    let name = b"zhongtai-test";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(label.as_bytes());
    payload.extend(std::iter::repeat_n(0u8, 64 * 1024));
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    let mut size = payload.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        out.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    out.extend(payload);
    out
}

#[test]
fn a_killed_publish_leaves_the_whole_version_or_none() {
    let auth = std::fs::read(&support::guests()["zhongtai-auth"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    const VERSIONS: usize = 150;
    for i in 1..=VERSIONS {
        std::fs::write(
            work.path().join(format!("auth-{i}.wasm")),
            with_custom_section(&auth, &i.to_string()),
        )
        .unwrap();
    }
    let (mut survivors, mut interrupted) = (0, 0);
    let rounds = crate::state_crash::crash_rounds(10);
    let mut moments = crate::state_crash::Moments(0xc0ffee ^ rounds);
    for round in 0..rounds {
        let registry_dir = work.path().join(format!("registry-{round}"));
        let script = format!(
            "for i in $(seq 1 {VERSIONS}); do \"$ZHONGTAI\" publish auth-$i.wasm --package zhongtai:auth --version 1.0.$i --registry {} >/dev/null 2>&1 || exit 1; done",
            registry_dir.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .current_dir(work.path())
            .env("ZHONGTAI", env!("CARGO_BIN_EXE_zhongtai"))
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(moments.next(50, 900));
        // A restart comes after the killed processes are gone.
        crate::state_crash::kill_group(&mut child);

        // The restart: the registry opens, and everything it lists is whole.
        let registry = LocalRegistry::open(
            &registry_dir,
            zhongtai_runtime::platform::provided_interfaces(),
        )
        .expect("the registry opens after a crash");
        let versions = match registry.package(&PackageName::parse("zhongtai:auth").unwrap()) {
            Ok(info) => info.versions,
            Err(e) if e.code() == "not-found" => Vec::new(),
            Err(e) => panic!("round {round}: {e}"),
        };
        for (index, record) in versions.iter().enumerate() {
            assert_eq!(
                record.version.to_string(),
                format!("1.0.{}", index + 1),
                "round {round}: versions are contiguous"
            );
            let bytes = fetch(&registry, record, &TrustPolicy::default()).unwrap_or_else(|e| {
                panic!(
                    "round {round}: {} is listed but not whole: {e}",
                    record.version
                )
            });
            let expected =
                std::fs::read(work.path().join(format!("auth-{}.wasm", index + 1))).unwrap();
            assert_eq!(bytes, expected);
        }
        // The audit trail survived too, and records every listed version.
        let audit = registry.store().audit_dir();
        let trail = zhongtai_audit::Trail::read(audit).unwrap();
        let key = zhongtai_audit::VerifyKey::from_file(&audit.join("host.pub")).unwrap();
        zhongtai_audit::verify(&trail, &key)
            .unwrap_or_else(|problem| panic!("round {round}: {problem}"));
        let published: Vec<String> = trail
            .select(&Default::default())
            .iter()
            .filter(|r| r.entry.action.as_deref() == Some("publish"))
            .filter_map(|r| r.entry.version.clone())
            .collect();
        for record in &versions {
            assert!(
                published.contains(&record.version.to_string()),
                "round {round}: {} is listed without an audit record",
                record.version
            );
        }
        survivors += versions.len();
        interrupted += usize::from(versions.len() < VERSIONS);
    }
    assert!(
        interrupted as u64 * 2 >= rounds,
        "only {interrupted} of {rounds} kills came before the last publish; too little was tested"
    );
    assert!(
        survivors > 0,
        "no round got as far as one version; nothing was tested"
    );
}
