//! The broker's I/O: a task per connection ([`connection`]) that decodes packets and writes
//! what it is given, and one broker task that owns the [`Broker`] state and turns packets
//! into actions. Connections never touch the state; the broker never blocks on a socket (a
//! client that does not read is disconnected when its outbound queue is full). Other parts
//! of the hub (the HTTPS endpoint) reach the broker through a [`Handle`].

mod connection;
mod outbox;
mod uplink_task;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{Access, Authenticator};
use crate::broker::methods::{CallId, CallRefused};
use crate::broker::session::ConnId;
use crate::broker::{Action, Broker, Limits};
use crate::mqtt::{Connect, Disconnect, Packet, Properties, QoS, Version, encode};
use crate::routes::RouteSource;
use crate::store::{MessageStore, Queued};
use crate::uplink::Uplink;
use connection::{Context, connection};

/// Events handled between two commits of the store.
const BATCH: usize = 256;
/// Frames queued per connection before a slow reader is disconnected.
const OUTBOUND_QUEUE: usize = 4096;

/// Where a call's answer goes: the target's status and payload, or why it was not delivered.
type Reply = oneshot::Sender<Result<(i32, Bytes), CallRefused>>;

/// A direct method call on its way to the broker.
struct Call {
    id: CallId,
    target: String,
    name: String,
    payload: Bytes,
    reply: Reply,
}

#[allow(clippy::large_enum_variant)] // v5 properties inline; a compact form comes with the store
enum Event {
    Open(ConnId, Arc<outbox::Outbox>),
    Connect(ConnId, Box<Connect>, Access),
    Packet(ConnId, Packet),
    /// The connection broke the protocol after its CONNECT: answered in order (after the
    /// CONNACK and whatever else was already queued) and closed.
    Violation(ConnId, crate::mqtt::DecodeError),
    /// A new deployment: routes and module twins.
    Deployment(crate::routes::HubDeployment),
    Closed(ConnId),
    /// A direct method call.
    Invoke(Call),
    /// A call's caller stopped waiting.
    CallEnded(CallId),
    /// The uplink wants its next batch (at most this many messages).
    UpstreamTake(usize, oneshot::Sender<Vec<(u64, Queued)>>),
    /// The uplink delivered these messages.
    UpstreamDone(Vec<u64>),
    /// The uplink could not deliver these messages.
    UpstreamFailed(Vec<u64>),
    /// Someone wants a snapshot.
    Status(oneshot::Sender<Snapshot>),
    /// Someone wants every module's reported properties.
    Reported(oneshot::Sender<Vec<(String, serde_json::Map<String, serde_json::Value>)>>),
    /// A message from the cloud for subscribers; the reply (subscribers reached) is sent once
    /// the store holds it.
    FromCloud(crate::mqtt::Publish, oneshot::Sender<usize>),
}

/// The hub at one moment: the broker's status, and what the I/O side measured.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The broker's status.
    pub broker: crate::broker::status::Status,
    /// Since the hub started.
    pub uptime: Duration,
    /// How long batches of events took, commit included.
    pub batches: crate::metrics::Histogram,
    /// SHA-256 of the deployment manifest whose routes are in force ("" before one).
    pub deployment_sha256: String,
}

/// Why a direct method call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The target cannot take it.
    #[error(transparent)]
    Refused(#[from] CallRefused),
    /// The target did not answer in time.
    #[error("the target did not answer within {0:?}")]
    TimedOut(Duration),
    /// The hub is stopping.
    #[error("the hub is stopping")]
    Stopped,
}

/// How the rest of the hub asks the broker for things.
#[derive(Debug, Clone)]
pub struct Handle {
    events: mpsc::Sender<Event>,
    next_call: Arc<AtomicU64>,
    next_conn: Arc<AtomicU64>,
    max_packet_size: usize,
    authenticator: Arc<Authenticator>,
}

/// Tells the broker a call is over when its caller stops waiting, however that happens.
struct CallGuard<'a> {
    id: CallId,
    events: &'a mpsc::Sender<Event>,
    answered: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.events.try_send(Event::CallEnded(self.id));
        }
    }
}

