//! Helpers for running commands and installing system packages.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

/// The workspace root (the parent of this crate's directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` or `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Runs `cmd`, echoing it, and fails if it does not exit 0.
pub fn sh(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// The cargo that runs us.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs the Debian packages that are missing (idempotent; needs root).
pub fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!("system packages present: {}", packages.join(" "));
        return Ok(());
    }
    eprintln!("installing system packages: {}", missing.join(" "));
    sh(Command::new("apt-get").args(["update", "-qq"]))?;
    sh(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Installs a Python package with pip unless `module` already imports.
pub fn pip_install(module: &str, requirement: &str) -> anyhow::Result<()> {
    let present = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if present {
        eprintln!("python package present: {requirement}");
        return Ok(());
    }
    sh(Command::new("python3").args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement]))
}

/// Re-runs xtask with the `containers` feature (which needs protoc, so the build packages
/// are installed first) and `args`.
#[cfg(not(feature = "containers"))]
pub fn with_containers(args: &[&str]) -> anyhow::Result<()> {
    apt_install(crate::ci::BUILD_PACKAGES)?;
    sh(cargo().args(["run", "--quiet", "--package", "xtask", "--features", "containers", "--"]).args(args))
}
