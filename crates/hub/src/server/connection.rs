//! One MQTT connection: bytes in, packets to the broker task; frames from the broker task,
//! bytes out. CONNECTs are authenticated here, before the broker sees them; keep-alive,
//! credential expiry and the DISCONNECT grace period are enforced here.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::outbox::Outbox;
use super::{Event, now};
use crate::auth::Authenticator;
use crate::broker::session::ConnId;
use crate::mqtt::{ConnAck, Disconnect, ErrorKind, Packet, Properties, Version, decode, encode, reason};

/// A client must send CONNECT within this time of opening the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client that sent DISCONNECT has to close the connection itself.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// Authenticates `connect`: the event for the broker and when the credentials expire, or
/// `None` once a refusal has been written.
async fn admit<W: tokio::io::AsyncWrite + Unpin>(
    conn: ConnId,
    connect: Box<crate::mqtt::Connect>,
    context: &Context,
    writer: &mut W,
    out: &mut BytesMut,
) -> Option<(Event, Option<std::pin::Pin<Box<tokio::time::Sleep>>>)> {
    match context.authenticator.authenticate(&connect, now()).await {
        Ok(admitted) => {
            let expiry = admitted.expires_at.map(|at| {
                let at = tokio::time::Instant::now() + Duration::from_secs(at.saturating_sub(now()));
                Box::pin(tokio::time::sleep_until(at))
            });
            Some((Event::Connect(conn, connect, admitted.access), expiry))
        }
        Err(refused) => {
            tracing::info!(conn, client = connect.client_id, reason = refused.reason, "connection refused");
            let answer = match connect.version {
                Version::V311 => refusal(refused.v311, Properties::default()),
                Version::V5 => {
                    refusal(refused.v5, Properties { reason_string: Some(refused.reason), ..Default::default() })
                }
            };
            if frame(out, answer, connect.version) {
                let _ = writer.write_all(out).await;
                let _ = writer.flush().await;
            }
            None
        }
    }
}

/// Encodes `packet` alone into `out`. Packets are built in the call so that none is kept
/// across an await: a connection's future keeps room for everything that is, for as long as
/// the connection lives.
fn frame(out: &mut BytesMut, packet: Packet, version: Version) -> bool {
    out.clear();
    encode(&packet, version, out).is_ok()
}

/// DISCONNECT for a connection whose credentials expired.
fn expired() -> Packet {
    let properties = Properties {
        reason_string: Some("the SAS token expired; reconnect with a new one".into()),
        ..Default::default()
    };
    Packet::Disconnect(Disconnect { code: reason::NOT_AUTHORIZED, properties })
}

/// A refusing CONNACK.
fn refusal(code: u8, properties: Properties) -> Packet {
    Packet::ConnAck(ConnAck { session_present: false, code, properties })
}

/// What every connection task needs.
pub(super) struct Context {
    pub(super) max_packet_size: usize,
    pub(super) authenticator: Arc<Authenticator>,
}