impl Handle {
    /// Serves an MQTT connection on `stream` (from a listener other than the broker's own:
    /// WebSockets) until it ends or `shutdown`.
    pub async fn serve_mqtt<S>(&self, stream: S, shutdown: CancellationToken)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let context = Context { max_packet_size: self.max_packet_size, authenticator: self.authenticator.clone() };
        connection(self.next_conn(), stream, context, self.events.clone(), shutdown).await;
    }

    fn next_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// A snapshot of the hub.
    pub async fn snapshot(&self) -> Result<Snapshot, CallError> {
        let (reply, snapshot) = oneshot::channel();
        self.events.send(Event::Status(reply)).await.map_err(|_| CallError::Stopped)?;
        snapshot.await.map_err(|_| CallError::Stopped)
    }

    /// Every module's reported properties.
    pub async fn reported(&self) -> Result<Vec<(String, serde_json::Map<String, serde_json::Value>)>, CallError> {
        let (reply, reported) = oneshot::channel();
        self.events.send(Event::Reported(reply)).await.map_err(|_| CallError::Stopped)?;
        reported.await.map_err(|_| CallError::Stopped)
    }

    /// Hands a message from the cloud to the broker; resolves with the number of subscribers
    /// reached once it is stored.
    pub async fn from_cloud(&self, publish: crate::mqtt::Publish) -> Result<usize, CallError> {
        let (reply, reached) = oneshot::channel();
        self.events.send(Event::FromCloud(publish, reply)).await.map_err(|_| CallError::Stopped)?;
        reached.await.map_err(|_| CallError::Stopped)
    }

    /// Calls method `name` of client `target` with `payload` (JSON) and waits up to
    /// `timeout` for its status and payload.
    pub async fn call(
        &self,
        target: &str,
        name: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<(i32, Bytes), CallError> {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let call = Call { id, target: target.to_owned(), name: name.to_owned(), payload, reply };
        self.events.send(Event::Invoke(call)).await.map_err(|_| CallError::Stopped)?;
        let mut guard = CallGuard { id, events: &self.events, answered: false };
        let result = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result.map_err(CallError::from),
            Ok(Err(_)) => Err(CallError::Stopped),
            Err(_) => Err(CallError::TimedOut(timeout)),
        };
        guard.answered = !matches!(result, Err(CallError::TimedOut(_)));
        result
    }
}

/// Where clients connect: plain TCP and, optionally, TLS and HTTPS.
pub struct Listeners {
    /// MQTT over TCP.
    pub plain: TcpListener,
    /// MQTT over TLS, with its acceptor.
    pub tls: Option<(TcpListener, TlsAcceptor)>,
    /// HTTPS (direct methods), with its acceptor.
    pub https: Option<(TcpListener, TlsAcceptor)>,
    /// The admin API's socket (path, listener), with the principals besides the hub's user.
    pub admin: Option<(std::path::PathBuf, tokio::net::UnixListener, Vec<outpost_rpc::Principal>)>,
    /// Prometheus metrics.
    pub metrics: Option<TcpListener>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("plain", &self.plain)
            .field("tls", &self.tls.is_some())
            .field("https", &self.https.is_some())
            .field("admin", &self.admin.as_ref().map(|a| &a.0))
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// What the broker starts with.
pub struct Setup {
    /// Its limits.
    pub limits: Limits,
    /// Who may connect.
    pub authenticator: Arc<Authenticator>,
    /// Where deployments (routes, twins) come from.
    pub routes: Option<Box<dyn RouteSource>>,
    /// The device whose modules it serves (`None`: plain broker).
    pub device: Option<String>,
    /// Its message store (`None`: memory only).
    pub store: Option<Box<dyn MessageStore>>,
    /// Where `$upstream` messages go (`None`: they wait).
    pub uplink: Option<Box<dyn Uplink>>,
    /// Tasks that need the broker's [`Handle`] (the cloud link's downlinks), run until shutdown.
    pub companions: Vec<Companion>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("limits", &self.limits)
            .field("device", &self.device)
            .field("store", &self.store.is_some())
            .field("uplink", &self.uplink.is_some())
            .field("companions", &self.companions.len())
            .finish_non_exhaustive()
    }
}

/// A task started with the broker's handle and the shutdown token.
pub type Companion = Box<
    dyn FnOnce(Handle, CancellationToken) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send,
>;

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

async fn accept_tls(tls: Option<&(TcpListener, TlsAcceptor)>) -> (TcpStream, TlsAcceptor) {
    match tls {
        Some((listener, acceptor)) => (accept(listener).await, acceptor.clone()),
        None => std::future::pending().await,
    }
}

