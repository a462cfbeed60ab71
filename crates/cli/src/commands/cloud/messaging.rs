//! `outpost cloud monitor-events|invoke-method|send-c2d`: watch telemetry as it arrives,
//! call a module's direct method, queue a cloud-to-device message.

use std::process::ExitCode;

use outpost_proto::cloud::v1 as pb;
use outpost_proto::cloud::v1::messaging_client::MessagingClient;
use serde_json::{Value, json};

use super::connection::CloudClient;
use crate::output::{self, Format};

/// `outpost cloud monitor-events`.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Only this device.
    #[arg(long, short = 'd')]
    device: Option<String>,
    /// Only this module (with --device).
    #[arg(long, short = 'm', requires = "device")]
    module: Option<String>,
    /// Stop after this many events.
    #[arg(long, short = 'n')]
    count: Option<u64>,
}

/// `outpost cloud invoke-method`.
#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// The device.
    device: String,
    /// The module, e.g. '$edgeAgent'.
    module: String,
    /// The method, e.g. ping.
    method: String,
    /// JSON payload.
    #[arg(long, default_value = "null")]
    payload: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 30)]
    timeout: u32,
}

/// `outpost cloud send-c2d`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The device.
    device: String,
    /// The message body.
    body: String,
    /// Application properties, KEY=VALUE, repeatable.
    #[arg(long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    /// Drop the message if not delivered within this many seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u32,
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("property {text:?} is not KEY=VALUE"))
}

fn body_json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Streams telemetry until interrupted or `--count` events.
pub async fn monitor(args: MonitorArgs, client: &CloudClient, format: Format) -> anyhow::Result<ExitCode> {
    let request = pb::MonitorEventsRequest {
        device_id: args.device.clone().unwrap_or_default(),
        module_id: args.module.unwrap_or_default(),
    };
    let mut stream =
        MessagingClient::new(client.channel.clone()).monitor_events(client.request(request)).await?.into_inner();
    // On stderr in every format: scripts reading the JSON on stdout can wait for this line
    // to know that nothing sent from now on is missed.
    eprintln!("Monitoring events from {}... (Ctrl-C to stop)", args.device.as_deref().unwrap_or("every device"));
    let mut seen = 0;
    while let Some(event) = stream.message().await? {
        let value = json!({
            "event": {
                "origin": event.device_id,
                "module": event.module_id,
                "payload": body_json(&event.body),
                "properties": {"application": event.properties},
                "receivedUnixMs": event.received_unix_ms,
            }
        });
        if format == Format::Json {
            println!("{value}");
        } else {
            output::json(&value)?;
        }
        seen += 1;
        if args.count.is_some_and(|count| seen >= count) {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Calls a direct method and prints `{status, payload}`; exits non-zero unless 2xx.
pub async fn invoke(args: InvokeArgs, client: &CloudClient, _format: Format) -> anyhow::Result<ExitCode> {
    let request = pb::InvokeMethodRequest {
        device_id: args.device,
        module_id: args.module,
        method_name: args.method,
        payload_json: args.payload,
        response_timeout_secs: args.timeout,
    };
    let answer =
        MessagingClient::new(client.channel.clone()).invoke_method(client.request(request)).await?.into_inner();
    let payload: Value = serde_json::from_str(&answer.payload_json).unwrap_or(Value::String(answer.payload_json));
    output::json(&json!({"status": answer.status, "payload": payload}))?;
    Ok(if (200..300).contains(&answer.status) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Queues a cloud-to-device message.
pub async fn send(args: SendArgs, client: &CloudClient, format: Format) -> anyhow::Result<ExitCode> {
    let device = args.device.clone();
    let request = pb::SendMessageRequest {
        device_id: args.device,
        body: args.body.into_bytes(),
        properties: args.properties.into_iter().collect(),
        ttl_secs: args.ttl,
        message_id: String::new(),
    };
    let sent = MessagingClient::new(client.channel.clone()).send_message(client.request(request)).await?.into_inner();
    if format == Format::Json {
        output::json(&json!({"deviceId": device, "messageId": sent.message_id}))?;
    } else {
        println!("{device}: message {} queued", sent.message_id);
    }
    Ok(ExitCode::SUCCESS)
}
