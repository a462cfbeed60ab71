//! `outpost cloud device …`: register, list, show, enable/disable, tag and delete devices.

use std::process::ExitCode;

use outpost_proto::cloud::v1 as pb;
use outpost_proto::cloud::v1::registry_client::RegistryClient;
use outpost_proto::cloud::v1::twins_client::TwinsClient;
use serde_json::{Value, json};

use super::connection::CloudClient;
use crate::output::{self, Format};

/// `outpost cloud device …`.
#[derive(Debug, clap::Subcommand)]
pub enum DeviceCommand {
    /// Register a device; prints its keys (generated unless given).
    Create {
        /// The device id.
        device: String,
        /// Primary symmetric key (base64); generated when absent.
        #[arg(long, conflicts_with = "x509_thumbprint")]
        primary_key: Option<String>,
        /// Secondary symmetric key (base64); generated when absent.
        #[arg(long, requires = "primary_key")]
        secondary_key: Option<String>,
        /// Authenticate with an X.509 certificate of this thumbprint instead of keys.
        #[arg(long)]
        x509_thumbprint: Option<String>,
        /// Initial tags, a JSON object, e.g. '{"env":"prod"}'.
        #[arg(long)]
        tags: Option<String>,
        /// Register it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List devices.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Show a device, its keys and its twin's tags.
    Show {
        /// The device id.
        device: String,
    },
    /// Merge tags into the device twin (a JSON object; null removes a tag).
    SetTags {
        /// The device id.
        device: String,
        /// The tags, e.g. '{"env":"prod","ring":null}'.
        tags: String,
    },
    /// Let a device sign in again.
    Enable {
        /// The device id.
        device: String,
    },
    /// Refuse a device's sign-ins.
    Disable {
        /// The device id.
        device: String,
        /// Why, kept with the device.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove a device, its twins and its queues.
    Delete {
        /// The device id.
        device: String,
    },
}

fn status_name(status: i32) -> &'static str {
    match pb::DeviceStatus::try_from(status) {
        Ok(pb::DeviceStatus::Enabled) => "enabled",
        Ok(pb::DeviceStatus::Disabled) => "disabled",
        _ => "unknown",
    }
}

fn when(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return "never".into();
    }
    let secs = i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix_ms.to_string())
}

fn auth_json(device: &pb::Device) -> Value {
    match device.authentication.as_ref().and_then(|a| a.kind.as_ref()) {
        Some(pb::authentication::Kind::SymmetricKey(k)) => {
            json!({"type": "sas", "symmetricKey": {"primaryKey": k.primary_key, "secondaryKey": k.secondary_key}})
        }
        Some(pb::authentication::Kind::X509Thumbprint(t)) => json!({"type": "selfSigned",
            "x509Thumbprint": {"primaryThumbprint": t.primary_thumbprint, "secondaryThumbprint": t.secondary_thumbprint}}),
        None => Value::Null,
    }
}

/// A device as IoT Hub's device identity JSON.
fn device_json(device: &pb::Device) -> Value {
    json!({
        "deviceId": device.device_id,
        "generationId": device.generation_id,
        "etag": device.etag,
        "status": status_name(device.status),
        "statusReason": device.status_reason,
        "connectionState": device.connection_state,
        "lastActivityTime": when(device.last_activity_unix_ms),
        "createdTime": when(device.created_unix_ms),
        "authentication": auth_json(device),
    })
}

fn print_device(device: &pb::Device, tags: Option<&str>) {
    println!("device:       {}", device.device_id);
    println!(
        "status:       {}{}",
        status_name(device.status),
        if device.status_reason.is_empty() { String::new() } else { format!(" ({})", device.status_reason) }
    );
    println!("connection:   {}, last activity {}", device.connection_state, when(device.last_activity_unix_ms));
    println!("created:      {}", when(device.created_unix_ms));
    match device.authentication.as_ref().and_then(|a| a.kind.as_ref()) {
        Some(pb::authentication::Kind::SymmetricKey(k)) => {
            println!("primary key:  {}", k.primary_key);
            println!("secondary key: {}", k.secondary_key);
        }
        Some(pb::authentication::Kind::X509Thumbprint(t)) => {
            println!("thumbprint:   {}", t.primary_thumbprint);
        }
        None => {}
    }
    if let Some(tags) = tags {
        println!("tags:         {tags}");
    }
}

