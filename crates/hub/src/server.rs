//! The broker's I/O: a task per TCP connection that decodes packets and writes what it is
//! given, and one broker task that owns the [`Broker`] state and turns packets into actions.
//! Connections never touch the state; the broker never blocks on a socket (a client that
//! does not read is disconnected when its outbound queue is full).

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::sync::Arc;

use crate::auth::{Access, Authenticator};
use crate::broker::session::ConnId;
use crate::broker::{Action, Broker, Limits};
use crate::mqtt::{ConnAck, Connect, Disconnect, ErrorKind, Packet, Properties, Version, decode, encode, reason};
use crate::routes::RouteSource;
use crate::store::MessageStore;

/// A client must send CONNECT within this time of opening the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events handled between two commits of the store.
const BATCH: usize = 256;
/// Frames queued per connection before a slow reader is disconnected.
const OUTBOUND_QUEUE: usize = 4096;

enum Outbound {
    Bytes(Bytes),
    Close,
}

#[allow(clippy::large_enum_variant)] // v5 properties inline; a compact form comes with the store
enum Event {
    Open(ConnId, mpsc::Sender<Outbound>),
    Connect(ConnId, Box<Connect>, Access),
    Packet(ConnId, Packet),
    /// The connection broke the protocol after its CONNECT: answered in order (after the
    /// CONNACK and whatever else was already queued) and closed.
    Violation(ConnId, crate::mqtt::DecodeError),
    /// A new deployment: routes and module twins.
    Deployment(crate::routes::HubDeployment),
    Closed(ConnId),
}

/// Where clients connect: plain TCP and, optionally, TLS.
pub struct Listeners {
    /// MQTT over TCP.
    pub plain: TcpListener,
    /// MQTT over TLS, with its acceptor.
    pub tls: Option<(TcpListener, TlsAcceptor)>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners").field("plain", &self.plain).field("tls", &self.tls.is_some()).finish()
    }
}

/// How long a client that sent DISCONNECT has to close the connection itself.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return stream;
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_tls(tls: &Option<(TcpListener, TlsAcceptor)>) -> (TcpStream, TlsAcceptor) {
    match tls {
        Some((listener, acceptor)) => (accept(listener).await, acceptor.clone()),
        None => std::future::pending().await,
    }
}

