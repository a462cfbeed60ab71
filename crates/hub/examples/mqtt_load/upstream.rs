//! Telemetry as an IoT Hub module, for routes to `$upstream`: MESSAGES QoS 1 messages on
//! `devices/{device}/modules/{module}/messages/events/`, each stored by the hub before its
//! PUBACK.

use std::time::Instant;

use bytes::Bytes;
use outpost_hub::mqtt::QoS;

use crate::client::{Client, Error};

/// `upstream PORT MESSAGES DEVICE MODULE HUB TOKEN`.
pub async fn run(args: &[String]) -> Result<String, Error> {
    let text = |i: usize| args.get(i).cloned().ok_or_else(|| Error::from(format!("argument {i} is missing")));
    let port: u16 = text(0)?.parse()?;
    let messages: usize = text(1)?.parse()?;
    let (device, module, hub, token) = (text(2)?, text(3)?, text(4)?, text(5)?);
    let username = format!("{hub}/{device}/{module}/?api-version=2018-06-30");
    let mut client =
        Client::connect_as(port, &format!("{device}/{module}"), false, Some((username.as_str(), token.as_str())))
            .await?;
    let topic = format!("devices/{device}/modules/{module}/messages/events/");
    let start = Instant::now();
    client.publish_all(&topic, QoS::AtLeastOnce, messages, &Bytes::from(vec![b'x'; 64]), 100).await?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(format!("{{\"stored\": {messages}, \"seconds\": {seconds:.3}, \"rate\": {:.0}}}", messages as f64 / seconds))
}
