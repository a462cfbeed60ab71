//! `outpost cloud deployment …`: create automatic (and layered) deployments targeted by a
//! twin query condition, list them with their metrics, show one, retarget or delete it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use outpost_proto::cloud::v1 as pb;
use outpost_proto::cloud::v1::deployments_client::DeploymentsClient;
use serde_json::{Value, json};

use super::connection::CloudClient;
use crate::output::{self, Format};

/// `outpost cloud deployment …`.
#[derive(Debug, clap::Subcommand)]
pub enum DeploymentCommand {
    /// Create a deployment from a manifest (Azure `modulesContent` JSON).
    Create {
        /// The deployment id (lowercase letters, digits, - : + % _ # * ? ! ( ) , = @ ; $ ').
        deployment: String,
        /// The manifest file.
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// Which devices: an IoT Hub twin query condition, e.g. "tags.env='prod'"; "*" for all.
        #[arg(long)]
        target: String,
        /// Larger wins.
        #[arg(long, default_value_t = 0)]
        priority: u32,
        /// A layered deployment: dotted paths merged on top of each device's base.
        #[arg(long)]
        layered: bool,
        /// Labels, KEY=VALUE, repeatable.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// List deployments with their metrics, highest priority first.
    List,
    /// Show a deployment: targeting, metrics, devices it does not apply to and why.
    Show {
        /// The deployment id.
        deployment: String,
        /// Print its content too.
        #[arg(long)]
        content: bool,
    },
    /// Change a deployment's target condition or priority (content is immutable).
    Update {
        /// The deployment id.
        deployment: String,
        /// A new target condition.
        #[arg(long)]
        target: Option<String>,
        /// A new priority.
        #[arg(long)]
        priority: Option<u32>,
    },
    /// Delete a deployment; its devices move to what applies now.
    Delete {
        /// The deployment id.
        deployment: String,
    },
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("label {text:?} is not KEY=VALUE"))
}

fn deployment_json(d: &pb::Deployment, with_content: bool) -> Value {
    let m = d.metrics.clone().unwrap_or_default();
    let mut value = json!({
        "id": d.deployment_id,
        "targetCondition": d.target_condition,
        "priority": d.priority,
        "layered": d.layered,
        "labels": d.labels,
        "etag": d.etag,
        "createdUnixMs": d.created_unix_ms,
        "systemMetrics": {"results": {
            "targetedCount": m.targeted, "appliedCount": m.applied,
            "reportedSuccessfulCount": m.reporting_success, "reportedFailedCount": m.reporting_failure}},
        "skipped": m.skipped.iter().map(|s| json!({"deviceId": s.device_id, "reason": s.reason})).collect::<Vec<_>>(),
    });
    if with_content {
        value["content"] =
            json!({"modulesContent": serde_json::from_str::<Value>(&d.content_json).unwrap_or(Value::Null)});
    }
    value
}

fn print(d: &pb::Deployment, with_content: bool) {
    let m = d.metrics.clone().unwrap_or_default();
    println!("deployment:  {}{}", d.deployment_id, if d.layered { " (layered)" } else { "" });
    println!("target:      {}", d.target_condition);
    println!("priority:    {}", d.priority);
    if !d.labels.is_empty() {
        let mut labels: Vec<String> = d.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        println!("labels:      {}", labels.join(", "));
    }
    println!(
        "metrics:     {} targeted, {} applied, {} reporting success, {} reporting failure",
        m.targeted, m.applied, m.reporting_success, m.reporting_failure
    );
    for skipped in &m.skipped {
        println!("not applied: {}: {}", skipped.device_id, skipped.reason);
    }
    if with_content {
        let content: Value = serde_json::from_str(&d.content_json).unwrap_or(Value::Null);
        println!("{}", serde_json::to_string_pretty(&content).unwrap_or_default());
    }
}

/// Runs `command`.
pub async fn run(command: DeploymentCommand, client: &CloudClient, format: Format) -> anyhow::Result<ExitCode> {
    let mut deployments = DeploymentsClient::new(client.channel.clone());
    match command {
        DeploymentCommand::Create { deployment, file, target, priority, layered, labels } => {
            let content = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let request = pb::CreateDeploymentRequest {
                deployment_id: deployment,
                content_json: content,
                target_condition: target,
                priority,
                layered,
                labels: labels.into_iter().collect::<HashMap<_, _>>(),
            };
            let created = deployments.create_deployment(client.request(request)).await?.into_inner();
            if format == Format::Json {
                output::json(&deployment_json(&created, false))?;
            } else {
                print(&created, false);
            }
        }
        DeploymentCommand::List => {
            let all = deployments.list_deployments(client.request(pb::ListDeploymentsRequest {})).await?.into_inner();
            if format == Format::Json {
                output::json(&all.deployments.iter().map(|d| deployment_json(d, false)).collect::<Vec<_>>())?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .deployments
                    .iter()
                    .map(|d| {
                        let m = d.metrics.clone().unwrap_or_default();
                        vec![
                            d.deployment_id.clone(),
                            d.priority.to_string(),
                            if d.layered { "layered" } else { "base" }.into(),
                            m.targeted.to_string(),
                            m.applied.to_string(),
                            m.reporting_success.to_string(),
                            m.reporting_failure.to_string(),
                            d.target_condition.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &["DEPLOYMENT", "PRIORITY", "KIND", "TARGETED", "APPLIED", "SUCCESS", "FAILURE", "TARGET"],
                    &rows,
                );
            }
        }
        DeploymentCommand::Show { deployment, content } => {
            let found = deployments
                .get_deployment(client.request(pb::GetDeploymentRequest { deployment_id: deployment }))
                .await?
                .into_inner();
            if format == Format::Json {
                output::json(&deployment_json(&found, content))?;
            } else {
                print(&found, content);
            }
        }
        DeploymentCommand::Update { deployment, target, priority } => {
            if target.is_none() && priority.is_none() {
                anyhow::bail!("nothing to update: give --target and/or --priority");
            }
            let request = pb::UpdateDeploymentRequest {
                deployment_id: deployment,
                target_condition: target.unwrap_or_default(),
                priority: priority.unwrap_or_default(),
                has_priority: priority.is_some(),
                ..pb::UpdateDeploymentRequest::default()
            };
            let updated = deployments.update_deployment(client.request(request)).await?.into_inner();
            if format == Format::Json {
                output::json(&deployment_json(&updated, false))?;
            } else {
                print(&updated, false);
            }
        }
        DeploymentCommand::Delete { deployment } => {
            deployments
                .delete_deployment(client.request(pb::DeleteDeploymentRequest {
                    deployment_id: deployment.clone(),
                    if_match: String::new(),
                }))
                .await?;
            if format == Format::Json {
                output::json(&json!({"id": deployment, "deleted": true}))?;
            } else {
                println!("{deployment}: deleted");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