/// Accepts MQTT (and HTTPS) connections on `listeners` and serves them with the broker
/// `setup` describes, until `shutdown`.
pub async fn serve(listeners: Listeners, setup: Setup, shutdown: CancellationToken) -> std::io::Result<()> {
    let Setup { limits, authenticator, routes, device, store, uplink, companions } = setup;
    let (events_tx, events_rx) = mpsc::channel(OUTBOUND_QUEUE);
    let tracker = TaskTracker::new();
    let mut broker = Broker::new(limits);
    broker.set_device(device.clone());
    if let Some(store) = store {
        broker.attach_store(store).map_err(std::io::Error::other)?;
    }
    let upstream_ready = Arc::new(tokio::sync::Notify::new());
    tracker.spawn(broker_task(broker, events_rx, upstream_ready.clone()));
    if let Some(uplink) = uplink {
        tracker.spawn(uplink_task::uplink_task(uplink, events_tx.clone(), upstream_ready, shutdown.clone()));
    }
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
    let main = Handle {
        events: events_tx.clone(),
        next_call: Arc::new(AtomicU64::new(1)),
        next_conn: Arc::new(AtomicU64::new(1)),
        max_packet_size: limits.max_packet_size,
        authenticator: authenticator.clone(),
    };
    let handle = || main.clone();
    if let Some((path, listener, principals)) = listeners.admin {
        let (handle, stop) = (handle(), shutdown.clone());
        tracker.spawn(async move {
            if let Err(e) = crate::admin::serve(&path, listener, principals, handle, stop).await {
                tracing::error!(error = %e, "admin API stopped");
            }
        });
    }
    if let Some(listener) = listeners.metrics {
        tracker.spawn(crate::metrics::serve(listener, handle(), shutdown.clone()));
    }
    for companion in companions {
        tracker.spawn(companion(handle(), shutdown.clone()));
    }
    let https = match (listeners.https, device) {
        (Some(https), Some(device)) => {
            let context = crate::https::Context {
                authenticator: authenticator.clone(),
                handle: handle(),
                device,
                max_packet_size: limits.max_packet_size,
            };
            Some((https, Arc::new(context)))
        }
        _ => None,
    };
    loop {
        let context = Context { max_packet_size: limits.max_packet_size, authenticator: authenticator.clone() };
        let (events, stop) = (events_tx.clone(), shutdown.clone());
        let conn = main.next_conn();
        tokio::select! {
            () = shutdown.cancelled() => break,
            stream = accept(&listeners.plain) => {
                tracker.spawn(connection(conn, stream, context, events, stop));
            }
            (stream, acceptor) = accept_tls(listeners.tls.as_ref()) => {
                tracker.spawn(async move {
                    if let Some(tls) = handshake(conn, acceptor, stream).await {
                        connection(conn, tls, context, events, stop).await;
                    }
                });
            }
            (stream, acceptor) = accept_tls(https.as_ref().map(|h| &h.0)) => {
                let https = https.as_ref().map(|h| h.1.clone());
                tracker.spawn(async move {
                    if let (Some(tls), Some(https)) = (handshake(conn, acceptor, stream).await, https) {
                        crate::https::serve_connection(tls, https, stop).await;
                    }
                });
            }
        }
    }
    // The broker task ends when every sender of events is gone.
    drop((events_tx, https, main));
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn handshake(
    conn: ConnId,
    acceptor: TlsAcceptor,
    stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::info!(conn, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(conn, "TLS handshake timed out");
            None
        }
    }
}

/// The broker task's view of the outside: connections and calls waiting for an answer.
#[derive(Default)]
struct Peers {
    connections: HashMap<ConnId, (Arc<outbox::Outbox>, Option<Version>)>,
    calls: HashMap<CallId, Reply>,
    /// Replies to send once this batch is committed.
    committed: Vec<(oneshot::Sender<usize>, usize)>,
    started: Option<std::time::Instant>,
    batches: crate::metrics::Histogram,
    /// The digest of the deployment whose routes are in force.
    deployment_sha256: String,
}

