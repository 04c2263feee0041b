//! `zhongtai deploy` and `zhongtai rollback`: changing what a running host
//! serves, through its admin API.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::args::AdminArgs;

fn admin_call(args: &AdminArgs, path: &str, body: Option<String>) -> anyhow::Result<ExitCode> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", args.host.trim_end_matches('/'));
    let token = args.token()?;
    let request = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {token}"));
    let mut response = request
        .send(body.unwrap_or_default())
        .with_context(|| format!("calling {url}"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if (200..300).contains(&status) {
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    bail!("the host refused (HTTP {status}):\n{message}")
}

/// Deploys (or upgrades) one department from its manifest file.
pub fn deploy(manifest: &Path, args: &AdminArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let checked = zhongtai_manifest::parse(&text, &manifest.display().to_string())?;
    admin_call(
        args,
        &format!("/admin/v1/departments/{}/manifest", checked.department),
        Some(text),
    )
}

/// Prints a fresh admin token.
pub fn new_token() -> anyhow::Result<ExitCode> {
    println!("{}", zhongtai_api::admin::new_token());
    Ok(ExitCode::SUCCESS)
}

/// Rolls one department back to its previous deployment.
pub fn rollback(department: &str, args: &AdminArgs) -> anyhow::Result<ExitCode> {
    admin_call(
        args,
        &format!("/admin/v1/departments/{department}/rollback"),
        None,
    )
}
