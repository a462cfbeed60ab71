//! A real RabbitMQ node whose users are checked by an in-process outpost-cloud (which also
//! declares the topology and the device queues), devices with their keys, and the service
//! user's view of the broker.

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use outpost_cloud::registry::Credentials;
use outpost_cloud::service::{Cloud, NewDevice, now_ms};
use outpost_core::DeviceId;
use outpost_core::sas::{SasToken, TokenScope};
use outpost_core::topology::{self, C2D_EXCHANGE, Component, D2C_EXCHANGE, DownKind, UpKind};
use outpost_testkit::RabbitMq;
use outpost_upstream::{FnTokens, LinkConfig, LinkState, MODULE_HEADER, Token, TokenSource, Upstream};
use ring::hmac;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const HUB: &str = "outpost.test";
pub const VHOST: &str = "outpost";

pub struct Harness {
    pub rabbit: RabbitMq,
    /// The CA of the broker's AMQPS listener (PEM), when started with TLS.
    pub ca_pem: Option<String>,
    pub cloud: Arc<Cloud>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _state: tempfile::TempDir,
}

pub async fn start() -> Harness {
    start_with(false).await
}

/// As [`start`], the broker also serving AMQPS with a private CA.
pub async fn start_with(tls: bool) -> Harness {
    let state = tempfile::tempdir().unwrap();
    let broker_auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth_port = broker_auth.local_addr().unwrap().port();
    let ca_pem = if tls {
        let (ca, chain, key) = outpost_cloud::tls::generate(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        for (name, pem) in [("ca.pem", &ca), ("cert.pem", &chain), ("key.pem", &key)] {
            std::fs::write(state.path().join(name), pem).unwrap();
        }
        Some(ca)
    } else {
        None
    };
    let files = state.path().to_owned();
    let rabbit = tokio::task::spawn_blocking(move || {
        let (ca, cert, key) = (files.join("ca.pem"), files.join("cert.pem"), files.join("key.pem"));
        let tls = tls.then_some((ca.as_path(), cert.as_path(), key.as_path()));
        RabbitMq::start_with(&format!("http://127.0.0.1:{auth_port}"), VHOST, tls)
    })
    .await
    .unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = outpost_cloud::config::Config::default();
    config.cloud.state_dir = state.path().to_owned();
    config.cloud.hub_hostname = HUB.into();
    config.api.tls = false;
    config.api.bind = api.local_addr().unwrap();
    config.broker_auth.service_password = Some("service-secret".into());
    config.amqp.url = format!("amqp://127.0.0.1:{}", rabbit.port());
    let opened = outpost_cloud::open(&config).unwrap();
    let cloud = opened.cloud.clone();
    let shutdown = CancellationToken::new();
    let listeners = outpost_cloud::Listeners { api, broker_auth };
    let stop = shutdown.clone();
    let task = tokio::spawn(async move { outpost_cloud::run(opened, listeners, stop).await.unwrap() });
    Harness { rabbit, ca_pem, cloud, shutdown, task, _state: state }
}

impl Harness {
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
        drop(self.rabbit);
    }

    /// The broker URL devices are configured with.
    pub fn url(&self) -> String {
        format!("amqp://127.0.0.1:{}", self.rabbit.port())
    }

    /// A link configuration for `device`'s agent queue.
    pub fn config(&self, device: &str) -> LinkConfig {
        let mut config = LinkConfig::new(self.url(), VHOST, device, Component::Agent);
        config.drain_timeout = Duration::from_secs(2);
        config
    }

    /// The cloud's service user.
    pub async fn service(&self) -> Connection {
        let url = self.rabbit.url("outpost-cloud", "service-secret", VHOST);
        Connection::connect(&url, ConnectionProperties::default()).await.expect("the service user signs in")
    }

    /// Registers `id` and waits until its queues exist; its credentials.
    pub async fn device(&self, id: &str) -> Credentials {
        let cloud = self.cloud.clone();
        let owned = id.to_owned();
        let credentials = tokio::task::spawn_blocking(move || {
            cloud.create_device(NewDevice { id: owned, ..NewDevice::default() }).unwrap().credentials
        })
        .await
        .unwrap();
        let service = self.service().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let channel = service.create_channel().await.unwrap();
            let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            let queue = topology::device_queue(id, Component::Agent);
            if channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await.is_ok() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the queues of {id} were never declared");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = service.close(200, "bye".into()).await;
        credentials
    }

    /// `rabbitmqctl` against the node.
    pub fn ctl(&self, args: &[&str]) -> String {
        tokio::task::block_in_place(|| self.rabbit.ctl(args))
    }

    /// How many connections `user` has open.
    pub fn connections_of(&self, user: &str) -> usize {
        self.ctl(&["list_connections", "-q", "--no-table-headers", "user"]).lines().filter(|l| l.trim() == user).count()
    }
}

