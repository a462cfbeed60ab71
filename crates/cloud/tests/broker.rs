//! outpost-cloud with a real RabbitMQ node whose users are checked by the cloud's HTTP auth
//! endpoint: the topology is declared, devices sign in with SAS tokens signed by their own
//! keys, publish under their own routing keys and read their own queues, and nothing else;
//! twins, methods, messages and telemetry travel through the broker. (Past 600 lines: every
//! scenario shares the one harness at the top, a RabbitMQ node and the cloud; a second file
//! would have to copy it until it moves into a shared test-support module.)

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
const BASE_MANIFEST: &str = r#"{"modulesContent": {
    "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
        "systemModules": {"edgeAgent": {"type": "docker", "settings": {"image": "agent:1"}},
            "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "hub:1"}}},
        "modules": {}}},
    "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}, "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}}}}"#;
const VHOST: &str = "outpost";

struct Harness {
    rabbit: RabbitMq,
    api: std::net::SocketAddr,
    admin_token: String,
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
    let admin_token = std::fs::read_to_string(opened.admin_token_file.clone().unwrap()).unwrap().trim().to_owned();
    let api_addr = config.api.bind;
    let cloud = opened.cloud.clone();
    let shutdown = CancellationToken::new();
    let listeners = outpost_cloud::Listeners { api, broker_auth };
    let stop = shutdown.clone();
    let task = tokio::spawn(async move { outpost_cloud::run(opened, listeners, stop).await.unwrap() });
    Harness {
        rabbit,
        api: api_addr,
        admin_token,
        cloud,
        service_password: "service-secret".into(),
        shutdown,
        task,
        _state: state,
    }
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

/// Waits until the registry shows `device` as connected (or not), from the broker's events.
async fn connection_state(cloud: &Arc<Cloud>, device: &str, connected: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (c, d) = (cloud.clone(), device.to_owned());
        let record = tokio::task::spawn_blocking(move || c.device(&d).unwrap()).await.unwrap();
        if record.connected == connected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{device} never showed connected = {connected}");
        tokio::time::sleep(Duration::from_millis(50)).await;
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

    // Its connection closed, the device shows as disconnected (with its last activity kept).
    device.close(200, "bye".into()).await.unwrap();
    connection_state(&harness.cloud, "dev.1", false).await;
    let c = harness.cloud.clone();
    assert!(tokio::task::spawn_blocking(move || c.device("dev.1").unwrap()).await.unwrap().last_activity_ms > 0);

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

async fn next_delivery(consumer: &mut lapin::Consumer) -> lapin::message::Delivery {
    let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next()).await.expect("a message within 30 s");
    let delivery = delivery.unwrap().unwrap();
    delivery.acker.ack(lapin::options::BasicAckOptions::default()).await.unwrap();
    delivery
}

fn json_body(delivery: &lapin::message::Delivery) -> serde_json::Value {
    serde_json::from_slice(&delivery.data).unwrap()
}

async fn publish_with(channel: &Channel, key: &str, body: &[u8], headers: &[(&str, &str)], correlation: Option<&str>) {
    let mut table = FieldTable::default();
    for (name, value) in headers {
        table.insert((*name).into(), lapin::types::AMQPValue::LongString((*value).into()));
    }
    let mut properties = BasicProperties::default().with_delivery_mode(2).with_headers(table);
    if let Some(id) = correlation {
        properties = properties.with_correlation_id(id.into());
    }
    let confirm = channel
        .basic_publish(D2C_EXCHANGE.into(), key.into(), BasicPublishOptions::default(), body, properties)
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
}

async fn eventually_twin(cloud: &Arc<Cloud>, device: &str, module: &str, check: impl Fn(&serde_json::Value) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (c, d, m) = (cloud.clone(), device.to_owned(), module.to_owned());
        let twin = tokio::task::spawn_blocking(move || c.twin(&d, &m)).await.unwrap();
        if let Ok(twin) = &twin
            && check(&twin.reported_with_version())
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "twin {device}/{module} never got there: {twin:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twins_flow_both_ways_exactly_once_and_poison_is_dead_lettered() {
    let harness = start().await;
    let creds = create(&harness.cloud, "edge").await;
    let service = harness.service().await;
    queues_declared(&service, "edge").await;
    let device = harness.connect("edge", &valid_token(&creds, "edge")).await.unwrap();
    let channel = confirming(&device).await;
    let consume = |component| {
        let channel = channel.clone();
        async move {
            channel
                .basic_consume(
                    topology::device_queue("edge", component).as_str().into(),
                    format!("{component}").as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap()
        }
    };
    let mut hub = consume(Component::Hub).await;
    let mut agent = consume(Component::Agent).await;

    // An operator's desired patch reaches the device as the whole twin.
    let cloud = harness.cloud.clone();
    tokio::task::spawn_blocking(move || {
        let patch = serde_json::json!({"rate": 5}).as_object().unwrap().clone();
        cloud
            .update_twin(
                "edge",
                "sensor",
                outpost_cloud::service::TwinUpdate { desired: Some(patch), ..Default::default() },
            )
            .unwrap()
    })
    .await
    .unwrap();
    // (Configuration twins go to the agent, which applies the device's deployment as one.)
    let twin = next_delivery(&mut agent).await;
    assert_eq!(twin.properties.kind().as_ref().unwrap().as_str(), "twin");
    assert_eq!(json_body(&twin)["desired"], serde_json::json!({"rate": 5, "$version": 1}));

    // Reported patches with sequence numbers: a redelivery changes nothing.
    let reported = topology::up_key("edge", Some("sensor"), UpKind::Reported);
    publish_with(&channel, &reported, br#"{"temp": 20}"#, &[("x-outpost-seq", "1")], None).await;
    publish_with(&channel, &reported, br#"{"temp": 21}"#, &[("x-outpost-seq", "2")], None).await;
    publish_with(&channel, &reported, br#"{"temp": 20}"#, &[("x-outpost-seq", "1")], None).await;
    publish_with(&channel, &reported, br#"{"ok": true}"#, &[("x-outpost-seq", "3")], None).await;
    eventually_twin(&harness.cloud, "edge", "sensor", |r| r["ok"] == true).await;
    eventually_twin(&harness.cloud, "edge", "sensor", |r| r["temp"] == 21 && r["$version"] == 3).await;

    // A twin request is answered on the component's queue with its correlation id.
    let get = topology::up_key("edge", Some("sensor"), UpKind::TwinGet);
    publish_with(&channel, &get, b"", &[(topology::COMPONENT_HEADER, "hub")], Some("req-7")).await;
    let answer = next_delivery(&mut hub).await;
    assert_eq!(answer.properties.correlation_id().as_ref().unwrap().as_str(), "req-7");
    assert_eq!(json_body(&answer)["reported"]["temp"], 21);

    // Poison goes to the dead-letter queue with the reason; the queue moves on.
    publish_with(&channel, &reported, b"not json", &[("x-outpost-seq", "4")], None).await;
    let watcher = service.create_channel().await.unwrap();
    let mut dead = watcher
        .basic_consume(
            topology::DEAD_LETTER_QUEUE.into(),
            "dead".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let letter = next_delivery(&mut dead).await;
    let reason = match letter.properties.headers().as_ref().unwrap().inner().get(topology::REASON_HEADER) {
        Some(lapin::types::AMQPValue::LongString(reason)) => reason.to_string(),
        other => panic!("no reason header: {other:?}"),
    };
    assert!(reason.starts_with("a reported patch is not JSON"), "{reason}");
    assert_eq!(letter.data, b"not json");

    // Telemetry reaches operators' streams.
    let mut stream = harness.cloud.telemetry().subscribe();
    publish_with(
        &channel,
        &topology::up_key("edge", Some("sensor"), UpKind::Telemetry),
        b"{\"t\":1}",
        &[("unit", "C")],
        None,
    )
    .await;
    let event = tokio::time::timeout(Duration::from_secs(10), stream.recv()).await.unwrap().unwrap();
    assert_eq!((event.device.as_str(), event.module.as_str()), ("edge", "sensor"));
    assert_eq!(event.properties, [("unit".to_owned(), "C".to_owned())]);

    // A deployment's $edgeAgent twin reaches the agent's queue.
    let cloud = harness.cloud.clone();
    tokio::task::spawn_blocking(move || {
        cloud
            .create_deployment(outpost_cloud::service::NewDeployment {
                id: "base".into(),
                content: BASE_MANIFEST.into(),
                target_condition: "deviceId = 'edge'".into(),
                priority: 1,
                ..Default::default()
            })
            .unwrap()
    })
    .await
    .unwrap();
    let module_of = |delivery: &lapin::message::Delivery| match delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(topology::MODULE_HEADER).cloned())
    {
        Some(lapin::types::AMQPValue::LongString(module)) => module.to_string(),
        other => panic!("no module header: {other:?}"),
    };
    let mut modules = Vec::new();
    for _ in 0..2 {
        let twin = next_delivery(&mut agent).await;
        assert_eq!(twin.properties.kind().as_ref().unwrap().as_str(), "twin");
        if module_of(&twin) == "$edgeAgent" {
            assert_eq!(json_body(&twin)["desired"]["systemModules"]["edgeHub"]["settings"]["image"], "hub:1");
        }
        modules.push(module_of(&twin));
    }
    modules.sort();
    assert_eq!(modules, ["$edgeAgent", "$edgeHub"]);

    // An agent starting afresh asks for every configuration twin at once.
    publish_with(&channel, &topology::up_key("edge", None, UpKind::TwinGet), b"", &[], Some("all")).await;
    let mut modules = Vec::new();
    for _ in 0..3 {
        let twin = next_delivery(&mut agent).await;
        assert_eq!(twin.properties.correlation_id().as_ref().unwrap().as_str(), "all");
        modules.push(module_of(&twin));
    }
    modules.sort();
    assert_eq!(modules, ["$edgeAgent", "$edgeHub", "sensor"]);

    // A change while the broker is down is delivered after it comes back (the outbox).
    drop(hub);
    drop(agent);
    drop(device);
    let mut harness = harness;
    tokio::task::block_in_place(|| harness.rabbit.stop());
    let cloud = harness.cloud.clone();
    tokio::task::spawn_blocking(move || {
        let patch = serde_json::json!({"rate": 9}).as_object().unwrap().clone();
        cloud
            .update_twin(
                "edge",
                "sensor",
                outpost_cloud::service::TwinUpdate { desired: Some(patch), ..Default::default() },
            )
            .unwrap()
    })
    .await
    .unwrap();
    tokio::task::block_in_place(|| harness.rabbit.start_again());
    let device = harness.connect("edge", &valid_token(&creds, "edge")).await.unwrap();
    let channel = device.create_channel().await.unwrap();
    let mut agent = channel
        .basic_consume(
            topology::device_queue("edge", Component::Agent).as_str().into(),
            "agent-again".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let twin = json_body(&next_delivery(&mut agent).await);
        if twin["desired"]["rate"] == 9 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the change made while the broker was down never arrived");
    }
    harness.stop().await;
}

impl Harness {
    async fn messaging(
        &self,
    ) -> outpost_proto::cloud::v1::messaging_client::MessagingClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, impl tonic::service::Interceptor>,
    > {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.api)).unwrap().connect().await.unwrap();
        let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", self.admin_token).parse().unwrap();
        outpost_proto::cloud::v1::messaging_client::MessagingClient::with_interceptor(
            channel,
            move |mut request: tonic::Request<()>| {
                request.metadata_mut().insert("authorization", bearer.clone());
                Ok(request)
            },
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_call_methods_send_messages_and_watch_telemetry() {
    use outpost_proto::cloud::v1 as pb;
    let harness = start().await;
    let creds = create(&harness.cloud, "edge").await;
    let service = harness.service().await;
    queues_declared(&service, "edge").await;
    let device = harness.connect("edge", &valid_token(&creds, "edge")).await.unwrap();
    let channel = confirming(&device).await;
    let mut hub = channel
        .basic_consume(
            topology::device_queue("edge", Component::Hub).as_str().into(),
            "hub".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    // The device answers "echo" calls and ignores "slow" ones; it records messages.
    let (messages_tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let responder = {
        let channel = channel.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = hub.next().await {
                delivery.acker.ack(lapin::options::BasicAckOptions::default()).await.unwrap();
                let kind = delivery.properties.kind().as_ref().map(|k| k.to_string()).unwrap_or_default();
                let headers = delivery.properties.headers().clone().unwrap_or_default();
                let method = match headers.inner().get("x-outpost-method") {
                    Some(lapin::types::AMQPValue::LongString(m)) => m.to_string(),
                    _ => String::new(),
                };
                if kind == "method-request" && method == "echo" {
                    let correlation = delivery.properties.correlation_id().as_ref().unwrap().to_string();
                    let key = topology::up_key("edge", Some("sensor"), UpKind::MethodResponse);
                    publish_with(&channel, &key, &delivery.data, &[("x-outpost-status", "201")], Some(&correlation))
                        .await;
                } else if kind == "c2d-message" {
                    messages_tx.send(delivery).unwrap();
                }
            }
        })
    };
    let mut api = harness.messaging().await;
    let answer = api
        .invoke_method(pb::InvokeMethodRequest {
            device_id: "edge".into(),
            module_id: "sensor".into(),
            method_name: "echo".into(),
            payload_json: r#"{"n": 1}"#.into(),
            response_timeout_secs: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status, 201);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&answer.payload_json).unwrap(), serde_json::json!({"n": 1}));

    let slow = api
        .invoke_method(pb::InvokeMethodRequest {
            device_id: "edge".into(),
            module_id: "sensor".into(),
            method_name: "slow".into(),
            payload_json: String::new(),
            response_timeout_secs: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(slow.code(), tonic::Code::DeadlineExceeded);
    assert!(slow.message().contains("did not answer slow within 1 s"), "{}", slow.message());
    let unknown = api
        .invoke_method(pb::InvokeMethodRequest {
            device_id: "ghost".into(),
            module_id: "sensor".into(),
            method_name: "echo".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert_eq!(harness.cloud.calls().waiting(), 0, "finished and abandoned calls are forgotten");

    let sent = api
        .send_message(pb::SendMessageRequest {
            device_id: "edge".into(),
            body: b"open the valve".to_vec(),
            properties: [("priority".to_owned(), "high".to_owned())].into(),
            ttl_secs: 60,
            message_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let message = tokio::time::timeout(Duration::from_secs(10), messages.recv()).await.unwrap().unwrap();
    assert_eq!(message.data, b"open the valve");
    assert_eq!(message.properties.message_id().as_ref().unwrap().as_str(), sent.message_id);
    assert_eq!(message.properties.expiration().as_ref().unwrap().as_str(), "60000");

    let mut events = api
        .monitor_events(pb::MonitorEventsRequest { device_id: "edge".into(), module_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    // The stream is live once the call returns; publish until an event shows (subscription races).
    let key = topology::up_key("edge", Some("sensor"), UpKind::Telemetry);
    let event = loop {
        publish_with(&channel, &key, b"{\"t\":7}", &[("unit", "C")], None).await;
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(500), events.message()).await {
            break event.unwrap().unwrap();
        }
    };
    assert_eq!((event.device_id.as_str(), event.module_id.as_str()), ("edge", "sensor"));
    assert_eq!(event.body, b"{\"t\":7}");
    assert_eq!(event.properties["unit"], "C");
    responder.abort();
    drop(events);
    drop(api);
    harness.stop().await;
}
