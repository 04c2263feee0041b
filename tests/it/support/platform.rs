//! `zhongtai up` as a child process, for end-to-end tests over HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value as Json;

/// The first admin official of market regulation, which the operator
/// creates before the host starts ([`register_official_offline`]).
pub const MARKET_ADMIN: &str = "market-regulation/A0001";
/// The first admin official of public security, likewise.
pub const SECURITY_ADMIN: &str = "public-security/A0001";

/// Test configuration in `data`: cheap argon2, and [`MARKET_ADMIN`] and
/// [`SECURITY_ADMIN`] as the ids that hold `admin` when registered.
pub fn write_config(data: &Path) {
    std::fs::write(
        data.join("config.toml"),
        format!(
            "[components.\"zhongtai:auth\"]\nargon2-memory-kib = 256\nargon2-iterations = 1\nbootstrap-admins = \"{MARKET_ADMIN},{SECURITY_ADMIN}\"\n"
        ),
    )
    .unwrap();
}

/// Registers an official of `department` through the auth component over
/// the data directory `data`, as the operator does before the host starts
/// (`zhongtai call … --department`): the first admin of a department.
pub fn register_official_offline(data: &Path, id: &str, name: &str, password: &str) {
    write_config(data);
    let department = id.split_once('/').map_or(id, |(d, _)| d);
    let auth = &super::guests()["zhongtai-auth"];
    let args = serde_json::json!({"kind": "official", "id": id, "display-name": name, "password": password});
    let output = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .arg("call")
        .arg(auth)
        .args([
            "authn.register",
            "--package",
            "zhongtai:auth",
            "--department",
            department,
            "--data-dir",
        ])
        .arg(data)
        .arg(args.to_string())
        .output()
        .expect("running zhongtai call");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && printed.contains("\"ok\""),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The operator's admin token of every [`Platform`].
pub const OPERATOR_TOKEN: &str = "op-7Qm2xK9vR4tZ8wL3nB6cH1jD5sG0fP";

/// `zhongtai up` running in a child process on a loopback port.
pub struct Platform {
    /// The process; dropping the platform kills it (SIGKILL).
    pub child: Child,
    /// `http://127.0.0.1:<port>`: the departments' services.
    pub url: String,
    /// `http://127.0.0.1:<port>`: the admin API, whose operator token is
    /// [`OPERATOR_TOKEN`].
    pub admin_url: String,
    /// An agent that returns error statuses as responses.
    pub agent: ureq::Agent,
    /// What `up` printed before it served.
    pub log: Vec<String>,
    /// What it printed since.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Platform {
    /// Serves the departments under `departments` with state in `data`.
    pub fn start(departments: &Path, data: &Path) -> Self {
        Self::start_with(departments, data, &[])
    }

    /// [`Platform::start`] with extra `up` arguments.
    pub fn start_with(departments: &Path, data: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(departments, data, extra, &[])
    }

    /// [`Platform::start_with`], with extra environment variables.
    pub fn start_with_env(
        departments: &Path,
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        write_config(data);
        let mut child = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
            .args([
                "up",
                "--addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
                "--dir",
            ])
            .arg(departments)
            .arg("--data-dir")
            .arg(data)
            .args(if extra.contains(&"--registry") {
                Vec::new()
            } else {
                vec![
                    "--registry".to_owned(),
                    data.join("registry").display().to_string(),
                ]
            })
            .args(extra)
            .env("RUST_LOG", "warn")
            .env("ZHONGTAI_ADMIN_TOKEN", OPERATOR_TOKEN)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting zhongtai up");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut admin_url = String::new();
        let mut log = Vec::new();
        let url = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("zhongtai up exited before serving:\n{}", log.join("\n")))
                .unwrap();
            log.push(line.clone());
            let Some(at) = line.find("http://") else {
                continue;
            };
            let url = line[at..].trim().to_owned();
            if line.contains("admin API on") {
                admin_url = url;
            } else if line.contains("serving") {
                break url;
            }
        };
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = output.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            child,
            url,
            admin_url,
            agent,
            log,
            output,
        }
    }

    /// Sends a request; returns the status and the JSON body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Json>,
    ) -> (u16, Json) {
        let url = format!("{}{path}", self.url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            (_, body) => {
                let mut request = self.agent.post(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body.map(|b| b.to_string()).unwrap_or_default())
            }
        }
        .expect("request");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::String(text)),
        )
    }
}

impl Platform {
    /// Waits until `up` prints a line containing `text` after serving;
    /// the line.
    pub fn wait_for_output(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(line) = self
                .output
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(text))
            {
                return line.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no line with {text:?} in {:#?}",
                self.output.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Sends a request to the admin address with `token`; returns the
    /// status and the body's text.
    pub fn admin(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let url = format!("{}{path}", self.admin_url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut response = match method {
            "GET" => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            _ => {
                let mut request = self.agent.post(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body.unwrap_or_default())
            }
        }
        .expect("admin request");
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// Registers a citizen at public security and returns its session
    /// token.
    pub fn register_and_login(&self, path: &str, id: &str, name: &str, password: &str) -> String {
        self.register_as_and_login(None, path, id, name, password)
    }

    /// Registers an identity at public security with `token` (an official's,
    /// for `/public-security/legal-entities`) and returns its session token.
    pub fn register_as_and_login(
        &self,
        token: Option<&str>,
        path: &str,
        id: &str,
        name: &str,
        password: &str,
    ) -> String {
        let body = serde_json::json!({"id": id, "name": name, "password": password});
        let (status, registered) = self.send("POST", path, token, Some(body));
        assert_eq!(status, 201, "{registered}");
        self.login(id, password)
    }

    /// Opens a session at public security; returns its token.
    pub fn login(&self, id: &str, password: &str) -> String {
        let body = serde_json::json!({"id": id, "password": password});
        let (status, session) = self.send("POST", "/public-security/sessions", None, Some(body));
        assert_eq!(status, 201, "{session}");
        session["token"].as_str().unwrap().to_owned()
    }
}