/// A SAS token for `device` signed with its primary key, expiring at `expiry`.
pub fn sign(credentials: &Credentials, device: &str, expiry: u64) -> String {
    let Credentials::SymmetricKey { primary, .. } = credentials else { panic!("not symmetric") };
    let scope = TokenScope::Device { hub: HUB.into(), device: DeviceId::new(device).unwrap() };
    let mut token = SasToken::new(scope, expiry, vec![0]);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &BASE64.decode(primary).unwrap());
    token.signature = hmac::sign(&key, token.string_to_sign().as_bytes()).as_ref().to_vec();
    token.to_string()
}

/// Tokens of the asked lifetime signed with `credentials`, counted in `issued`.
pub fn tokens(
    credentials: Credentials,
    device: &str,
    issued: Arc<std::sync::atomic::AtomicUsize>,
) -> Arc<dyn TokenSource> {
    let device = device.to_owned();
    Arc::new(FnTokens(move |ttl: u64| {
        issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let expiry = now_ms() / 1000 + ttl;
        Ok(Token { secret: sign(&credentials, &device, expiry), expiry_unix_secs: expiry })
    }))
}

/// Waits until the state satisfies `condition`.
pub async fn wait_state(
    state: &mut watch::Receiver<LinkState>,
    timeout: Duration,
    condition: impl FnMut(&LinkState) -> bool,
) {
    let reached = tokio::time::timeout(timeout, state.wait_for(condition)).await.map(|r| r.map(|_| ()));
    if reached.is_err() {
        panic!("state never reached; it is {:?}", *state.borrow());
    }
    reached.unwrap().unwrap();
}

/// Waits until the link is connected.
pub async fn connected(upstream: &Upstream) {
    wait_state(&mut upstream.state(), Duration::from_secs(30), LinkState::is_connected).await;
}

/// A confirm-mode channel of the service user.
pub async fn confirming(connection: &Connection) -> Channel {
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    channel
}

/// The service user sends `device`'s agent a message of type `kind` (a raw word, so tests
/// can send unknown ones) for `module`.
pub async fn send_down(channel: &Channel, device: &str, kind: &str, module: Option<&str>, body: &[u8]) {
    let mut headers = FieldTable::default();
    if let Some(module) = module {
        headers.insert(MODULE_HEADER.into(), AMQPValue::LongString(LongString::from(module)));
    }
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_type(kind.into())
        .with_correlation_id("corr-1".into())
        .with_headers(headers);
    let key = topology::down_key(device, Component::Agent);
    let confirm = channel
        .basic_publish(
            C2D_EXCHANGE.into(),
            key.as_str().into(),
            BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
            body,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack() && confirm.take_message().is_none(), "the downlink was not routed");
}

/// The word of a known down kind.
pub fn word(kind: DownKind) -> &'static str {
    kind.word()
}

/// Takes one message from `queue` as the service user, waiting up to 10 s.
pub async fn get(channel: &Channel, queue: &str) -> lapin::message::Delivery {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(message) = channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.unwrap() {
            return message.delivery;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing arrived in {queue}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A durable queue of the test's own (it survives a broker restart) receiving every device's
/// messages of `kinds` from `outpost.d2c`: what the device published, whether or not the
/// cloud consumes its own queues.
pub const TAP: &str = "test.tap";

/// Declares [`TAP`] bound for `kinds`; a channel to read it with.
pub async fn tap(connection: &Connection, kinds: &[UpKind]) -> Channel {
    let channel = connection.create_channel().await.unwrap();
    channel.queue_declare(TAP.into(), QueueDeclareOptions::durable(), FieldTable::default()).await.unwrap();
    for kind in kinds {
        let key = format!("*.*.{}", kind.word());
        channel
            .queue_bind(TAP.into(), D2C_EXCHANGE.into(), key.into(), QueueBindOptions::default(), FieldTable::default())
            .await
            .unwrap();
    }
    channel
}

/// How many messages wait in `queue`.
pub async fn depth(channel: &Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(queue.into(), passive, FieldTable::default()).await.unwrap().message_count()
}