pub(super) async fn connection<S>(
    conn: ConnId,
    stream: S,
    context: Context,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let max_packet_size = context.max_packet_size;
    let outbox = Arc::new(Outbox::default());
    if Box::pin(events.send(Event::Open(conn, outbox.clone()))).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    // Idle connections keep small buffers; busy ones grow them (see the read below).
    let mut read_size = 128;
    let mut buf = BytesMut::with_capacity(read_size);
    let mut version: Option<Version> = None;
    let mut idle = CONNECT_TIMEOUT;
    let mut out = BytesMut::new();
    let mut reading = true;
    let mut disconnected = false;
    // Credentials with an end (SAS tokens) end the connection when they expire.
    // Boxed: only IoT Hub identities have one.
    let mut expires: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    'outer: loop {
        out.clear();
        // Reads start at 128 bytes and double (up to 64 KiB) each time one fills the room it
        // had: a busy connection reads in large chunks, an idle one keeps a small buffer.
        buf.reserve(read_size);
        let room = buf.capacity() - buf.len();
        tokio::select! {
            () = shutdown.cancelled() => {
                let bye = Disconnect { code: reason::SERVER_SHUTTING_DOWN, properties: Properties::default() };
                if version == Some(Version::V5) && frame(&mut out, Packet::Disconnect(bye), Version::V5) {
                    let _ = writer.write_all(&out).await;
                    let _ = writer.flush().await;
                }
                break;
            }
            () = async { if let Some(at) = expires.as_mut() { at.await } }, if expires.is_some() => {
                tracing::info!(conn, "credentials expired; closing");
                if version == Some(Version::V5) && frame(&mut out, expired(), Version::V5) {
                    let _ = writer.write_all(&out).await;
                    let _ = writer.flush().await;
                }
                break;
            }
            read = tokio::time::timeout(idle, reader.read_buf(&mut buf)), if reading => {
                match read {
                    Err(_) => {
                        tracing::debug!(conn, "keep-alive expired");
                        break;
                    }
                    Ok(Ok(0)) => break,
                    Ok(Err(e)) => {
                        tracing::debug!(conn, error = %e, "connection ended with an error");
                        break;
                    }
                    Ok(Ok(n)) => {
                        if n >= room {
                            read_size = (read_size * 2).min(64 * 1024);
                        }
                        if disconnected {
                            // After DISCONNECT nothing counts; wait for the close.
                            buf.clear();
                            continue;
                        }
                    }
                }
                loop {
                    match decode(&buf, version, max_packet_size) {
                        Ok(Some((packet, used))) => {
                            buf.advance(used);
                            let event = match packet {
                                Packet::Connect(c) => {
                                    version = Some(c.version);
                                    idle = if c.keep_alive == 0 { Duration::from_secs(u64::MAX / 4) } else { Duration::from_millis(u64::from(c.keep_alive) * 1500) };
                                    // Boxed: authentication only lives during CONNECT, and an idle
                                    // connection should not keep room for it.
                                    match Box::pin(admit(conn, c, &context, &mut writer, &mut out)).await {
                                        Some((event, expiry)) => {
                                            expires = expiry;
                                            event
                                        }
                                        None => break 'outer,
                                    }
                                }
                                packet => Event::Packet(conn, packet),
                            };
                            let disconnecting = matches!(event, Event::Packet(_, Packet::Disconnect(_)));
                            // Boxed, like every send of an event: a packet is large, and an idle
                            // connection should not keep room for one.
                            if Box::pin(events.send(event)).await.is_err() {
                                break 'outer;
                            }
                            if disconnecting {
                                // Nothing more is read; the client closes, or we do shortly.
                                buf.clear();
                                idle = DISCONNECT_GRACE;
                                disconnected = true;
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(error) => {
                            tracing::info!(conn, %error, "closing a connection that broke the protocol");
                            if version.is_some() {
                                // The broker answers in order and then closes us.
                                reading = false;
                                if Box::pin(events.send(Event::Violation(conn, error))).await.is_err() {
                                    break 'outer;
                                }
                                break;
                            }
                            if error.kind == ErrorKind::UnsupportedVersion
                                && frame(&mut out, refusal(reason::V311_UNACCEPTABLE_PROTOCOL, Properties::default()), Version::V311)
                            {
                                let _ = writer.write_all(&out).await;
                                let _ = writer.flush().await;
                            }
                            break 'outer;
                        }
                    }
                }
            }
            more = outbox.take(&mut out, 64 * 1024) => {
                // Everything queued, coalesced into one write; `false`: the broker closed us.
                let close = !more;
                // TLS buffers what it encrypts: flush, or an acknowledgement can sit unsent.
                if !out.is_empty() && (writer.write_all(&out).await.is_err() || writer.flush().await.is_err()) {
                    break;
                }
                if close {
                    break;
                }
            }
        }
    }
    let _ = writer.shutdown().await;
    let _ = Box::pin(events.send(Event::Closed(conn))).await;
}
