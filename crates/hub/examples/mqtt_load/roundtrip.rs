//! Module → hub → module round trips through routes, as IoT Hub modules: `ping` sends to its
//! output `out` at a fixed rate, a route takes it to `pong`'s input, `pong` sends it back on its
//! output, another route brings it to `ping`'s input; `ping` times each round trip.
//! The hub's deployment must route `ping/out → pong/in` and `pong/out → ping/in`.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use outpost_hub::mqtt::{Ack, Packet, QoS, Version, encode};
use tokio::io::AsyncWriteExt as _;

use crate::client::{Client, Error, age_us, percentiles, publish, stamped};

/// `roundtrip PORT RATE SECONDS DEVICE HUB PING_TOKEN PONG_TOKEN`.
pub async fn run(args: &[String]) -> Result<String, Error> {
    let text = |i: usize| args.get(i).cloned().ok_or_else(|| Error::from(format!("argument {i} missing")));
    let port: u16 = text(0)?.parse()?;
    let rate: u64 = text(1)?.parse::<u64>()?.max(1);
    let messages = (rate * text(2)?.parse::<u64>()?) as usize;
    let (device, hub) = (text(3)?, text(4)?);
    let module = |name: &str, token: String| {
        let (id, user) = (format!("{device}/{name}"), format!("{hub}/{device}/{name}/?api-version=2018-06-30"));
        // Persistent sessions, as Azure's SDKs keep: routed messages are stored (fsync) on the way.
        async move { Client::connect_as(port, &id, true, Some((&user, &token))).await }
    };
    let mut ping = module("ping", text(5)?).await?;
    let mut pong = module("pong", text(6)?).await?;
    ping.subscribe(&format!("devices/{device}/modules/ping/inputs/#"), QoS::AtLeastOnce).await?;
    pong.subscribe(&format!("devices/{device}/modules/pong/inputs/#"), QoS::AtLeastOnce).await?;

    // pong: every input goes back out.
    let pong_topic = format!("devices/{device}/modules/pong/messages/events/%24.on=out");
    tokio::spawn(async move {
        let mut frame = BytesMut::new();
        let mut next_id = 0u16;
        loop {
            let Ok(packet) = pong.next().await else { return };
            frame.clear();
            match packet {
                Packet::Publish(p) => {
                    if let Some(id) = p.packet_id {
                        let _ = encode(&Packet::PubAck(Ack::ok(id)), Version::V311, &mut frame);
                    }
                    next_id = next_id.wrapping_add(1).max(1);
                    let _ = encode(
                        &publish(&pong_topic, QoS::AtLeastOnce, Some(next_id), p.payload),
                        Version::V311,
                        &mut frame,
                    );
                }
                _ => continue,
            }
            if pong.stream.write_all(&frame).await.is_err() {
                return;
            }
        }
    });

    let origin = Instant::now();
    let (mut reader, writer) = {
        let Client { stream, .. } = ping;
        stream.into_split()
    };
    // Inputs come at QoS 1: ping acknowledges them on the connection it also sends on.
    let writer = std::sync::Arc::new(tokio::sync::Mutex::new(writer));
    let acks = writer.clone();
    let receiver = tokio::spawn(async move {
        let mut client_buf = BytesMut::new();
        let mut latencies = Vec::with_capacity(messages);
        while latencies.len() < messages {
            match tokio::time::timeout(
                Duration::from_secs(5),
                tokio::io::AsyncReadExt::read_buf(&mut reader, &mut client_buf),
            )
            .await
            {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Err(e)) => return Err(Error::from(e)),
                Ok(Ok(_)) => {}
            }
            let mut ack_frames = BytesMut::new();
            while let Some((packet, used)) = outpost_hub::mqtt::decode(&client_buf, Some(Version::V311), 1 << 20)? {
                bytes::Buf::advance(&mut client_buf, used);
                if let Packet::Publish(p) = packet {
                    if let Some(id) = p.packet_id {
                        encode(&Packet::PubAck(Ack::ok(id)), Version::V311, &mut ack_frames)?;
                    }
                    latencies.push(age_us(origin, &p.payload));
                }
            }
            if !ack_frames.is_empty() {
                acks.lock().await.write_all(&ack_frames).await?;
            }
        }
        Ok::<Vec<u64>, Error>(latencies)
    });
    let ping_topic = format!("devices/{device}/modules/ping/messages/events/%24.on=out");
    let every = Duration::from_nanos(1_000_000_000 / rate);
    let start = tokio::time::Instant::now();
    let mut frame = BytesMut::new();
    for n in 0..messages {
        tokio::time::sleep_until(start + every * n as u32).await;
        frame.clear();
        encode(&publish(&ping_topic, QoS::AtMostOnce, None, stamped(origin)), Version::V311, &mut frame)?;
        writer.lock().await.write_all(&frame).await?;
    }
    let mut latencies = receiver.await??;
    if latencies.is_empty() {
        return Err("no round trip came back: are the routes deployed?".into());
    }
    let received = latencies.len();
    Ok(format!("{{\"sent\": {messages}, \"received\": {received}, \"rate\": {rate}, {}}}", percentiles(&mut latencies)))
}