/// Runs `command`.
pub async fn run(command: DeviceCommand, client: &CloudClient, format: Format) -> anyhow::Result<ExitCode> {
    let mut registry = RegistryClient::new(client.channel.clone());
    match command {
        DeviceCommand::Create { device, primary_key, secondary_key, x509_thumbprint, tags, disabled } => {
            let kind = match (primary_key, x509_thumbprint) {
                (Some(primary), _) => Some(pb::authentication::Kind::SymmetricKey(pb::SymmetricKey {
                    primary_key: primary,
                    secondary_key: secondary_key.unwrap_or_default(),
                })),
                (None, Some(thumbprint)) => Some(pb::authentication::Kind::X509Thumbprint(pb::X509Thumbprint {
                    primary_thumbprint: thumbprint,
                    secondary_thumbprint: String::new(),
                })),
                (None, None) => None,
            };
            let request = pb::CreateDeviceRequest {
                device_id: device,
                authentication: kind.map(|kind| pb::Authentication { kind: Some(kind) }),
                tags_json: tags.unwrap_or_default(),
                disabled,
            };
            let created = registry.create_device(client.request(request)).await?.into_inner();
            if format == Format::Json {
                output::json(&device_json(&created))?;
            } else {
                print_device(&created, None);
            }
        }
        DeviceCommand::List { limit } => {
            let mut devices = Vec::new();
            let mut after = String::new();
            while devices.len() < limit {
                let page_size = u32::try_from((limit - devices.len()).min(1000)).unwrap_or(1000);
                let page = registry
                    .list_devices(client.request(pb::ListDevicesRequest { page_size, after: after.clone() }))
                    .await?
                    .into_inner();
                devices.extend(page.devices);
                if page.next.is_empty() {
                    break;
                }
                after = page.next;
            }
            if format == Format::Json {
                output::json(&devices.iter().map(device_json).collect::<Vec<_>>())?;
            } else {
                let rows: Vec<Vec<String>> = devices
                    .iter()
                    .map(|d| {
                        vec![
                            d.device_id.clone(),
                            status_name(d.status).into(),
                            d.connection_state.clone(),
                            when(d.last_activity_unix_ms),
                        ]
                    })
                    .collect();
                output::table(&["DEVICE", "STATUS", "CONNECTION", "LAST ACTIVITY"], &rows);
            }
        }
        DeviceCommand::Show { device } => {
            let found = registry.get_device(client.request(pb::GetDeviceRequest { device_id: device.clone() })).await?;
            let found = found.into_inner();
            let twin = TwinsClient::new(client.channel.clone())
                .get_twin(client.request(pb::GetTwinRequest { device_id: device, module_id: String::new() }))
                .await?
                .into_inner();
            if format == Format::Json {
                let mut value = device_json(&found);
                value["tags"] = serde_json::from_str(&twin.tags_json).unwrap_or(Value::Null);
                output::json(&value)?;
            } else {
                print_device(&found, Some(&twin.tags_json));
            }
        }
        DeviceCommand::SetTags { device, tags } => {
            let twin = TwinsClient::new(client.channel.clone())
                .update_twin(client.request(pb::UpdateTwinRequest {
                    device_id: device.clone(),
                    tags_patch_json: tags,
                    ..pb::UpdateTwinRequest::default()
                }))
                .await?
                .into_inner();
            if format == Format::Json {
                output::json(&serde_json::from_str::<Value>(&twin.tags_json).unwrap_or(Value::Null))?;
            } else {
                println!("{device}: tags {}", twin.tags_json);
            }
        }
        DeviceCommand::Enable { device } => {
            set_status(&mut registry, client, device, pb::DeviceStatus::Enabled, None, format).await?;
        }
        DeviceCommand::Disable { device, reason } => {
            set_status(&mut registry, client, device, pb::DeviceStatus::Disabled, reason, format).await?;
        }
        DeviceCommand::Delete { device } => {
            registry
                .delete_device(
                    client.request(pb::DeleteDeviceRequest { device_id: device.clone(), if_match: String::new() }),
                )
                .await?;
            if format == Format::Json {
                output::json(&json!({"deviceId": device, "deleted": true}))?;
            } else {
                println!("{device}: deleted");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_status(
    registry: &mut RegistryClient<tonic::transport::Channel>,
    client: &CloudClient,
    device: String,
    status: pb::DeviceStatus,
    reason: Option<String>,
    format: Format,
) -> anyhow::Result<()> {
    let updated = registry
        .update_device(client.request(pb::UpdateDeviceRequest {
            device_id: device,
            status: status as i32,
            status_reason: reason.unwrap_or_default(),
            ..pb::UpdateDeviceRequest::default()
        }))
        .await?
        .into_inner();
    if format == Format::Json {
        output::json(&device_json(&updated))
    } else {
        println!("{}: {}", updated.device_id, status_name(updated.status));
        Ok(())
    }
}
