//! A pipelined MQTT load generator for `cargo xtask bench hub`, speaking MQTT 3.1.1 with
//! Outpost's codec so that it measures any broker the same way. Prints one JSON line.
//!
//! Usage:
//! - `mqtt_load fan PORT PUBLISHERS SUBSCRIBERS MESSAGES QOS [PAYLOAD_BYTES] [WINDOW] [persistent]`
//!   — throughput, fan-in and fan-out (deliveries per second);
//! - `mqtt_load latency PORT RATE SECONDS QOS [persistent]` — publish→deliver percentiles;
//! - `mqtt_load idle PORT CONNECTIONS` — connections that stay until stdin closes;
//! - `mqtt_load fill PORT MESSAGES` — QoS 1 messages stored for a persistent session that left;
//! - `mqtt_load roundtrip PORT RATE SECONDS DEVICE HUB PING_TOKEN PONG_TOKEN` — module → hub →
//!   module round trips through routes, as IoT Hub modules;
//! - `mqtt_load upstream PORT MESSAGES DEVICE MODULE HUB TOKEN` — QoS 1 telemetry as an IoT
//!   Hub module (for routes to `$upstream`);
//! - `mqtt_load PORT QOS MESSAGES [PAYLOAD_BYTES] [WINDOW] [persistent]` — `fan` 1→1.
//!
//! `persistent`: subscribers keep persistent sessions, so a broker with a store writes every
//! QoS 1 message to disk before acknowledging it.

mod client;
mod fan;
mod fill;
mod idle;
mod latency;
mod roundtrip;
mod upstream;

use client::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let line = match args.first().map(String::as_str) {
        Some("fan") => fan::run(&args[1..]).await?,
        Some("latency") => latency::run(&args[1..]).await?,
        Some("idle") => idle::run(&args[1..]).await?,
        Some("fill") => fill::run(&args[1..]).await?,
        Some("roundtrip") => roundtrip::run(&args[1..]).await?,
        Some("upstream") => upstream::run(&args[1..]).await?,
        _ => {
            // PORT QOS MESSAGES [PAYLOAD] [WINDOW] [persistent] → fan PORT 1 1 MESSAGES QOS …
            let mut fan = vec![args.first().cloned().unwrap_or_default(), "1".into(), "1".into()];
            fan.push(args.get(2).cloned().unwrap_or_else(|| "100000".into()));
            fan.push(args.get(1).cloned().unwrap_or_else(|| "0".into()));
            fan.extend(args.iter().skip(3).cloned());
            fan::run(&fan).await?
        }
    };
    println!("{line}");
    Ok(())
}
