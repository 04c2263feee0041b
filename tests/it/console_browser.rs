//! The web console in headless Chromium over WebDriver: log in with a
//! token, see the departments, roll one back, see the rollback in the
//! audit view; and, without a browser, what the console refuses.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};

use crate::support;
use crate::support::platform::{OPERATOR_TOKEN, Platform};

const TAXATION_TOKEN: &str = "tx-9Pk3Vb7Nz1Qw5Rm8Gc2Hy6Lf0Dj4Ts";

/// Chromium and its WebDriver, when the machine has them.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |variable: &str, names: &[&str]| -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(variable) {
            return Some(PathBuf::from(path));
        }
        names.iter().find_map(|name| {
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    };
    Some((
        find(
            "ZHONGTAI_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        )?,
        find("ZHONGTAI_CHROMEDRIVER", &["chromedriver"])?,
    ))
}

/// `chromedriver` on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(program: &PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(format!("{url}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }
}

fn tokens_file(dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("admin-tokens.toml");
    std::fs::write(
        &path,
        format!("[departments]\ntaxation = \"{TAXATION_TOKEN}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The console's session cookie for `token`, logging in as a browser
/// would.
fn log_in(platform: &Platform, token: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let response = agent
        .post(format!("{}/console/login", platform.admin_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("token={token}"))
        .unwrap();
    let cookie = response.headers().get("set-cookie")?.to_str().ok()?;
    Some(cookie.split(';').next()?.to_owned())
}

/// GET or POST (with a form `body`) a console page with `cookie`; the
/// status and the page.
fn console(
    platform: &Platform,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let url = format!("{}{path}", platform.admin_url);
    let mut response = match method {
        "GET" => {
            let mut request = agent.get(&url);
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            request.call()
        }
        _ => {
            let mut request = agent
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded");
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            request.send(body)
        }
    }
    .unwrap();
    (
        response.status().as_u16(),
        response.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn the_console_refuses_what_its_tokens_do_not_open() {
    let data = tempfile::tempdir().unwrap();
    let tokens = tokens_file(data.path());
    let platform = Platform::start_with(
        &support::root().join("examples"),
        data.path(),
        &["--admin-tokens", tokens.to_str().unwrap()],
    );
    // No session: to the login page; a wrong token opens nothing.
    let (status, _) = console(&platform, "GET", "/console", None, "");
    assert_eq!(status, 303);
    let (status, page) = console(
        &platform,
        "POST",
        "/console/login",
        None,
        "token=not-a-token-of-this-host-0123456789",
    );
    assert_eq!(status, 401);
    assert!(page.contains("That token opens nothing here."), "{page}");
    assert!(log_in(&platform, "not-a-token-of-this-host-0123456789").is_none());
    let (status, _) = console(
        &platform,
        "GET",
        "/console",
        Some("zhongtai_console=forged"),
        "",
    );
    assert_eq!(status, 303, "a made-up session is no session");

    // A department's token: its own department only.
    let taxation = log_in(&platform, TAXATION_TOKEN).unwrap();
    let (status, page) = console(&platform, "GET", "/console", Some(&taxation), "");
    assert_eq!(status, 200);
    assert!(page.contains("/console/departments/taxation"), "{page}");
    assert!(
        !page.contains("market-regulation") && !page.contains("id=\"metrics\""),
        "{page}"
    );
    for path in [
        "/console/departments/market-regulation",
        "/console/audit",
        "/console/policy",
        "/console/registry",
    ] {
        let (status, _) = console(&platform, "GET", path, Some(&taxation), "");
        assert_eq!(status, 403, "{path}");
    }
    let (status, _) = console(
        &platform,
        "POST",
        "/console/departments/market-regulation/rollback",
        Some(&taxation),
        "csrf=x",
    );
    assert_eq!(status, 403);

    // A form without the session's anti-forgery value changes nothing.
    let manifest =
        std::fs::read_to_string(support::root().join("examples/taxation/zhongtai.toml")).unwrap();
    let (status, _) = platform.admin(
        "POST",
        "/admin/v1/departments/taxation/manifest",
        Some(OPERATOR_TOKEN),
        Some(&manifest),
    );
    assert_eq!(status, 200);
    let operator = log_in(&platform, OPERATOR_TOKEN).unwrap();
    let (status, page) = console(
        &platform,
        "POST",
        "/console/departments/taxation/rollback",
        Some(&operator),
        "csrf=guessed",
    );
    assert_eq!(status, 403, "{page}");
    let (_, page) = console(
        &platform,
        "GET",
        "/console/departments/taxation",
        Some(&operator),
        "",
    );
    assert!(
        page.contains("id=\"revision\">4<"),
        "still the upgrade in service: {page}"
    );
    // Every page forbids framing and scripts.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(format!("{}/console/login", platform.admin_url))
        .call()
        .unwrap();
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"));
}

#[test]
fn an_operator_logs_in_rolls_a_department_back_and_sees_it_in_the_audit_view() {
    let Some((chromium, chromedriver)) = browser() else {
        assert!(
            std::env::var_os("ZHONGTAI_REQUIRE_CHROMIUM").is_none(),
            "Chromium and chromedriver are required here (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no chromium and chromedriver on this machine");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start(&support::root().join("examples"), data.path());
    // An upgrade of taxation, so that there is something to roll back to.
    let manifest =
        std::fs::read_to_string(support::root().join("examples/taxation/zhongtai.toml")).unwrap();
    let (status, body) = platform.admin(
        "POST",
        "/admin/v1/departments/taxation/manifest",
        Some(OPERATOR_TOKEN),
        Some(&manifest),
    );
    assert_eq!(status, 200, "{body}");
    let driver = Driver::start(&chromedriver);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let browser = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a Chromium session");
        let run = async {
            browser.goto(&format!("{}/console", platform.admin_url)).await?;
            assert!(browser.current_url().await?.path().ends_with("/console/login"));
            browser.find(Locator::Id("token")).await?.send_keys(OPERATOR_TOKEN).await?;
            browser.find(Locator::Id("login")).await?.click().await?;
            let departments = browser.wait().for_element(Locator::Id("departments")).await?.text().await?;
            for department in ["market-regulation", "public-security", "taxation"] {
                assert!(departments.contains(department), "{departments}");
            }
            assert_eq!(browser.find(Locator::Id("who")).await?.text().await?, "operator");
            let glance = browser.find(Locator::Id("metrics")).await?.text().await?;
            assert!(glance.contains("Deploys / upgrades / rollbacks 3 / 1 / 0"), "{glance}");

            browser.find(Locator::LinkText("taxation")).await?.click().await?;
            let revision = browser.wait().for_element(Locator::Id("revision")).await?.text().await?;
            assert_eq!(revision, "4");
            let services = browser.find(Locator::Id("services")).await?.text().await?;
            assert!(services.contains("record-arrears") && services.contains("record arrears"), "{services}");
            browser.find(Locator::Id("rollback")).await?.click().await?;
            // The rollback's answer is the department's page again.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let shown = match browser.find(Locator::Id("revision")).await {
                    Ok(element) => element.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                if shown == "3" {
                    break;
                }
                assert!(Instant::now() < deadline, "still revision {shown:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let changes = browser.find(Locator::Id("changes")).await?.text().await?;
            let actions: Vec<&str> = changes.lines().skip(1).filter_map(|l| l.split_whitespace().nth(2)).collect();
            assert_eq!(actions, ["rollback", "upgrade", "deploy"], "{changes}");
            if let Some(path) = std::env::var_os("ZHONGTAI_CONSOLE_SCREENSHOT") {
                std::fs::write(path, browser.screenshot().await?).unwrap();
            }

            browser.find(Locator::LinkText("This department in the audit trail")).await?.click().await?;
            let records = browser.wait().for_element(Locator::Id("records")).await?.text().await?;
            let newest = records.lines().nth(1).unwrap_or_default();
            assert!(
                newest.contains("rollback") && newest.contains("taxation") && newest.contains("operator"),
                "the newest record is the rollback: {records}"
            );
            browser.find(Locator::Id("verify")).await?.click().await?;
            let verdict = browser.wait().for_element(Locator::Id("verdict")).await?.text().await?;
            assert!(verdict.starts_with("The trail verifies"), "{verdict}");
            Ok::<(), fantoccini::error::CmdError>(())
        };
        let outcome = run.await;
        let _ = browser.close().await;
        outcome.expect("the console in Chromium");
    });
    // The rollback is in service for the departments' callers too.
    let (status, departments) =
        platform.admin("GET", "/admin/v1/departments", Some(OPERATOR_TOKEN), None);
    assert_eq!(status, 200);
    let departments: serde_json::Value = serde_json::from_str(&departments).unwrap();
    assert_eq!(departments["departments"]["taxation"]["revision"], 3);
}
