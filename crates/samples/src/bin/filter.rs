//! filter: forwards readings from input `input1` whose `machine.temperature` is above a
//! threshold to output `output1`, marked `MessageType: Alert` — like Azure's filter module
//! sample.
//!
//! Settings: environment `TemperatureThreshold` (default 25); the desired property
//! `TemperatureThreshold` overrides it while the module runs.

use std::process::ExitCode;

use outpost_samples::client::ModuleClient;
use outpost_samples::env::{ModuleEnv, number};
use outpost_samples::message::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    outpost_samples::init_logging();
    let mut threshold = match number("TemperatureThreshold", 25f64) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let env = match ModuleEnv::from_process() {
        Ok(env) => env,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let (client, mut inputs) = match ModuleClient::connect(env).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut desired = client.desired();
    let (mut received, mut forwarded) = (0u64, 0u64);
    loop {
        tokio::select! {
            // A threshold change that arrived before a reading applies to it.
            biased;
            changed = desired.changed() => {
                if changed.is_err() {
                    return ExitCode::FAILURE;
                }
                if let Some(t) = desired.borrow_and_update().get("TemperatureThreshold").and_then(|v| v.as_f64()) {
                    threshold = t;
                    tracing::info!(threshold, "threshold from desired properties");
                }
            }
            input = inputs.recv() => {
                let Some(input) = input else { return ExitCode::FAILURE };
                if input.name != "input1" {
                    continue;
                }
                received += 1;
                let reading: Option<serde_json::Value> = serde_json::from_slice(&input.message.body).ok();
                let temperature = reading.as_ref().and_then(|r| r.pointer("/machine/temperature")).and_then(|t| t.as_f64());
                match (reading, temperature) {
                    (Some(reading), Some(t)) if t > threshold => {
                        let alert = Message::json(&reading).with_property("MessageType", "Alert");
                        match client.send_output("output1", &alert).await {
                            Ok(()) => {
                                forwarded += 1;
                                tracing::info!(temperature = t, threshold, received, forwarded, "forwarded");
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot forward"),
                        }
                    }
                    (_, Some(_)) => {}
                    _ => tracing::warn!("input1: not a reading with machine.temperature; dropped"),
                }
            }
        }
    }
}
