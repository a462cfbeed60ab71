//! outpost-cloud with a real RabbitMQ node whose users are checked by the cloud's HTTP auth
//! endpoint: the topology is declared, devices sign in with SAS tokens signed by their own
//! keys, publish under their own routing keys and read their own queues, and nothing else.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use outpost_cloud::registry::Credentials;
use outpost_cloud::service::{Cloud, NewDevice, now_ms};
use outpost_core::DeviceId;
use outpost_core::sas::{SasToken, TokenScope};
use outpost_core::topology::{self, C2D_EXCHANGE, Component, D2C_EXCHANGE, EVENTS_EXCHANGE, UpKind};
use outpost_testkit::RabbitMq;
use ring::hmac;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;

const HUB: &str = "outpost.test";
const VHOST: &str = "outpost";

struct Harness {
    rabbit: RabbitMq,
    cloud: Arc<Cloud>,
    service_password: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _state: tempfile::TempDir,
}

async fn start() -> Harness {
    let state = tempfile::tempdir().unwrap();
    let broker_auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth_port = broker_auth.local_addr().unwrap().port();
    let rabbit = tokio::task::spawn_blocking(move || RabbitMq::start(&format!("http://127.0.0.1:{auth_port}"), VHOST))
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
    Harness { rabbit, cloud, service_password: "service-secret".into(), shutdown, task, _state: state }
}

impl Harness {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
        drop(self.rabbit);
    }

    async fn connect(&self, user: &str, password: &str) -> Result<Connection, lapin::Error> {
        Connection::connect(&self.rabbit.url(user, password, VHOST), ConnectionProperties::default()).await
    }

    async fn service(&self) -> Connection {
        self.connect("outpost-cloud", &self.service_password).await.expect("the service user signs in")
    }
}

fn token(credentials: &Credentials, device: &str, expiry: u64) -> String {
    let Credentials::SymmetricKey { primary, .. } = credentials else { panic!("not symmetric") };
    let scope = TokenScope::Device { hub: HUB.into(), device: DeviceId::new(device).unwrap() };
    let mut token = SasToken::new(scope, expiry, vec![0]);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &BASE64.decode(primary).unwrap());
    token.signature = hmac::sign(&key, token.string_to_sign().as_bytes()).as_ref().to_vec();
    token.to_string()
}

fn valid_token(credentials: &Credentials, device: &str) -> String {
    token(credentials, device, now_ms() / 1000 + 600)
}

async fn create(cloud: &Arc<Cloud>, id: &str) -> Credentials {
    let cloud = cloud.clone();
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || {
        cloud.create_device(NewDevice { id, ..NewDevice::default() }).unwrap().credentials
    })
    .await
    .unwrap()
}

