//! The compose fleet as the scenarios see it: `docker-compose` for the project, commands in
//! a device's container, and the operator CLI against the cloud's published API.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::util::root;

/// The running (or starting) fleet.
pub struct Fleet {
    /// The compose project's name: containers, volumes and the network carry it.
    pub project: &'static str,
    /// Per-run files: devices' /etc/outpost, the cloud's state.
    pub dir: PathBuf,
    /// The operator API's port on 127.0.0.1.
    pub api_port: u16,
    /// The `outpost` CLI on this machine.
    pub outpost: PathBuf,
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Fleet {
    /// `docker-compose` for the project, with the fleet's variables.
    pub fn compose(&self) -> Command {
        let mut command = Command::new("docker-compose");
        command
            .arg("--project-name")
            .arg(self.project)
            .arg("--file")
            .arg(root().join("deploy/compose/docker-compose.yml"))
            .env("E2E_DIR", &self.dir)
            .env("CLOUD_API_PORT", self.api_port.to_string());
        command
    }

    /// Runs `docker-compose ARGS`, failing with its output if it fails.
    pub fn compose_run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.compose().args(args).stdin(Stdio::null()).output().context("cannot run docker-compose")?;
        if !out.status.success() {
            bail!("docker-compose {args:?} failed: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        }
        Ok(stdout(&out))
    }

    /// Runs `command` in `service`'s container; its output, or why it failed.
    pub fn exec(&self, service: &str, command: &[&str]) -> anyhow::Result<String> {
        let mut args = vec!["exec", "-T", service];
        args.extend(command);
        self.compose_run(&args)
    }

    /// Runs `outpost ARGS` inside device `device`.
    pub fn device_cli(&self, device: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut command = vec!["outpost"];
        command.extend(args);
        self.exec(device, &command)
    }

    /// Runs `outpost cloud ARGS` against the fleet's cloud; its standard output.
    pub fn cloud_cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.cloud_command(args).stdin(Stdio::null()).output().context("cannot run outpost")?;
        if !out.status.success() {
            bail!("outpost cloud {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(stdout(&out))
    }

    /// The `outpost cloud ARGS` command, for long-running ones.
    pub fn cloud_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.outpost);
        command
            .arg("cloud")
            .args(["--endpoint", &format!("https://127.0.0.1:{}", self.api_port)])
            .arg("--ca-file")
            .arg(self.dir.join("cloud/tls/ca.pem"))
            .arg("--token-file")
            .arg(self.dir.join("cloud/admin.token"))
            .args(args);
        command
    }

    /// The device's configuration directory (its /etc/outpost).
    pub fn device_dir(&self, device: &str) -> PathBuf {
        self.dir.join(device)
    }

    /// Whether the cloud's API answers.
    pub fn cloud_ready(&self) -> bool {
        self.dir.join("cloud/admin.token").exists() && self.cloud_cli(&["device", "list", "-o", "json"]).is_ok()
    }

    /// The container of compose service `service`.
    pub fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.project)
    }

    /// The fleet's network.
    pub fn network(&self) -> String {
        format!("{}_fleet", self.project)
    }

    /// The last lines of every service's output, for failures.
    pub fn logs(&self) -> String {
        self.compose().args(["logs", "--no-color", "--tail", "60"]).output().map(|o| stdout(&o)).unwrap_or_default()
    }
}

/// Polls `check` every 500 ms until it yields a value or `limit` passes; the error names
/// `what` and the last failure.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("no result yet");
    loop {
        match check() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {} s (last: {last})", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A progress line.
pub fn step(what: &str) {
    eprintln!("\n== {what}");
}

/// The file at `path` relative to the repository.
pub fn repo_file(path: &str) -> PathBuf {
    root().join(path)
}
