//! The registry over HTTP: `zhongtai registry serve` on a loopback port,
//! driven by the CLI against its URL, and its JSON errors.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const TOKEN: &str = "publisher-token-for-tests";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

fn serve_with(dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .args(extra)
        .env("ZHONGTAI_REGISTRY_TOKEN", TOKEN)
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the registry");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("registry exited before serving")
            .unwrap();
        if let Some(at) = line.find("http://") {
            break line[at..].trim().to_owned();
        }
    };
    Server { child, url }
}

fn zhongtai(args: &[&str], token: Option<&str>, cwd: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zhongtai"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("ZHONGTAI_REGISTRY_TOKEN");
    if let Some(token) = token {
        command.env("ZHONGTAI_REGISTRY_TOKEN", token);
    }
    command.output().expect("running zhongtai")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn publish_resolve_fetch_and_yank_over_http() {
    let registry_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = serve(registry_dir.path());
    let url = server.url.as_str();
    let cwd = work.path();
    assert!(
        zhongtai(&["keygen", "--out", "publisher.key"], None, cwd)
            .status
            .success()
    );

    let auth = support::guests()["zhongtai-auth"]
        .to_str()
        .unwrap()
        .to_owned();
    let publish = |token| {
        zhongtai(
            &[
                "publish",
                &auth,
                "--package",
                "zhongtai:auth",
                "--version",
                "1.0.0",
                "--key",
                "publisher.key",
                "--registry",
                url,
            ],
            token,
            cwd,
        )
    };
    let refused = publish(None);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("a valid publisher token is required"),
        "{}",
        text(&refused)
    );
    let wrong = publish(Some("guess"));
    assert!(text(&wrong).contains("unauthorized"), "{}", text(&wrong));
    let published = publish(Some(TOKEN));
    assert!(published.status.success(), "{}", text(&published));
    assert!(text(&published).contains("published zhongtai:auth@1.0.0 sha256:"));
    assert!(text(&publish(Some(TOKEN))).contains("nothing changed"));

    let found = zhongtai(&["search", "auth", "--registry", url], None, cwd);
    assert!(
        text(&found).contains("zhongtai:auth  1.0.0  (1 versions)"),
        "{}",
        text(&found)
    );
    let resolved = zhongtai(
        &["resolve", "zhongtai:auth", "^1", "--registry", url],
        None,
        cwd,
    );
    assert!(
        text(&resolved).starts_with("zhongtai:auth@1.0.0 sha256:"),
        "{}",
        text(&resolved)
    );
    let fetched = zhongtai(
        &[
            "fetch",
            "zhongtai:auth",
            "^1",
            "-o",
            "auth.wasm",
            "--trust",
            "publisher.pub",
            "--registry",
            url,
        ],
        None,
        cwd,
    );
    assert!(fetched.status.success(), "{}", text(&fetched));
    assert_eq!(
        std::fs::read(cwd.join("auth.wasm")).unwrap(),
        std::fs::read(&auth).unwrap()
    );

    let yanked = zhongtai(
        &["yank", "zhongtai:auth@1.0.0", "--registry", url],
        Some(TOKEN),
        cwd,
    );
    assert!(
        text(&yanked).contains("zhongtai:auth@1.0.0 yanked"),
        "{}",
        text(&yanked)
    );
    let none = zhongtai(
        &["resolve", "zhongtai:auth", "^1", "--registry", url],
        None,
        cwd,
    );
    assert!(text(&none).contains("no published, non-yanked version of zhongtai:auth matches ^1 (published: 1.0.0 (yanked))"), "{}", text(&none));
    let locked = zhongtai(
        &[
            "fetch",
            "zhongtai:auth",
            "=1.0.0",
            "-o",
            "locked.wasm",
            "--registry",
            url,
        ],
        None,
        cwd,
    );
    assert!(
        locked.status.success(),
        "a yanked version stays fetchable: {}",
        text(&locked)
    );
}

#[test]
fn errors_are_json_with_precise_codes() {
    let registry_dir = tempfile::tempdir().unwrap();
    let server = serve(registry_dir.path());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = |path: &str| {
        let mut response = agent.get(&format!("{}{path}", server.url)).call().unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        (status, body)
    };
    let (status, body) = get("/api/v1/packages/zhongtai:nothing");
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not-found");
    let (status, body) = get("/api/v1/packages/NotAName");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid-name");
    let (status, body) = get("/api/v1/blobs/sha256:1234");
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("64 lowercase hex digits")
    );

    let core_module = agent
        .put(&format!(
            "{}/api/v1/packages/example:core/1.0.0",
            server.url
        ))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .send(&b"\0asm\x01\0\0\0"[..])
        .unwrap();
    assert_eq!(core_module.status().as_u16(), 422);
    let stranger = std::fs::read(&support::guests()["fixture-stranger"]).unwrap();
    let mut refused = agent
        .put(&format!(
            "{}/api/v1/packages/example:stranger/0.1.0",
            server.url
        ))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .send(&stranger[..])
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&refused.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "missing-imports");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("example:stranger/oracle@0.1.0")
    );
}

/// The token of a publisher that may publish in the `example` namespace only.
const EXAMPLE_TOKEN: &str = "example-publisher-9Kq2Zx7Lw3Rv8Bn6Hc1Jd5Sg0";

#[test]
fn a_publisher_token_covers_its_namespaces_and_is_checked_before_the_body() {
    let registry_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path();
    let publishers = cwd.join("publishers.toml");
    std::fs::write(
        &publishers,
        format!(
            "[[publisher]]\nname = \"examples team\"\ntoken = \"{EXAMPLE_TOKEN}\"\nnamespaces = [\"example\"]\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &publishers,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let server = serve_with(
        registry_dir.path(),
        &["--publishers", publishers.to_str().unwrap()],
    );
    let url = server.url.as_str();
    let publish = |file: &str, package: &str, token: &str| {
        zhongtai(
            &[
                "publish",
                file,
                "--package",
                package,
                "--version",
                "1.0.0",
                "--registry",
                url,
            ],
            Some(token),
            cwd,
        )
    };
    let sampler = support::guests()["fixture-sampler"]
        .to_str()
        .unwrap()
        .to_owned();
    // The examples team publishes in example, not in zhongtai.
    let own = publish(&sampler, "example:sampler", EXAMPLE_TOKEN);
    assert!(own.status.success(), "{}", text(&own));
    let other = publish(&sampler, "zhongtai:sampler", EXAMPLE_TOKEN);
    assert!(!other.status.success());
    assert!(
        text(&other).contains("covers example, not the namespace zhongtai"),
        "{}",
        text(&other)
    );
    let yank = zhongtai(
        &["yank", "zhongtai:auth@1.0.0", "--registry", url],
        Some(EXAMPLE_TOKEN),
        cwd,
    );
    assert!(
        text(&yank).contains("forbidden") || text(&yank).contains("covers example"),
        "{}",
        text(&yank)
    );

    // A 30 MiB upload with a wrong token is refused from its head: the
    // client hears 401, not a broken connection, and quickly.
    let big = cwd.join("big.wasm");
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.resize(30 * 1024 * 1024, 0);
    std::fs::write(&big, bytes).unwrap();
    let started = std::time::Instant::now();
    let refused = publish(
        big.to_str().unwrap(),
        "example:big",
        "not-a-token-of-anyone",
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("a valid publisher token is required"),
        "{}",
        text(&refused)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused after {:?}",
        started.elapsed()
    );
}
