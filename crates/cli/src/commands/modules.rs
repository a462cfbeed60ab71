//! `outpost deploy -f FILE`, `outpost deployment`, `outpost list`, `outpost show MODULE`,
//! `outpost start|stop|restart MODULE`: the agent's management API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use outpost_proto::agent::v1 as pb;
use outpost_proto::agent::v1::agent_client::AgentClient;
use serde::Serialize;

use crate::output::{self, Format};

/// A module control action.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Start.
    Start,
    /// Stop.
    Stop,
    /// Restart.
    Restart,
}

pub(crate) async fn client(socket: &Path) -> anyhow::Result<AgentClient<tonic::transport::Channel>> {
    let channel = outpost_rpc::connect(socket)
        .await
        .with_context(|| format!("is outpost-agent running? (socket {})", socket.display()))?;
    Ok(AgentClient::new(channel))
}

#[derive(Serialize)]
struct Row {
    name: String,
    status: String,
    description: String,
    desired: String,
    restarts: u32,
    exit_code: i32,
    image: String,
    image_digest: String,
    last_start_time: String,
    last_exit_time: String,
    memory_bytes: u64,
    memory_limit_bytes: u64,
    cpu_seconds: f64,
    pids: u64,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl From<pb::ModuleStatus> for Row {
    fn from(m: pb::ModuleStatus) -> Self {
        Self {
            name: m.module_id,
            status: m.runtime_status,
            description: m.status_description,
            desired: m.desired_status,
            restarts: m.restart_count,
            exit_code: m.exit_code,
            image: m.image,
            image_digest: m.image_digest,
            last_start_time: m.last_start_time,
            last_exit_time: m.last_exit_time,
            memory_bytes: m.memory_bytes,
            memory_limit_bytes: m.memory_limit_bytes,
            cpu_seconds: m.cpu_seconds,
            pids: m.pids,
        }
    }
}

fn print(rows: Vec<Row>, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => output::json(&rows),
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.status.clone(),
                        r.description.clone(),
                        r.restarts.to_string(),
                        if r.status == "running" { mib(r.memory_bytes) } else { "-".to_owned() },
                        r.image.clone(),
                    ]
                })
                .collect();
            output::table(&["NAME", "STATUS", "DESCRIPTION", "RESTARTS", "MEMORY", "IMAGE"], &cells);
            Ok(())
        }
    }
}

/// `outpost deploy -f FILE`.
pub async fn deploy(file: &PathBuf, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let manifest_json = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let response =
        client(socket).await?.apply_deployment(pb::ApplyDeploymentRequest { manifest_json }).await?.into_inner();
    match format {
        Format::Json => output::json(&serde_json::json!({ "applied": file, "modules": response.modules }))?,
        Format::Table => println!(
            "deployment {} accepted: {} modules; `outpost list` shows their progress",
            file.display(),
            response.modules
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `outpost list`.
pub async fn list(socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let modules = client(socket).await?.list_modules(pb::ListModulesRequest {}).await?.into_inner().modules;
    print(modules.into_iter().map(Row::from).collect(), format)?;
    Ok(ExitCode::SUCCESS)
}

/// `outpost show MODULE`: one module in full.
pub async fn show(module: String, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let status = client(socket).await?.get_module(pb::ModuleRequest { module_id: module }).await?.into_inner();
    let row = Row::from(status);
    match format {
        Format::Json => output::json(&row)?,
        Format::Table => {
            let or_dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
            let fields = [
                ("name", row.name.clone()),
                ("status", row.status.clone()),
                ("description", row.description.clone()),
                ("desired", or_dash(&row.desired)),
                ("restarts", row.restarts.to_string()),
                ("exit code", row.exit_code.to_string()),
                ("image", row.image.clone()),
                ("image digest", or_dash(&row.image_digest)),
                ("last start", or_dash(&row.last_start_time)),
                ("last exit", or_dash(&row.last_exit_time)),
                (
                    "memory",
                    if row.memory_limit_bytes > 0 {
                        format!("{} of {}", mib(row.memory_bytes), mib(row.memory_limit_bytes))
                    } else {
                        mib(row.memory_bytes)
                    },
                ),
                ("cpu time", format!("{:.2} s", row.cpu_seconds)),
                ("processes", row.pids.to_string()),
            ];
            for (key, value) in fields {
                println!("{key:<13} {value}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `outpost deployment [--manifest | --reported]`: how the last deployment fared, its
/// text, or the agent's reported properties.
pub async fn deployment(manifest: bool, reported: bool, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let response = client(socket).await?.get_deployment(pb::GetDeploymentRequest {}).await?.into_inner();
    if manifest {
        print!("{}", response.manifest_json);
        return Ok(ExitCode::SUCCESS);
    }
    if reported {
        let value: serde_json::Value = serde_json::from_str(&response.reported_properties_json)?;
        output::json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    let last = response.last_desired_status.unwrap_or_default();
    match format {
        Format::Json => output::json(&serde_json::json!({
            "lastDesiredStatus": { "code": last.code, "description": last.description }
        }))?,
        Format::Table => {
            let meaning = match last.code {
                200 => "applied",
                400 => "the last manifest was refused; the previous deployment stays",
                412 => "the last manifest has an unsupported schema version; the previous deployment stays",
                417 => "no deployment",
                500 => "some modules failed",
                _ => "unknown",
            };
            println!("lastDesiredStatus {} ({meaning})", last.code);
            if !last.description.is_empty() {
                println!("{}", last.description);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `outpost start|stop|restart MODULE`.
pub async fn control(action: Action, module: String, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let mut client = client(socket).await?;
    let request = pb::ModuleRequest { module_id: module };
    let status = match action {
        Action::Start => client.start_module(request).await?,
        Action::Stop => client.stop_module(request).await?,
        Action::Restart => client.restart_module(request).await?,
    }
    .into_inner();
    print(vec![status.into()], format)?;
    Ok(ExitCode::SUCCESS)
}
