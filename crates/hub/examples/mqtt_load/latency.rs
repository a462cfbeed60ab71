//! Publish→deliver latency at a fixed rate: the publisher stamps each message with its send
//! time (the subscriber is in the same process, so on the same clock) and paces itself; the
//! subscriber records every latency. Percentiles in microseconds.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use outpost_hub::mqtt::{QoS, Version, encode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::client::{Client, Error, age_us, percentiles, publish, stamped};

/// `latency PORT RATE SECONDS QOS [persistent]`.
pub async fn run(args: &[String]) -> Result<String, Error> {
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let port = arg(0, 1883) as u16;
    let rate = arg(1, 1_000).max(1);
    let messages = (rate * arg(2, 10)) as usize;
    let qos = if arg(3, 0) == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
    let persistent = args.get(4).is_some_and(|a| a == "persistent");

    let origin = Instant::now();
    let mut subscriber = Client::connect(port, "latency-sub", persistent).await?;
    subscriber.subscribe("bench/latency", qos).await?;
    let receiver = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(messages);
        subscriber
            .receive_all(messages, |payload| {
                latencies.push(age_us(origin, payload));
            })
            .await?;
        Ok::<Vec<u64>, Error>(latencies)
    });

    let publisher = Client::connect(port, "latency-pub", false).await?;
    // Acknowledgements are read (and dropped) on the side, so that they never back up.
    let (mut acks, mut writer) = publisher.stream.into_split();
    tokio::spawn(async move {
        let mut sink = vec![0u8; 16 * 1024];
        while matches!(acks.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let every = Duration::from_nanos(1_000_000_000 / rate);
    let start = tokio::time::Instant::now();
    let mut frame = BytesMut::new();
    for n in 0..messages {
        tokio::time::sleep_until(start + every * n as u32).await;
        let packet_id = (qos == QoS::AtLeastOnce).then_some((n % 65_535) as u16 + 1);
        frame.clear();
        encode(&publish("bench/latency", qos, packet_id, stamped(origin)), Version::V311, &mut frame)?;
        writer.write_all(&frame).await?;
    }
    let mut latencies = receiver.await??;
    Ok(format!(
        "{{\"messages\": {messages}, \"rate\": {rate}, \"qos\": {}, {}}}",
        qos as u8,
        percentiles(&mut latencies)
    ))
}
