//! `outpost deploy -f FILE`, `outpost list`, `outpost start|stop|restart MODULE`: the agent's
//! management API.

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

async fn client(socket: &Path) -> anyhow::Result<AgentClient<tonic::transport::Channel>> {
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
                        r.image.clone(),
                    ]
                })
                .collect();
            output::table(&["NAME", "STATUS", "DESCRIPTION", "RESTARTS", "IMAGE"], &cells);
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
