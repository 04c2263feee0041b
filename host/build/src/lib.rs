//! Builds zhongtai's guest components for `wasm32-wasip2`.
//!
//! The guest crates under `components/` are members of the workspace (so
//! their domain logic is unit-tested natively by `cargo test`), but no host
//! crate depends on them: they are built for wasm by running cargo again, the
//! way `spin build` does, with the `guest` profile (small, optimised
//! components). The CLI uses this to build the platform's components, and the
//! tests to build them and their fixtures. A machine without the
//! `wasm32-wasip2` target gets it through rustup first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The target guest components are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";
/// The cargo profile guest components are built with.
pub const GUEST_PROFILE: &str = "guest";

/// The platform's capability components, by cargo package name.
pub const CAPABILITIES: &[&str] = &[
    "zhongtai-auth",
    "zhongtai-payment",
    "zhongtai-credit",
    "zhongtai-license",
];

/// Test fixtures: a component of an unknown package that misbehaves on
/// request, and one importing what no host provides.
pub const FIXTURES: &[&str] = &["fixture-sampler", "fixture-stranger"];

/// The zhongtai source tree: the directory holding `Cargo.toml` and
/// `components/`. Looks upward from the current directory, then falls back to
/// where this crate was compiled.
pub fn source_root() -> anyhow::Result<PathBuf> {
    let is_root = |dir: &Path| dir.join("Cargo.toml").is_file() && dir.join("components").is_dir();
    if let Ok(current) = std::env::current_dir()
        && let Some(found) = current.ancestors().find(|dir| is_root(dir))
    {
        return Ok(found.to_path_buf());
    }
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if is_root(&compiled) {
        return Ok(compiled.canonicalize().unwrap_or(compiled));
    }
    bail!(
        "cannot find the zhongtai source tree (a directory with Cargo.toml and components/); run from inside it"
    )
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Settings an outer cargo hands its children are for the host build, not ours.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    command
}

/// Installs the `wasm32-wasip2` target with rustup when it is missing.
pub fn ensure_wasm_target() -> anyhow::Result<()> {
    let output = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .context("running rustc to find the wasm32-wasip2 target")?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && Path::new(&libdir).is_dir() {
        return Ok(());
    }
    eprintln!(
        "Installing the {WASM_TARGET} target with rustup (needed once to build components)..."
    );
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .with_context(|| {
            format!(
                "running rustup; install the target yourself with `rustup target add {WASM_TARGET}`"
            )
        })?;
    if !status.success() {
        bail!("`rustup target add {WASM_TARGET}` failed; run it yourself and try again");
    }
    Ok(())
}

/// Where cargo puts artifacts for the source tree at `root`.
fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let output = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed in {}", root.display());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // `"target_directory":"/path"` — avoid a JSON dependency for one field.
    let key = "\"target_directory\":\"";
    let start = text
        .find(key)
        .context("cargo metadata printed no target_directory")?
        + key.len();
    let end = text[start..]
        .find('"')
        .context("malformed cargo metadata")?
        + start;
    Ok(PathBuf::from(text[start..end].replace("\\\\", "\\")))
}

/// The `.wasm` of each of `packages` as the last build under `root` left
/// it, for those that have one — without running cargo (the target
/// directory is `CARGO_TARGET_DIR`, else `root/target`).
pub fn last_built(root: &Path, packages: &[&str]) -> BTreeMap<String, PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        })
        .unwrap_or_else(|| root.join("target"));
    let out = target.join(WASM_TARGET).join(GUEST_PROFILE);
    packages
        .iter()
        .map(|package| {
            (
                package.to_string(),
                out.join(format!("{}.wasm", package.replace('-', "_"))),
            )
        })
        .filter(|(_, path)| path.is_file())
        .collect()
}

/// Builds the component crate in `dir` (its own workspace, as `zhongtai
/// new capability` makes one) for wasm in release, and returns its package
/// name and `.wasm` path.
pub fn build_crate(dir: &Path) -> anyhow::Result<(String, PathBuf)> {
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "{} holds no Cargo.toml: give a component crate's directory",
            dir.display()
        );
    }
    ensure_wasm_target()?;
    let status = cargo()
        .current_dir(dir)
        .args(["build", "--target", WASM_TARGET, "--release"])
        .status()
        .context("running cargo to build the component")?;
    if !status.success() {
        bail!(
            "building {} failed (see cargo's output above)",
            dir.display()
        );
    }
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(dir)
        .output()
        .context("running cargo metadata")?;
    let text = String::from_utf8_lossy(&output.stdout);
    // The first package's `"name":"…"` — avoid a JSON dependency for one field.
    let key = "\"packages\":[{\"name\":\"";
    let start = text
        .find(key)
        .context("cargo metadata printed no package")?
        + key.len();
    let end = text[start..]
        .find('"')
        .context("malformed cargo metadata")?
        + start;
    let name = text[start..end].to_owned();
    let path = target_dir(dir)?
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    if !path.is_file() {
        bail!(
            "cargo built {name} but {} is missing: is its crate-type cdylib?",
            path.display()
        );
    }
    Ok((name, path))
}

/// Builds `packages` for wasm and returns each package's `.wasm` path.
///
/// With `quiet`, cargo prints only errors; otherwise its progress shows.
pub fn build(
    root: &Path,
    packages: &[&str],
    quiet: bool,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    ensure_wasm_target()?;
    let mut command = cargo();
    command
        .current_dir(root)
        .args(["build", "--target", WASM_TARGET, "--profile", GUEST_PROFILE]);
    if quiet {
        command.arg("--quiet");
    }
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command
        .status()
        .context("running cargo to build the components")?;
    if !status.success() {
        bail!(
            "building components {} failed (see cargo's output above)",
            packages.join(", ")
        );
    }
    let out = target_dir(root)?.join(WASM_TARGET).join(GUEST_PROFILE);
    packages
        .iter()
        .map(|package| {
            let path = out.join(format!("{}.wasm", package.replace('-', "_")));
            if path.is_file() {
                Ok((package.to_string(), path))
            } else {
                bail!("cargo built {package} but {} is missing", path.display())
            }
        })
        .collect()
}
