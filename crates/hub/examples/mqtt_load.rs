//! A pipelined MQTT load generator for `cargo xtask bench hub`: one publisher and one
//! subscriber on a topic, QoS 0 or QoS 1 with an in-flight window, 64-byte payloads by
//! default. Prints one JSON line: messages, seconds, messages per second. Speaks only MQTT
//! 3.1.1, with Outpost's codec, so it measures any broker the same way.
//!
//! Usage: mqtt_load PORT QOS MESSAGES [PAYLOAD_BYTES] [WINDOW] [persistent]
//! (`persistent`: the subscriber keeps a persistent session, so a broker with a store writes
//! every QoS 1 message to disk before acknowledging it.)

use std::time::Instant;

use bytes::{Buf as _, Bytes, BytesMut};
use outpost_hub::mqtt::{
    Ack, Connect, Packet, Properties, Publish, QoS, Subscribe, SubscriptionOptions, Version, decode, encode,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn connect(port: u16, id: &str, clean: bool) -> Result<(TcpStream, BytesMut), Error> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let mut out = BytesMut::new();
    let connect = Connect {
        version: Version::V311,
        client_id: id.into(),
        clean_start: clean,
        keep_alive: 60,
        username: None,
        password: None,
        will: None,
        properties: Properties::default(),
    };
    encode(&Packet::Connect(Box::new(connect)), Version::V311, &mut out)?;
    stream.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        if let Some((packet, used)) = decode(&buf, Some(Version::V311), 1 << 20)? {
            buf.advance(used);
            match packet {
                Packet::ConnAck(ack) if ack.code == 0 => return Ok((stream, buf)),
                other => return Err(format!("{id}: unexpected {other:?}").into()),
            }
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(format!("{id}: closed before CONNACK").into());
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let port = arg(0, 1883) as u16;
    let qos = if arg(1, 0) == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
    let messages = arg(2, 100_000);
    let payload = Bytes::from(vec![b'x'; arg(3, 64)]);
    let window = arg(4, 100);
    let persistent = args.get(5).is_some_and(|a| a == "persistent");

    let (mut sub, mut sub_buf) = connect(port, "load-sub", !persistent).await?;
    let mut out = BytesMut::new();
    let subscribe = Subscribe {
        packet_id: 1,
        filters: vec![("bench/t".into(), SubscriptionOptions::qos(qos))],
        properties: Properties::default(),
    };
    encode(&Packet::Subscribe(subscribe), Version::V311, &mut out)?;
    sub.write_all(&out).await?;
    loop {
        if let Some((packet, used)) = decode(&sub_buf, Some(Version::V311), 1 << 20)? {
            sub_buf.advance(used);
            if matches!(packet, Packet::SubAck(_)) {
                break;
            }
            continue;
        }
        if sub.read_buf(&mut sub_buf).await? == 0 {
            return Err("subscriber closed before SUBACK".into());
        }
    }

    let receiver = tokio::spawn(async move {
        let mut received = 0usize;
        let mut acks = BytesMut::new();
        while received < messages {
            while let Some((packet, used)) = decode(&sub_buf, Some(Version::V311), 1 << 20)? {
                sub_buf.advance(used);
                if let Packet::Publish(p) = packet {
                    received += 1;
                    if let Some(id) = p.packet_id {
                        encode(&Packet::PubAck(Ack::ok(id)), Version::V311, &mut acks)?;
                    }
                }
            }
            if !acks.is_empty() {
                sub.write_all(&acks).await?;
                acks.clear();
            }
            if received < messages && sub.read_buf(&mut sub_buf).await? == 0 {
                return Err::<Instant, Error>(format!("subscriber closed after {received}").into());
            }
        }
        Ok(Instant::now())
    });

    let (mut publisher, mut pub_buf) = connect(port, "load-pub", true).await?;
    let start = Instant::now();
    let mut sent = 0usize;
    let mut inflight = 0usize;
    let mut next_id: u16 = 0;
    let mut batch = BytesMut::with_capacity(64 * 1024);
    while sent < messages {
        while sent < messages && (qos == QoS::AtMostOnce || inflight < window) && batch.len() < 32 * 1024 {
            let packet_id = (qos == QoS::AtLeastOnce).then(|| {
                next_id = next_id.wrapping_add(1).max(1);
                next_id
            });
            let publish = Publish {
                dup: false,
                qos,
                retain: false,
                topic: "bench/t".into(),
                packet_id,
                payload: payload.clone(),
                properties: Properties::default(),
            };
            encode(&Packet::Publish(publish), Version::V311, &mut batch)?;
            sent += 1;
            if qos == QoS::AtLeastOnce {
                inflight += 1;
            }
        }
        publisher.write_all(&batch).await?;
        batch.clear();
        if qos == QoS::AtLeastOnce && (inflight >= window || sent == messages) {
            // Collect acknowledgements until the window has room again.
            while inflight >= window || (sent == messages && inflight > 0) {
                while let Some((packet, used)) = decode(&pub_buf, Some(Version::V311), 1 << 20)? {
                    pub_buf.advance(used);
                    if matches!(packet, Packet::PubAck(_)) {
                        inflight -= 1;
                    }
                }
                if (inflight >= window || (sent == messages && inflight > 0))
                    && publisher.read_buf(&mut pub_buf).await? == 0
                {
                    return Err("publisher closed".into());
                }
            }
        }
    }
    let end = receiver.await??;
    let seconds = end.duration_since(start).as_secs_f64();
    println!(
        "{{\"messages\": {messages}, \"qos\": {}, \"seconds\": {seconds:.3}, \"rate\": {:.0}}}",
        qos as u8,
        messages as f64 / seconds
    );
    Ok(())
}
