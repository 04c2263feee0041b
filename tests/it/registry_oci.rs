//! An OCI registry (Debian's `docker-registry`, distribution 2.8, started
//! here on a loopback port): publish, resolve, yank, fetch and `up` through
//! `oci://`, and what zhongtai writes read back with `oci-client` alone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::platform::Platform;
use crate::support::succeeded;

/// `docker-registry serve` on a free loopback port, storing in a temporary
/// directory; killed when dropped.
struct Distribution {
    child: Child,
    address: String,
    _store: tempfile::TempDir,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn docker_registry() -> Option<PathBuf> {
    std::env::var_os("ZHONGTAI_DOCKER_REGISTRY")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/docker-registry")).filter(|p| p.is_file()))
}

impl Distribution {
    fn start(program: &Path) -> Self {
        let store = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = store.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                store.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(format!("http://{address}/v2/")).call().is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            address,
            _store: store,
        }
    }
}

fn zhongtai(args: &[&str]) -> Output {
    support::zhongtai_in(None, args)
}

/// The platform's capabilities with the versions their WIT packages have.
const CAPABILITIES: [(&str, &str, &str); 4] = [
    ("zhongtai-auth", "zhongtai:auth", "1.1.0"),
    ("zhongtai-license", "zhongtai:license", "1.1.0"),
    ("zhongtai-payment", "zhongtai:payment", "1.0.0"),
    ("zhongtai-credit", "zhongtai:credit", "1.0.0"),
];

#[test]
fn components_go_through_an_oci_registry_and_other_tools_can_read_them() {
    let Some(program) = docker_registry() else {
        assert!(
            std::env::var_os("ZHONGTAI_REQUIRE_OCI").is_none(),
            "docker-registry is required here (apt-get install docker-registry)"
        );
        eprintln!("skipped: no docker-registry on this machine");
        return;
    };
    let distribution = Distribution::start(&program);
    let registry = format!("oci://{}/zhongtai", distribution.address);
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("publisher.key");
    succeeded(zhongtai(&["keygen", "--out", key.to_str().unwrap()]));

    // Published, signed, as the version of the contract each exports.
    let mut files = Vec::new();
    for (guest, package, version) in CAPABILITIES {
        let file = support::guests()[guest].to_str().unwrap().to_owned();
        let said = succeeded(zhongtai(&[
            "publish",
            &file,
            "--package",
            package,
            "--version",
            version,
            "--key",
            key.to_str().unwrap(),
            "--registry",
            &registry,
        ]));
        assert!(
            said.contains(&format!("published {package}@{version} sha256:")),
            "{said}"
        );
        files.push(file);
    }
    // A version never changes: the same bytes again are fine, others are refused.
    succeeded(zhongtai(&[
        "publish",
        &files[0],
        "--package",
        "zhongtai:auth",
        "--version",
        "1.1.0",
        "--registry",
        &registry,
    ]));
    let changed = zhongtai(&[
        "publish",
        &files[1],
        "--package",
        "zhongtai:auth",
        "--version",
        "1.1.0",
        "--registry",
        &registry,
    ]);
    assert!(!changed.status.success());
    assert!(String::from_utf8_lossy(&changed.stderr).contains("already published with digest"));

    // Resolved over the tags, yanked and restored.
    let auth = support::guest_bytes("zhongtai-auth");
    let digest = format!("sha256:{}", zhongtai_audit::sha256_hex(&auth));
    let resolved = succeeded(zhongtai(&[
        "resolve",
        "zhongtai:auth",
        "^1",
        "--registry",
        &registry,
    ]));
    assert_eq!(resolved.trim(), format!("zhongtai:auth@1.1.0 {digest}"));
    succeeded(zhongtai(&[
        "yank",
        "zhongtai:auth@1.1.0",
        "--registry",
        &registry,
    ]));
    let refused = zhongtai(&["resolve", "zhongtai:auth", "^1", "--registry", &registry]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("1.1.0 (yanked)"));
    let pinned = succeeded(zhongtai(&[
        "resolve",
        "zhongtai:auth",
        "=1.1.0",
        "--registry",
        &registry,
    ]));
    assert!(
        pinned.contains(&digest),
        "a yanked version stays fetchable by its exact version"
    );
    succeeded(zhongtai(&[
        "yank",
        "zhongtai:auth@1.1.0",
        "--undo",
        "--registry",
        &registry,
    ]));
    let fetched = work.path().join("auth.wasm");
    succeeded(zhongtai(&[
        "fetch",
        "zhongtai:auth",
        "^1",
        "--out",
        fetched.to_str().unwrap(),
        "--trust",
        key.with_extension("pub").to_str().unwrap(),
        "--registry",
        &registry,
    ]));
    assert_eq!(std::fs::read(&fetched).unwrap(), auth);

    // Another tool reads what zhongtai wrote: the wasm artifact layout.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::Http,
            ..Default::default()
        });
        let reference: oci_client::Reference =
            format!("{}/zhongtai/zhongtai/auth:1.1.0", distribution.address)
                .parse()
                .unwrap();
        let (manifest, _, config) = client
            .pull_manifest_and_config(&reference, &oci_client::secrets::RegistryAuth::Anonymous)
            .await
            .unwrap();
        assert_eq!(
            manifest.config.media_type,
            "application/vnd.wasm.config.v0+json"
        );
        assert_eq!(manifest.layers.len(), 1);
        assert_eq!(manifest.layers[0].media_type, "application/wasm");
        assert_eq!(manifest.layers[0].digest, digest);
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["architecture"], "wasm");
        assert!(
            config["component"]["exports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "zhongtai:auth/authn@1.1.0"),
            "{config}"
        );
        let annotations = manifest.annotations.unwrap();
        assert_eq!(annotations["dev.zhongtai.yanked"], "false");
        assert!(annotations["dev.zhongtai.signature"].contains("signature"));
        let mut layer = Vec::new();
        client
            .pull_blob(&reference, &manifest.layers[0], &mut layer)
            .await
            .unwrap();
        assert_eq!(layer, auth);
        let tags = client
            .list_tags(
                &reference,
                &oci_client::secrets::RegistryAuth::Anonymous,
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(tags.tags, ["1.1.0"]);
    });

    // The platform deploys from it, trusting the publisher's key.
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start_with(
        &support::root().join("examples"),
        data.path(),
        &[
            "--registry",
            &registry,
            "--trust",
            key.with_extension("pub").to_str().unwrap(),
        ],
    );
    let token = platform.register_and_login(
        "/public-security/citizens",
        "11010519491231002X",
        "Li Lei",
        "tea-and-silk-2026",
    );
    let (status, caller) = platform.send("GET", "/public-security/whoami", Some(&token), None);
    assert_eq!(status, 200, "{caller}");
}
