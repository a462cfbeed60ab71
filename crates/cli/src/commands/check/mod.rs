//! `outpost check`: the device check list, each check a small function returning a result.
//! With the device file (`/etc/outpost/config.toml`) the services' files are the ones
//! outpostd wrote and the device-wide checks run too ([`device`]); without it, identityd's
//! and the agent's own files are checked ([`services`]).

mod device;
mod services;
mod sntp;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use outpost_agent::config::Config as AgentConfig;
use outpost_identity::config::Config as IdentityConfig;
use serde::Serialize;

use crate::output::{self, Format};

/// Flags of `outpost check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The device configuration (outpostd's).
    #[arg(long, short = 'c', default_value = outpost_host::config::DEFAULT_PATH)]
    config: PathBuf,
    /// The identity service's configuration file [default: the one outpostd wrote, else
    /// /etc/outpost/identityd.toml].
    #[arg(long)]
    identity_config: Option<PathBuf>,
    /// The agent's configuration file [default: the one outpostd wrote, else
    /// /etc/outpost/agent.toml].
    #[arg(long)]
    agent_config: Option<PathBuf>,
    /// The NTP server the clock is compared with.
    #[arg(long, default_value = "pool.ntp.org:123")]
    ntp_server: String,
    /// Treat warnings as errors.
    #[arg(long)]
    warnings_as_errors: bool,
}

impl CheckArgs {
    /// The defaults for the device file at `config` (for the support bundle).
    pub fn for_device(config: &Path) -> Self {
        Self {
            config: config.to_owned(),
            identity_config: None,
            agent_config: None,
            ntp_server: "pool.ntp.org:123".into(),
            warnings_as_errors: false,
        }
    }
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but should be looked at.
    Warning,
    /// Broken.
    Error,
    /// Could not be checked (something it needs failed first).
    Skipped,
}

/// A check's status and what it found, or what is wrong.
pub type Outcome = Result<(Status, String), String>;

/// One line of the report.
#[derive(Debug, Serialize)]
pub struct CheckResult {
    id: &'static str,
    description: &'static str,
    status: Status,
    detail: String,
}

/// A result from an outcome (an `Err` is an error).
pub fn result(id: &'static str, description: &'static str, outcome: Outcome) -> CheckResult {
    let (status, detail) = outcome.unwrap_or_else(|e| (Status::Error, e));
    CheckResult { id, description, status, detail }
}

fn skipped(why: &str) -> Outcome {
    Ok((Status::Skipped, why.to_owned()))
}

/// Every check's results, in order.
pub async fn results(
    args: &CheckArgs,
    identity_socket: &Path,
    agent_socket: &Path,
    host_socket: &Path,
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    let device = if args.config.exists() {
        let loaded = device::config(&args.config);
        let outcome =
            loaded.as_ref().map(|_| (Status::Ok, format!("{} is valid", args.config.display()))).map_err(Clone::clone);
        results.push(result("device-config", "device configuration is valid", outcome));
        loaded.ok()
    } else {
        let why = format!("{} does not exist: services are configured one by one", args.config.display());
        results.push(result("device-config", "device configuration is valid", skipped(&why)));
        None
    };
    let generated =
        |service: outpost_host::services::ServiceName| device.as_ref().map(|c| service.config_path(&c.paths));
    let identity_path = args
        .identity_config
        .clone()
        .or_else(|| generated(outpost_host::services::ServiceName::Identityd))
        .unwrap_or_else(|| PathBuf::from("/etc/outpost/identityd.toml"));
    let agent_path = args
        .agent_config
        .clone()
        .or_else(|| generated(outpost_host::services::ServiceName::Agent))
        .unwrap_or_else(|| PathBuf::from("/etc/outpost/agent.toml"));

    match &device {
        Some(config) => {
            results.push(result(
                "config-applied",
                "services' files match the device configuration",
                device::applied(config, &args.config),
            ));
            results.push(result("services", "outpostd runs every service", device::services(host_socket).await));
        }
        None => {
            let why = "no device configuration";
            results.push(result("config-applied", "services' files match the device configuration", skipped(why)));
            results.push(result("services", "outpostd runs every service", skipped(why)));
        }
    }

    results.push(result(
        "identity-config",
        "identity service configuration is valid",
        services::check_config(&identity_path),
    ));
    let identity: Option<IdentityConfig> = outpost_daemon::load_config(&identity_path).ok();
    let invalid = || skipped("configuration is invalid");
    results.push(result(
        "identity-keys",
        "key store is readable with private permissions",
        identity.as_ref().map_or_else(invalid, services::check_keys),
    ));
    results.push(result(
        "identity-socket",
        "identity service answers on its socket",
        services::check_socket(identity_socket, "outpost-identityd").await,
    ));
    results.push(result(
        "certificate-expiry",
        "device CA certificate is valid",
        identity.as_ref().map_or_else(invalid, services::check_ca),
    ));

    if agent_path.exists() {
        services::agent_checks(&agent_path, agent_socket, &mut results).await;
    } else {
        let detail = format!("{} does not exist: this device runs no agent", agent_path.display());
        for (id, description) in services::AGENT_CHECKS {
            results.push(CheckResult { id, description, status: Status::Skipped, detail: detail.clone() });
        }
    }

    let agent: Option<AgentConfig> = outpost_daemon::load_config(&agent_path).ok();
    match &device {
        Some(config) => {
            results.push(result(
                "hub-ports",
                "the hub's ports are free or held by the hub",
                device::hub_ports(config).await,
            ));
            results.push(result("cloud", "the cloud is reachable and accepts the device", device::cloud(config).await));
            results.push(result(
                "disk-state",
                "disk space for the services' state",
                services::check_disk("state", &config.paths.state_dir),
            ));
            let (size, files) = agent.as_ref().map_or((0, 0), |a| (a.logs.max_size_bytes, a.logs.max_files));
            results.push(result("log-rotation", "logs are rotated", device::log_rotation(config, size, files)));
        }
        None => {
            for (id, description) in [
                ("hub-ports", "the hub's ports are free or held by the hub"),
                ("cloud", "the cloud is reachable and accepts the device"),
                ("disk-state", "disk space for the services' state"),
                ("log-rotation", "logs are rotated"),
            ] {
                results.push(result(id, description, skipped("no device configuration")));
            }
        }
    }
    results.push(result("clock", "the clock is close to an NTP server's", device::clock(&args.ntp_server).await));
    results
}

/// Runs every check and prints the results.
pub async fn run(
    args: CheckArgs,
    identity_socket: &Path,
    agent_socket: &Path,
    host_socket: &Path,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let results = results(&args, identity_socket, agent_socket, host_socket).await;
    match format {
        Format::Json => output::json(&results)?,
        Format::Table => {
            for r in &results {
                let mark = match r.status {
                    Status::Ok => "ok  ",
                    Status::Warning => "warn",
                    Status::Error => "FAIL",
                    Status::Skipped => "skip",
                };
                println!("[{mark}] {:<18} {}", r.id, r.description);
                println!("       {}", r.detail);
            }
        }
    }
    let failed =
        results.iter().any(|r| r.status == Status::Error || (args.warnings_as_errors && r.status == Status::Warning));
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
