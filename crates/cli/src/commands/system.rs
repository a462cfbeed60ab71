//! `outpost system status|logs|restart|stop|start|shutdown` and `outpost config apply`:
//! the runtime's own services, through outpostd's `outpost.host.v1`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use outpost_host::config::Config;
use outpost_proto::host::v1 as pb;
use outpost_proto::host::v1::host_client::HostClient;
use serde_json::json;
use tonic::transport::Channel;

use crate::output::{self, Format};

/// `outpost system …`.
#[derive(Debug, clap::Subcommand)]
pub enum SystemCommand {
    /// The runtime's services (identityd, agent, hub, watchdog) and their states.
    Status,
    /// A service's output, optionally following it.
    Logs {
        /// identityd, agent, hub or watchdog.
        service: String,
        /// Lines from the end (0 for all).
        #[arg(long, default_value_t = 100)]
        tail: u32,
        /// Keep printing new lines.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Restart services (all of them, in start order, when none is named).
    Restart {
        /// identityd, agent, hub or watchdog.
        services: Vec<String>,
        /// Make them anew (container or process) instead of restarting.
        #[arg(long)]
        recreate: bool,
    },
    /// Stop services (all of them, watchdog first, when none is named) until started again.
    Stop {
        /// identityd, agent, hub or watchdog.
        services: Vec<String>,
    },
    /// Start stopped services (all of them when none is named).
    Start {
        /// identityd, agent, hub or watchdog.
        services: Vec<String>,
    },
    /// Stop the modules and every service, and end outpostd (systemd starts it again only
    /// if told to).
    Shutdown,
}

/// `outpost config …`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check the device configuration, write the services' files, and restart the services
    /// whose files changed.
    Apply {
        /// The device configuration.
        #[arg(long, short = 'c', default_value = outpost_host::config::DEFAULT_PATH)]
        config: PathBuf,
        /// Only check and write; restart nothing.
        #[arg(long)]
        no_restart: bool,
    },
}

const ORDER: [&str; 4] = ["identityd", "agent", "hub", "watchdog"];

async fn connect(socket: &Path) -> anyhow::Result<HostClient<Channel>> {
    let channel = outpost_rpc::connect(socket)
        .await
        .with_context(|| format!("is outpostd running? (socket {})", socket.display()))?;
    Ok(HostClient::new(channel))
}

fn state_name(service: &pb::Service) -> &'static str {
    match service.state() {
        pb::ServiceState::Unspecified => "waiting",
        pb::ServiceState::Starting => "starting",
        pb::ServiceState::Running => "running",
        pb::ServiceState::Backoff => "backoff",
        pb::ServiceState::Stopped => "stopped",
        pb::ServiceState::Failed => "failed",
    }
}

fn since(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    duration(u64::try_from((i128::try_from(now).unwrap_or(0) - i128::from(ms)).max(0) / 1000).unwrap_or(0))
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn service_json(s: &pb::Service) -> serde_json::Value {
    json!({"name": s.name, "state": state_name(s), "description": s.description, "image": s.image,
        "pid": s.pid, "startedAtMs": s.started_at_ms, "restartCount": s.restart_count,
        "lastExitCode": s.last_exit_code, "lastExitAtMs": s.last_exit_at_ms, "socket": s.socket})
}

fn print_services(services: &[pb::Service], format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        return output::json(&services.iter().map(service_json).collect::<Vec<_>>());
    }
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                state_name(s).to_owned(),
                since(s.started_at_ms),
                s.restart_count.to_string(),
                s.image.clone(),
                s.description.clone(),
            ]
        })
        .collect();
    output::table(&["SERVICE", "STATE", "UP", "RESTARTS", "IMAGE", "DESCRIPTION"], &rows);
    Ok(())
}

fn names(services: Vec<String>, default: &[&str]) -> anyhow::Result<Vec<String>> {
    if services.is_empty() {
        return Ok(default.iter().map(|s| (*s).to_owned()).collect());
    }
    for s in &services {
        if !ORDER.contains(&s.as_str()) {
            bail!("unknown service {s:?}; the services are identityd, agent, hub and watchdog");
        }
    }
    Ok(services)
}