/// Accepts MQTT connections on `listeners`, admitted by `authenticator`, routing IoT Hub
/// messages and serving the twins of `device`'s modules per the deployments `routes` gives,
/// until `shutdown`.
pub async fn serve(
    listeners: Listeners,
    limits: Limits,
    authenticator: Arc<Authenticator>,
    routes: Option<Box<dyn RouteSource>>,
    device: Option<String>,
    store: Option<Box<dyn MessageStore>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (events_tx, events_rx) = mpsc::channel(OUTBOUND_QUEUE);
    let tracker = TaskTracker::new();
    let mut broker = Broker::new(limits);
    broker.set_device(device);
    if let Some(store) = store {
        broker.attach_store(store).map_err(std::io::Error::other)?;
    }
    tracker.spawn(broker_task(broker, events_rx));
    if let Some(mut source) = routes {
        let (events, stop) = (events_tx.clone(), shutdown.clone());
        tracker.spawn(async move {
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => return,
                    next = source.next() => next,
                };
                let Some(deployment) = next else { return };
                if events.send(Event::Deployment(deployment)).await.is_err() {
                    return;
                }
            }
        });
    }
    let mut next: ConnId = 0;
    loop {
        let context = Context { max_packet_size: limits.max_packet_size, authenticator: authenticator.clone() };
        let (events, stop) = (events_tx.clone(), shutdown.clone());
        tokio::select! {
            () = shutdown.cancelled() => break,
            stream = accept(&listeners.plain) => {
                next += 1;
                tracker.spawn(connection(next, stream, context, events, stop));
            }
            (stream, acceptor) = accept_tls(&listeners.tls) => {
                next += 1;
                let conn = next;
                tracker.spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => connection(conn, tls, context, events, stop).await,
                        Ok(Err(e)) => tracing::info!(conn, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::info!(conn, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(events_tx);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Applies one event to the broker.
fn handle(
    broker: &mut Broker,
    peers: &mut HashMap<ConnId, (mpsc::Sender<Outbound>, Option<Version>)>,
    event: Event,
    actions: &mut Vec<Action>,
) {
    match event {
        Event::Open(conn, tx) => {
            peers.insert(conn, (tx, None));
        }
        Event::Connect(conn, connect, access) => {
            if let Some(peer) = peers.get_mut(&conn) {
                peer.1 = Some(connect.version);
            }
            broker.connect(conn, *connect, access, actions);
        }
        Event::Packet(conn, packet) => broker.handle(conn, packet, actions),
        Event::Violation(conn, error) => {
            if peers.get(&conn).and_then(|p| p.1) == Some(Version::V5) {
                let properties = Properties { reason_string: Some(error.to_string()), ..Default::default() };
                let bye = Disconnect { code: error.reason_code(), properties };
                actions.push(Action::Send(conn, Packet::Disconnect(bye)));
            }
            actions.push(Action::Close(conn));
            broker.closed(conn, actions);
        }
        Event::Closed(conn) => {
            peers.remove(&conn);
            broker.closed(conn, actions);
        }
        Event::Deployment(deployment) => broker.set_deployment(deployment, actions),
    }
}

async fn broker_task(mut broker: Broker, mut events: mpsc::Receiver<Event>) {
    let mut peers: HashMap<ConnId, (mpsc::Sender<Outbound>, Option<Version>)> = HashMap::new();
    let mut actions = Vec::new();
    let mut frame = BytesMut::with_capacity(64 * 1024);
    // Events are handled in batches: everything already queued, then one commit of the store
    // (one fsync for the batch), then the packets the batch produced — so no acknowledgement
    // leaves before what it acknowledges is on disk.
    let mut batch = Vec::with_capacity(BATCH);
    while events.recv_many(&mut batch, BATCH).await > 0 {
        for event in batch.drain(..) {
            handle(&mut broker, &mut peers, event, &mut actions);
        }
        if let Err(e) = broker.commit() {
            tracing::error!(error = %e, "message store flush failed; acknowledgements of this batch are withheld");
            actions.retain(|a| !matches!(a, Action::Send(_, Packet::PubAck(_) | Packet::PubRec(_))));
        }
        for action in actions.drain(..) {
            match action {
                Action::Send(conn, packet) => {
                    let Some((tx, version)) = peers.get(&conn) else { continue };
                    if let Err(e) = encode(&packet, version.unwrap_or(Version::V311), &mut frame) {
                        tracing::warn!(conn, error = %e, "cannot encode a packet; dropped");
                        frame.clear();
                        continue;
                    }
                    let bytes = frame.split().freeze();
                    if tx.try_send(Outbound::Bytes(bytes)).is_err() {
                        tracing::warn!(conn, "client does not read its messages; disconnecting it");
                        let _ = tx.try_send(Outbound::Close);
                        peers.remove(&conn);
                    }
                }
                Action::Close(conn) => {
                    if let Some((tx, _)) = peers.remove(&conn) {
                        let _ = tx.try_send(Outbound::Close);
                    }
                }
            }
        }
    }
}

/// What every connection task needs.
struct Context {
    max_packet_size: usize,
    authenticator: Arc<Authenticator>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn connection<S>(
    conn: ConnId,
    stream: S,
    context: Context,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let max_packet_size = context.max_packet_size;
    let (tx, mut rx) = mpsc::channel(OUTBOUND_QUEUE);
    if events.send(Event::Open(conn, tx)).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(4096);
    let mut version: Option<Version> = None;
    let mut idle = CONNECT_TIMEOUT;
    let mut out = BytesMut::with_capacity(4096);
    let mut reading = true;
    let mut disconnected = false;
    // Credentials with an end (SAS tokens) end the connection when they expire.
    let mut expires: Option<tokio::time::Instant> = None;
    'outer: loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                if version == Some(Version::V5) {
                    let bye = Packet::Disconnect(Disconnect { code: reason::SERVER_SHUTTING_DOWN, properties: Properties::default() });
                    if encode(&bye, Version::V5, &mut out).is_ok() {
                        let _ = writer.write_all(&out).await;
                        let _ = writer.flush().await;
                    }
                }
                break;
            }
            () = async { if let Some(at) = expires { tokio::time::sleep_until(at).await } }, if expires.is_some() => {
                tracing::info!(conn, "credentials expired; closing");
                if version == Some(Version::V5) {
                    let properties = Properties { reason_string: Some("the SAS token expired; reconnect with a new one".into()), ..Default::default() };
                    let bye = Packet::Disconnect(Disconnect { code: reason::NOT_AUTHORIZED, properties });
                    out.clear();
                    if encode(&bye, Version::V5, &mut out).is_ok() {
                        let _ = writer.write_all(&out).await;
                        let _ = writer.flush().await;
                    }
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
                    Ok(Ok(_)) if disconnected => {
                        // After DISCONNECT nothing counts; wait for the close.
                        buf.clear();
                        continue;
                    }
                    Ok(Ok(_)) => {}
                }
                loop {
                    match decode(&buf, version, max_packet_size) {
                        Ok(Some((packet, used))) => {
                            buf.advance(used);
                            let event = match packet {
                                Packet::Connect(c) => {
                                    version = Some(c.version);
                                    idle = if c.keep_alive == 0 { Duration::from_secs(u64::MAX / 4) } else { Duration::from_millis(u64::from(c.keep_alive) * 1500) };
                                    match context.authenticator.authenticate(&c, now()).await {
                                        Ok(admitted) => {
                                            expires = admitted.expires_at.map(|at| {
                                                tokio::time::Instant::now() + Duration::from_secs(at.saturating_sub(now()))
                                            });
                                            Event::Connect(conn, c, admitted.access)
                                        }
                                        Err(refusal) => {
                                            tracing::info!(conn, client = c.client_id, reason = refusal.reason, "connection refused");
                                            let (code, properties) = match c.version {
                                                Version::V311 => (refusal.v311, Properties::default()),
                                                Version::V5 => (refusal.v5, Properties { reason_string: Some(refusal.reason), ..Default::default() }),
                                            };
                                            out.clear();
                                            let ack = Packet::ConnAck(ConnAck { session_present: false, code, properties });
                                            if encode(&ack, c.version, &mut out).is_ok() {
                                                let _ = writer.write_all(&out).await;
                                    let _ = writer.flush().await;
                                                let _ = writer.flush().await;
                        let _ = writer.flush().await;
                                            }
                                            break 'outer;
                                        }
                                    }
                                }
                                packet => Event::Packet(conn, packet),
                            };
                            let disconnecting = matches!(event, Event::Packet(_, Packet::Disconnect(_)));
                            if events.send(event).await.is_err() {
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
                                if events.send(Event::Violation(conn, error)).await.is_err() {
                                    break 'outer;
                                }
                                break;
                            }
                            if error.kind == ErrorKind::UnsupportedVersion {
                                out.clear();
                                let refusal = ConnAck {
                                    session_present: false,
                                    code: reason::V311_UNACCEPTABLE_PROTOCOL,
                                    properties: Properties::default(),
                                };
                                if encode(&Packet::ConnAck(refusal), Version::V311, &mut out).is_ok() {
                                    let _ = writer.write_all(&out).await;
                                    let _ = writer.flush().await;
                        let _ = writer.flush().await;
                                }
                            }
                            break 'outer;
                        }
                    }
                }
            }
            outbound = rx.recv() => {
                out.clear();
                let mut close = false;
                let mut next = outbound;
                // Coalesce what is queued into one write.
                loop {
                    match next {
                        Some(Outbound::Bytes(bytes)) => out.extend_from_slice(&bytes),
                        Some(Outbound::Close) | None => { close = true; break; }
                    }
                    if out.len() > 64 * 1024 { break; }
                    match rx.try_recv() {
                        Ok(item) => next = Some(item),
                        Err(_) => break,
                    }
                }
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
    let _ = events.send(Event::Closed(conn)).await;
}
