//! `outpost cloud twin …`: show and patch device and module twins.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use outpost_proto::cloud::v1 as pb;
use outpost_proto::cloud::v1::twins_client::TwinsClient;
use serde_json::{Value, json};

use super::connection::CloudClient;
use crate::output::{self, Format};

/// `outpost cloud twin …`.
#[derive(Debug, clap::Subcommand)]
pub enum TwinCommand {
    /// Print a twin (IoT Hub's twin JSON).
    Show {
        /// The device.
        device: String,
        /// A module of the device (e.g. '$edgeAgent'); without it, the device twin.
        #[arg(long, short = 'm')]
        module: Option<String>,
    },
    /// Patch a twin's desired properties and/or tags (JSON merge patch: null removes).
    Update {
        /// The device.
        device: String,
        /// A module of the device; without it, the device twin.
        #[arg(long, short = 'm')]
        module: Option<String>,
        /// Desired-properties patch, a JSON object.
        #[arg(long, conflicts_with = "desired_file")]
        desired: Option<String>,
        /// Desired-properties patch read from a file.
        #[arg(long)]
        desired_file: Option<PathBuf>,
        /// Tags patch, a JSON object (device twins only).
        #[arg(long)]
        tags: Option<String>,
        /// Apply only if the twin's etag is still this.
        #[arg(long)]
        if_match: Option<String>,
    },
}

fn parse(field: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({ "unparsable": field }))
}

/// A twin as IoT Hub prints it.
fn twin_json(twin: &pb::Twin) -> Value {
    let mut value = json!({
        "deviceId": twin.device_id,
        "etag": twin.etag,
        "version": twin.version,
        "properties": {
            "desired": parse("desired", &twin.desired_json),
            "reported": parse("reported", &twin.reported_json),
        },
    });
    if twin.module_id.is_empty() {
        value["tags"] = parse("tags", &twin.tags_json);
    } else {
        value["moduleId"] = Value::String(twin.module_id.clone());
    }
    value
}

/// Runs `command`.
pub async fn run(command: TwinCommand, client: &CloudClient, _format: Format) -> anyhow::Result<ExitCode> {
    let mut twins = TwinsClient::new(client.channel.clone());
    let twin = match command {
        TwinCommand::Show { device, module } => {
            let request = pb::GetTwinRequest { device_id: device, module_id: module.unwrap_or_default() };
            twins.get_twin(client.request(request)).await?.into_inner()
        }
        TwinCommand::Update { device, module, desired, desired_file, tags, if_match } => {
            let desired = match (desired, desired_file) {
                (Some(text), _) => text,
                (None, Some(path)) => {
                    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
                }
                (None, None) => String::new(),
            };
            if desired.is_empty() && tags.is_none() {
                anyhow::bail!("nothing to update: give --desired, --desired-file or --tags");
            }
            let request = pb::UpdateTwinRequest {
                device_id: device,
                module_id: module.unwrap_or_default(),
                tags_patch_json: tags.unwrap_or_default(),
                desired_patch_json: desired,
                if_match: if_match.unwrap_or_default(),
            };
            twins.update_twin(client.request(request)).await?.into_inner()
        }
    };
    // A twin is a JSON document: both formats print it as such.
    output::json(&twin_json(&twin))?;
    Ok(ExitCode::SUCCESS)
}