/// Waits until the cloud has declared the device's queues (passive declares by the service).
async fn queues_declared(service: &Connection, device: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let channel = service.create_channel().await.unwrap();
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let queue = topology::device_queue(device, Component::Hub);
        if channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await.is_ok() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the queues of {device} were never declared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish(channel: &Channel, exchange: &str, key: &str, body: &[u8]) -> Result<(), lapin::Error> {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await?
        .await?;
    assert!(confirm.is_ack(), "publish to {exchange} {key} was not confirmed");
    Ok(())
}

async fn confirming(connection: &Connection) -> Channel {
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    channel
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_reach_only_their_own_queues_and_routing_keys() {
    let harness = start().await;
    let d1 = create(&harness.cloud, "dev.1").await;
    let d2 = create(&harness.cloud, "dev.10").await;
    let service = harness.service().await;
    queues_declared(&service, "dev.1").await;
    queues_declared(&service, "dev.10").await;

    // The built-in endpoint: any consumer may bind a queue to the events exchange.
    let watcher = service.create_channel().await.unwrap();
    let events = watcher.queue_declare("".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    watcher
        .queue_bind(
            events.name().clone(),
            EVENTS_EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut event_stream = watcher
        .basic_consume(events.name().clone(), "watcher".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();

    // dev.1 signs in with its token and publishes telemetry under its own key.
    let device =
        harness.connect("dev.1", &valid_token(&d1, "dev.1")).await.expect("a device with a valid token signs in");
    let channel = confirming(&device).await;
    let key = topology::up_key("dev.1", Some("sensor"), UpKind::Telemetry);
    publish(&channel, D2C_EXCHANGE, &key, b"{\"t\":21}").await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), event_stream.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.routing_key.as_str(), key);
    assert_eq!(event.data, b"{\"t\":21}");

    // It reads its own queue: the cloud's message arrives.
    let service_channel = confirming(&service).await;
    publish(&service_channel, C2D_EXCHANGE, &topology::down_key("dev.1", Component::Agent), b"desired").await.unwrap();
    let mut inbox = channel
        .basic_consume(
            topology::device_queue("dev.1", Component::Agent).as_str().into(),
            "agent".into(),
            BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() },
            FieldTable::default(),
        )
        .await
        .expect("a device reads its own queue");
    let delivery = tokio::time::timeout(Duration::from_secs(10), inbox.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(delivery.data, b"desired");

    // Another device's routing key: refused, the channel is closed.
    let other = confirming(&device).await;
    let stolen = topology::up_key("dev.10", Some("sensor"), UpKind::Telemetry);
    let err = publish(&other, D2C_EXCHANGE, &stolen, b"forged").await.unwrap_err();
    assert!(err.to_string().contains("ACCESS_REFUSED") || err.to_string().contains("access"), "{err}");

    // Another device's queue: refused.
    let other = device.create_channel().await.unwrap();
    let err = other
        .basic_consume(
            topology::device_queue("dev.10", Component::Agent).as_str().into(),
            "thief".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ACCESS_REFUSED") || err.to_string().contains("access"), "{err}");

    // Declaring queues or publishing elsewhere: refused.
    let other = device.create_channel().await.unwrap();
    assert!(other.queue_declare("mine".into(), QueueDeclareOptions::default(), FieldTable::default()).await.is_err());
    let other = confirming(&device).await;
    assert!(publish(&other, C2D_EXCHANGE, &topology::down_key("dev.10", Component::Agent), b"x").await.is_err());

    // Nothing forged reached the events stream.
    assert!(tokio::time::timeout(Duration::from_millis(500), event_stream.next()).await.is_err());

    // Wrong key, expired token, another device's token, unknown device: sign-in refused.
    let wrong = Credentials::generate().unwrap();
    for (user, password) in [
        ("dev.1", valid_token(&wrong, "dev.1")),
        ("dev.1", token(&d1, "dev.1", now_ms() / 1000 - 3600)),
        ("dev.1", valid_token(&d2, "dev.10")),
        ("ghost", valid_token(&d1, "ghost")),
        ("outpost-cloud", "guess".to_owned()),
    ] {
        assert!(harness.connect(user, &password).await.is_err(), "{user} signed in with a bad password");
    }
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_and_deleted_devices_cannot_sign_in_and_their_queues_go() {
    let harness = start().await;
    let creds = create(&harness.cloud, "gone").await;
    let service = harness.service().await;
    queues_declared(&service, "gone").await;
    harness
        .connect("gone", &valid_token(&creds, "gone"))
        .await
        .expect("enabled: signs in")
        .close(200, "bye".into())
        .await
        .unwrap();

    let cloud = harness.cloud.clone();
    tokio::task::spawn_blocking(move || {
        cloud
            .update_device("gone", outpost_cloud::service::DeviceUpdate { enabled: Some(false), ..Default::default() })
            .unwrap()
    })
    .await
    .unwrap();
    assert!(harness.connect("gone", &valid_token(&creds, "gone")).await.is_err(), "a disabled device signed in");

    let cloud = harness.cloud.clone();
    tokio::task::spawn_blocking(move || cloud.delete_device("gone", None).unwrap()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let channel = service.create_channel().await.unwrap();
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let queue = topology::device_queue("gone", Component::Agent);
        if channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await.is_err() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the deleted device's queues remain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    harness.stop().await;
}