/// Runs `command` against outpostd's socket.
pub async fn run(command: SystemCommand, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    match command {
        SystemCommand::Status => {
            let mut client = connect(socket).await?;
            let info = client.get_system_info(pb::GetSystemInfoRequest {}).await?.into_inner();
            let services = client.list_services(pb::ListServicesRequest {}).await?.into_inner().services;
            if format == Format::Json {
                output::json(&json!({"version": info.version, "deviceId": info.device_id, "mode": info.mode,
                    "uptimeSecs": info.uptime_secs, "config": info.config_path, "kernel": info.kernel_version,
                    "services": services.iter().map(service_json).collect::<Vec<_>>()}))?;
            } else {
                println!(
                    "outpostd {} · device {} · {} mode · up {} · {}",
                    info.version,
                    info.device_id,
                    info.mode,
                    duration(info.uptime_secs),
                    info.config_path
                );
                print_services(&services, format)?;
            }
            let healthy = services.iter().all(|s| s.state() == pb::ServiceState::Running);
            Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        SystemCommand::Logs { service, tail, follow } => {
            let name = names(vec![service], &[])?.remove(0);
            let mut stream =
                connect(socket).await?.stream_logs(pb::StreamLogsRequest { name, tail, follow }).await?.into_inner();
            while let Some(line) = stream.message().await? {
                println!("{}", line.line);
            }
            Ok(ExitCode::SUCCESS)
        }
        SystemCommand::Restart { services, recreate } => {
            let mut client = connect(socket).await?;
            let mut done = Vec::new();
            for name in names(services, &ORDER)? {
                if format == Format::Table {
                    eprintln!("{} {name}…", if recreate { "recreating" } else { "restarting" });
                }
                let request = pb::RestartServiceRequest {
                    name,
                    recreate,
                    reason: "outpost system restart".into(),
                    unless_stopped: false,
                };
                done.push(client.restart_service(request).await?.into_inner());
            }
            print_services(&done, format)?;
            Ok(ExitCode::SUCCESS)
        }
        SystemCommand::Stop { services } => {
            let mut client = connect(socket).await?;
            let mut done = Vec::new();
            let reverse: Vec<&str> = ORDER.iter().rev().copied().collect();
            for name in names(services, &reverse)? {
                done.push(client.stop_service(pb::ServiceRequest { name }).await?.into_inner());
            }
            print_services(&done, format)?;
            Ok(ExitCode::SUCCESS)
        }
        SystemCommand::Start { services } => {
            let mut client = connect(socket).await?;
            let mut done = Vec::new();
            for name in names(services, &ORDER)? {
                done.push(client.start_service(pb::ServiceRequest { name }).await?.into_inner());
            }
            print_services(&done, format)?;
            Ok(ExitCode::SUCCESS)
        }
        SystemCommand::Shutdown => {
            connect(socket).await?.shutdown(pb::ShutdownRequest {}).await?;
            if format == Format::Table {
                println!("outpostd is stopping the modules and the services");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `outpost config apply`.
pub async fn config(command: ConfigCommand, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Apply { config: path, no_restart } = command;
    let config: Config = outpost_daemon::load_config(&path)?;
    config.validate().map_err(|e| anyhow::anyhow!("invalid configuration {}: {e}", path.display()))?;
    outpost_host::prepare_dirs(&config)?;
    let changed = outpost_host::write_configs(&config, &path)?;
    let changed: Vec<&str> = changed.iter().map(|s| s.as_str()).collect();
    let mut restarted = Vec::new();
    if !no_restart && !changed.is_empty() {
        match connect(socket).await {
            Ok(mut client) => {
                for name in &changed {
                    let request = pb::RestartServiceRequest {
                        name: (*name).to_owned(),
                        recreate: true,
                        reason: "outpost config apply".into(),
                        unless_stopped: false,
                    };
                    client.restart_service(request).await?;
                    restarted.push(*name);
                }
            }
            Err(e) => eprintln!("note: {}; the services read the new files when outpostd starts", output::describe(&e)),
        }
    }
    if format == Format::Json {
        output::json(&json!({"config": path, "changed": changed, "restarted": restarted}))?;
    } else if changed.is_empty() {
        println!("{} is valid; no service's configuration changed", path.display());
    } else {
        println!(
            "{} is valid; changed: {}; restarted: {}",
            path.display(),
            changed.join(", "),
            if restarted.is_empty() { "none".to_owned() } else { restarted.join(", ") }
        );
    }
    Ok(ExitCode::SUCCESS)
}