/// Applies one event to the broker.
fn handle(broker: &mut Broker, peers: &mut Peers, event: Event, actions: &mut Vec<Action>) {
    match event {
        Event::Invoke(call) => match broker.invoke(call.id, &call.target, &call.name, call.payload, actions) {
            Ok(()) => {
                peers.calls.insert(call.id, call.reply);
            }
            Err(refused) => {
                let _ = call.reply.send(Err(refused));
            }
        },
        Event::CallEnded(id) => {
            peers.calls.remove(&id);
            broker.forget_call(id);
        }
        Event::UpstreamTake(max, reply) => {
            let batch = broker.upstream_take(max);
            if let Err(batch) = reply.send(batch) {
                broker.upstream_failed(&batch.iter().map(|(seq, _)| *seq).collect::<Vec<_>>());
            }
        }
        Event::UpstreamDone(seqs) => broker.upstream_done(&seqs),
        Event::Status(reply) => {
            let uptime = peers.started.map(|s| s.elapsed()).unwrap_or_default();
            let _ = reply.send(Snapshot {
                broker: broker.status(),
                uptime,
                batches: peers.batches.clone(),
                deployment_sha256: peers.deployment_sha256.clone(),
            });
        }
        Event::UpstreamFailed(seqs) => broker.upstream_failed(&seqs),
        Event::Open(conn, tx) => {
            peers.connections.insert(conn, (tx, None));
        }
        Event::Connect(conn, connect, access) => {
            if let Some(peer) = peers.connections.get_mut(&conn) {
                peer.1 = Some(connect.version);
            }
            broker.connect(conn, *connect, access, actions);
        }
        Event::Packet(conn, packet) => broker.handle(conn, packet, actions),
        Event::Violation(conn, error) => {
            if peers.connections.get(&conn).and_then(|p| p.1) == Some(Version::V5) {
                let properties = Properties { reason_string: Some(error.to_string()), ..Default::default() };
                let bye = Disconnect { code: error.reason_code(), properties };
                actions.push(Action::Send(conn, Packet::Disconnect(bye)));
            }
            actions.push(Action::Close(conn));
            broker.closed(conn, actions);
        }
        Event::Closed(conn) => {
            peers.connections.remove(&conn);
            broker.closed(conn, actions);
        }
        Event::Deployment(deployment) => {
            peers.deployment_sha256 = deployment.source_sha256.clone();
            broker.set_deployment(deployment, actions);
        }
        Event::Reported(reply) => {
            let _ = reply.send(broker.reported_twins());
        }
        Event::FromCloud(publish, reply) => {
            let reached = broker.from_cloud(publish, actions);
            peers.committed.push((reply, reached));
        }
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// How often queues are swept for expired messages.
const EXPIRY_SWEEP: Duration = Duration::from_secs(30);

async fn broker_task(mut broker: Broker, mut events: mpsc::Receiver<Event>, upstream_ready: Arc<tokio::sync::Notify>) {
    let mut peers = Peers { started: Some(std::time::Instant::now()), ..Peers::default() };
    let mut actions = Vec::new();
    let mut frame = BytesMut::with_capacity(64 * 1024);
    // A tick a second for delayed wills; queues are swept every EXPIRY_SWEEP.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep = std::time::Instant::now();
    // Events are handled in batches: everything already queued, then one commit of the store
    // (one fsync for the batch), then the packets the batch produced — so no acknowledgement
    // leaves before what it acknowledges is on disk.
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let swept = tokio::select! {
            received = events.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    break;
                }
                false
            }
            _ = tick.tick() => last_sweep.elapsed() >= EXPIRY_SWEEP,
        };
        let began = std::time::Instant::now();
        broker.set_now(now());
        broker.fire_wills(&mut actions);
        if swept {
            last_sweep = began;
            broker.expire();
        }
        for event in batch.drain(..) {
            handle(&mut broker, &mut peers, event, &mut actions);
        }
        if let Err(e) = broker.commit() {
            tracing::error!(error = %e, "message store flush failed; acknowledgements of this batch are withheld");
            actions.retain(|a| !matches!(a, Action::Send(_, Packet::PubAck(_) | Packet::PubRec(_))));
            // Dropped replies tell the cloud link the messages are not taken.
            peers.committed.clear();
        }
        for (reply, reached) in peers.committed.drain(..) {
            let _ = reply.send(reached);
        }
        if broker.upstream_waiting() {
            upstream_ready.notify_one();
        }
        for action in actions.drain(..) {
            match action {
                Action::Send(conn, packet) => {
                    let Some((outbox, version)) = peers.connections.get(&conn) else { continue };
                    if let Err(e) = encode(&packet, version.unwrap_or(Version::V311), &mut frame) {
                        tracing::warn!(conn, error = %e, "cannot encode a packet; dropped");
                        frame.clear();
                        continue;
                    }
                    let bytes = frame.split().freeze();
                    match outbox.push(bytes, OUTBOUND_QUEUE) {
                        Ok(()) => {}
                        // A QoS 0 message may be dropped for a subscriber that falls behind.
                        Err(outbox::Refused::Full) if matches!(&packet, Packet::Publish(p) if p.qos == QoS::AtMostOnce) =>
                        {
                            broker.dropped_for_slow_subscriber();
                        }
                        Err(outbox::Refused::Full) => {
                            tracing::warn!(conn, "client does not read its messages; disconnecting it");
                            outbox.close();
                            peers.connections.remove(&conn);
                        }
                        Err(outbox::Refused::Closed) => {}
                    }
                }
                Action::Close(conn) => {
                    if let Some((outbox, _)) = peers.connections.remove(&conn) {
                        outbox.close();
                    }
                }
                Action::MethodAnswer { call, status, payload } => {
                    if let Some(reply) = peers.calls.remove(&call) {
                        let _ = reply.send(Ok((status, payload)));
                    }
                }
            }
        }
        peers.batches.observe(began.elapsed());
    }
}
