//! A bare MQTT 3.1.1 client on Outpost's codec: connect, subscribe, publish, read packets.

use bytes::{Buf as _, Bytes, BytesMut};
use outpost_hub::mqtt::{
    Ack, Connect, Packet, Properties, Publish, QoS, Subscribe, SubscriptionOptions, Version, decode, encode,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A connection with its read buffer.
pub struct Client {
    pub stream: TcpStream,
    pub buf: BytesMut,
    out: BytesMut,
}

impl Client {
    /// Connects as `id` (clean session unless `persistent`).
    pub async fn connect(port: u16, id: &str, persistent: bool) -> Result<Self, Error> {
        Self::connect_as(port, id, persistent, None).await
    }

    /// Connects as `id` with a user name and password.
    pub async fn connect_as(
        port: u16,
        id: &str,
        persistent: bool,
        credentials: Option<(&str, &str)>,
    ) -> Result<Self, Error> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let mut client = Self { stream, buf: BytesMut::with_capacity(16 * 1024), out: BytesMut::new() };
        let connect = Connect {
            version: Version::V311,
            client_id: id.into(),
            clean_start: !persistent,
            keep_alive: 600,
            username: credentials.map(|(user, _)| user.to_owned()),
            password: credentials.map(|(_, password)| Bytes::copy_from_slice(password.as_bytes())),
            will: None,
            properties: Properties::default(),
        };
        client.send(&Packet::Connect(Box::new(connect))).await?;
        match client.next().await? {
            Packet::ConnAck(ack) if ack.code == 0 => Ok(client),
            other => Err(format!("{id}: unexpected {other:?}").into()),
        }
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &Packet) -> Result<(), Error> {
        self.out.clear();
        encode(packet, Version::V311, &mut self.out)?;
        self.stream.write_all(&self.out).await?;
        Ok(())
    }

    /// Subscribes to `filter` and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), Error> {
        let subscribe = Subscribe {
            packet_id: 1,
            filters: vec![(filter.into(), SubscriptionOptions::qos(qos))],
            properties: Properties::default(),
        };
        self.send(&Packet::Subscribe(subscribe)).await?;
        loop {
            if matches!(self.next().await?, Packet::SubAck(_)) {
                return Ok(());
            }
        }
    }

    /// A decoded packet already read, if any.
    pub fn decoded(&mut self) -> Result<Option<Packet>, Error> {
        match decode(&self.buf, Some(Version::V311), 1 << 20)? {
            Some((packet, used)) => {
                self.buf.advance(used);
                Ok(Some(packet))
            }
            None => Ok(None),
        }
    }

    /// Reads more bytes; an error when the broker closed the connection.
    pub async fn fill(&mut self) -> Result<(), Error> {
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err("the broker closed the connection".into());
        }
        Ok(())
    }

    /// The next packet.
    pub async fn next(&mut self) -> Result<Packet, Error> {
        loop {
            if let Some(packet) = self.decoded()? {
                return Ok(packet);
            }
            self.fill().await?;
        }
    }
}

/// A PUBLISH to `topic`.
pub fn publish(topic: &str, qos: QoS, packet_id: Option<u16>, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id,
        payload,
        properties: Properties::default(),
    })
}

impl Client {
    /// Publishes `count` messages of `payload` to `topic`, pipelined: QoS 0 as fast as the
    /// socket takes them, QoS 1 with at most `window` unacknowledged.
    pub async fn publish_all(
        &mut self,
        topic: &str,
        qos: QoS,
        count: usize,
        payload: &Bytes,
        window: usize,
    ) -> Result<(), Error> {
        let mut batch = BytesMut::with_capacity(64 * 1024);
        let (mut sent, mut inflight, mut next_id) = (0usize, 0usize, 0u16);
        while sent < count {
            while sent < count && (qos == QoS::AtMostOnce || inflight < window) && batch.len() < 32 * 1024 {
                let packet_id = (qos == QoS::AtLeastOnce).then(|| {
                    next_id = next_id.wrapping_add(1).max(1);
                    next_id
                });
                encode(&publish(topic, qos, packet_id, payload.clone()), Version::V311, &mut batch)?;
                sent += 1;
                inflight += usize::from(qos == QoS::AtLeastOnce);
            }
            self.stream.write_all(&batch).await?;
            batch.clear();
            // Loopback writes rarely wait: let the receivers in this process run.
            tokio::task::yield_now().await;
            // Collect acknowledgements until the window has room again (or all are in).
            while qos == QoS::AtLeastOnce && (inflight >= window || (sent == count && inflight > 0)) {
                // Take every acknowledgement already read before deciding to read more, so
                // that the next write carries as many messages as the window allows.
                let mut took = false;
                while let Some(packet) = self.decoded()? {
                    took = true;
                    inflight -= usize::from(matches!(packet, Packet::PubAck(_)));
                }
                if !took {
                    self.fill().await?;
                }
            }
        }
        Ok(())
    }

    /// Receives `count` messages, acknowledging QoS 1 ones in batches; calls `each` with every
    /// payload. Stops early when nothing arrives for 5 s (a broker may drop QoS 0 messages
    /// for a subscriber that falls behind); returns how many arrived.
    pub async fn receive_all(&mut self, count: usize, mut each: impl FnMut(&Bytes)) -> Result<usize, Error> {
        let mut received = 0usize;
        let mut acks = BytesMut::new();
        while received < count {
            while let Some(packet) = self.decoded()? {
                if let Packet::Publish(p) = packet {
                    received += 1;
                    each(&p.payload);
                    if let Some(id) = p.packet_id {
                        encode(&Packet::PubAck(Ack::ok(id)), Version::V311, &mut acks)?;
                    }
                }
            }
            if !acks.is_empty() {
                self.stream.write_all(&acks).await?;
                acks.clear();
            }
            if received < count {
                match tokio::time::timeout(std::time::Duration::from_secs(5), self.fill()).await {
                    Ok(filled) => filled?,
                    Err(_) => break,
                }
            }
        }
        Ok(received)
    }
}

/// A 64-byte payload stamped with its send time: nanoseconds since `origin`.
pub fn stamped(origin: std::time::Instant) -> Bytes {
    let mut payload = vec![b'x'; 64];
    payload[..8].copy_from_slice(&(origin.elapsed().as_nanos() as u64).to_be_bytes());
    Bytes::from(payload)
}

/// Microseconds since a [`stamped`] payload was sent (0 for a payload too short to carry a
/// stamp).
pub fn age_us(origin: std::time::Instant, payload: &[u8]) -> u64 {
    let Some(stamp) = payload.get(..8) else { return 0 };
    let mut sent = [0u8; 8];
    sent.copy_from_slice(stamp);
    let sent = std::time::Duration::from_nanos(u64::from_be_bytes(sent));
    origin.elapsed().saturating_sub(sent).as_micros() as u64
}

/// `"p50_us": …, "p99_us": …, "max_us": …` of `latencies` (sorted here; zeros when empty).
pub fn percentiles(latencies: &mut [u64]) -> String {
    latencies.sort_unstable();
    let at = |q: f64| {
        let last = latencies.len().saturating_sub(1);
        latencies.get(((latencies.len() as f64 * q) as usize).min(last)).copied().unwrap_or(0)
    };
    format!("\"p50_us\": {}, \"p99_us\": {}, \"max_us\": {}", at(0.50), at(0.99), at(1.0))
}
