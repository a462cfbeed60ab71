//! Fills a broker's store: a persistent session subscribes at QoS 1 and leaves, then MESSAGES
//! QoS 1 messages are published for it (each stored before its PUBACK).

use std::time::Instant;

use bytes::Bytes;
use outpost_hub::mqtt::{Disconnect, Packet, QoS};

use crate::client::{Client, Error};

/// `fill PORT MESSAGES`.
pub async fn run(args: &[String]) -> Result<String, Error> {
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let port = arg(0, 1883) as u16;
    let messages = arg(1, 100_000);
    let mut keeper = Client::connect(port, "fill-keeper", true).await?;
    keeper.subscribe("bench/+", QoS::AtLeastOnce).await?;
    keeper.send(&Packet::Disconnect(Disconnect::default())).await?;
    drop(keeper);
    let mut publisher = Client::connect(port, "fill-pub", false).await?;
    let start = Instant::now();
    publisher.publish_all("bench/fill", QoS::AtLeastOnce, messages, &Bytes::from(vec![b'x'; 64]), 100).await?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(format!("{{\"stored\": {messages}, \"seconds\": {seconds:.3}, \"rate\": {:.0}}}", messages as f64 / seconds))
}
