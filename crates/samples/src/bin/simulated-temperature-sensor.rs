//! simulated-temperature-sensor: sends simulated machine and ambient readings on output
//! `temperatureOutput`, like Azure's SimulatedTemperatureSensor, each with the application
//! properties `sequenceNumber` (1, 2, … per run) and `runId` (the run's start, Unix ms).
//!
//! Settings: environment `MessageCount` (default 500; 0 = no limit) and `SendInterval`
//! (seconds, default 5); desired properties `SendData` (bool) and `SendInterval` override
//! them while the module runs.

use std::process::ExitCode;
use std::time::Duration;

use outpost_samples::client::ModuleClient;
use outpost_samples::env::{ModuleEnv, number};
use outpost_samples::message::Message;

/// A small xorshift generator: readings need variety, not cryptographic quality.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The simulated machine: its temperature climbs from 21 °C to 100 °C and starts over.
struct Machine {
    temperature: f64,
    noise: Noise,
}

impl Machine {
    fn reading(&mut self) -> serde_json::Value {
        self.temperature += self.noise.next();
        if self.temperature > 100.0 {
            self.temperature = 21.0;
        }
        let pressure = 1.0 + (self.temperature - 21.0) * 9.0 / 79.0;
        let round = |x: f64| (x * 100.0).round() / 100.0;
        serde_json::json!({
            "machine": {"temperature": round(self.temperature), "pressure": round(pressure)},
            "ambient": {"temperature": round(20.0 + self.noise.next()), "humidity": round(24.0 + 3.0 * self.noise.next())},
            "timeCreated": outpost_core::time::rfc3339(outpost_samples::client::now() as i64),
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    outpost_samples::init_logging();
    let settings =
        (|| Ok::<_, outpost_samples::ClientError>((number("MessageCount", 500u64)?, number("SendInterval", 5f64)?)))();
    let (count, mut interval) = match settings {
        Ok(s) => s,
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
    let (client, _inputs) = match ModuleClient::connect(env).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut desired = client.desired();
    let seed = outpost_samples::client::now() ^ (u64::from(std::process::id()) << 32) | 1;
    let mut machine = Machine { temperature: 21.0, noise: Noise(seed) };
    let mut send = true;
    let mut sent = 0u64;
    let run_id =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()).to_string();
    while count == 0 || sent < count {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs_f64(interval.max(0.01))) => {}
            changed = desired.changed() => {
                if changed.is_err() {
                    return ExitCode::FAILURE;
                }
                let current = desired.borrow_and_update().clone();
                if let Some(s) = current.get("SendData").and_then(|v| v.as_bool()) {
                    send = s;
                }
                if let Some(i) = current.get("SendInterval").and_then(|v| v.as_f64()) {
                    interval = i;
                }
                tracing::info!(send, interval, "desired properties applied");
                continue;
            }
        }
        if !send {
            continue;
        }
        let reading = machine.reading();
        // Numbered per run (a run is named by its start time) so receivers can tell a gap.
        let message = Message::json(&reading)
            .with_property("sequenceNumber", &(sent + 1).to_string())
            .with_property("runId", &run_id);
        match client.send_output("temperatureOutput", &message).await {
            Ok(()) => {
                sent += 1;
                tracing::info!(n = sent, %reading, "sent");
            }
            Err(e) => tracing::warn!(error = %e, "cannot send"),
        }
    }
    tracing::info!(sent, "all messages sent; idle");
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
