//! The hub with its cloud link, against a real RabbitMQ and an in-process outpost-cloud:
//! module telemetry routed to `$upstream` reaches the cloud in order; with the broker
//! stopped, the hub keeps acknowledging and storing, and after the broker is back every
//! message arrives; a cloud-to-device message reaches the device's MQTT subscriber; a direct
//! method from the cloud reaches a module and its answer comes back; a module's reported
//! properties reach its twin in the cloud.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_cloud::registry::Credentials;
use outpost_cloud::service::{Cloud, NewDevice, TelemetryEvent};
use outpost_core::{DeviceId, ModuleId};
use outpost_hub::config::Config;
use outpost_testkit::RabbitMq;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const HUB: &str = "outpost.test";

fn manifest() -> String {
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
            "systemModules": {"edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:1"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "outpost/hub:1"}}},
            "modules": {}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1",
            "routes": {"cloud": "FROM /messages/modules/sensor/* INTO $upstream"},
            "storeAndForwardConfiguration": {"timeToLiveSecs": 3600}}}}})
    .to_string()
}

async fn next_event(events: &mut broadcast::Receiver<TelemetryEvent>, within: Duration) -> Option<TelemetryEvent> {
    match tokio::time::timeout(within, events.recv()).await {
        Ok(Ok(event)) => Some(event),
        Ok(Err(broadcast::error::RecvError::Lagged(n))) => panic!("the test fell {n} events behind"),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_telemetry_reaches_the_cloud_across_a_broker_outage() {
    // The control plane with its broker.
    let cloud_state = tempfile::tempdir().unwrap();
    let broker_auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth_port = broker_auth.local_addr().unwrap().port();
    let mut rabbit =
        tokio::task::spawn_blocking(move || RabbitMq::start(&format!("http://127.0.0.1:{auth_port}"), "outpost"))
            .await
            .unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cloud_config = outpost_cloud::config::Config::default();
    cloud_config.cloud.state_dir = cloud_state.path().to_owned();
    cloud_config.cloud.hub_hostname = HUB.into();
    cloud_config.api.tls = false;
    cloud_config.api.bind = api.local_addr().unwrap();
    cloud_config.amqp.url = format!("amqp://127.0.0.1:{}", rabbit.port());
    let opened = outpost_cloud::open(&cloud_config).unwrap();
    let cloud: Arc<Cloud> = opened.cloud.clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_cloud::run(opened, outpost_cloud::Listeners { api, broker_auth }, shutdown.clone()));
    let c = cloud.clone();
    let record =
        tokio::task::spawn_blocking(move || c.create_device(NewDevice { id: "edge".into(), ..NewDevice::default() }))
            .await
            .unwrap()
            .unwrap();
    let Credentials::SymmetricKey { primary, .. } = record.credentials else { panic!("keys") };
    let mut events = cloud.telemetry().subscribe();

    // The device: identityd with the registered key, a sensor identity, the hub.
    let dir = tempfile::tempdir().unwrap();
    let mut identity = outpost_identity::config::Config::under(dir.path(), DeviceId::new("edge").unwrap(), HUB);
    identity.device.key = Some(primary);
    let service = outpost_identity::open(&identity).unwrap();
    let sensor = ModuleId::new("sensor").unwrap();
    service.create_module(&sensor, "test").unwrap();
    let sensor_token = service.issue_token(Some(&sensor), 3600).unwrap().to_string();
    let responder = ModuleId::new("responder").unwrap();
    service.create_module(&responder, "test").unwrap();
    let responder_token = service.issue_token(Some(&responder), 3600).unwrap().to_string();
    let device_token = service.issue_token(None, 3600).unwrap().to_string();
    let listener = outpost_rpc::bind(&identity.paths.socket, 0o660).unwrap();
    tokio::spawn(outpost_identity::run_owned(identity.clone(), service, listener, shutdown.clone()));
    let deployment = dir.path().join("deployment.json");
    std::fs::write(&deployment, manifest()).unwrap();
    let mut config = Config::default();
    config.admin.socket = "".into();
    config.metrics.enabled = false;
    config.store.dir = dir.path().join("store");
    config.routes.deployment_file = deployment;
    config.identity.socket = identity.paths.socket.clone();
    config.mqtt.tls = false;
    config.https.enabled = false;
    config.cloud.url = format!("amqp://127.0.0.1:{}", rabbit.port());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(outpost_hub::run(config, listener, shutdown.clone()));

    let sensor_token_for_twin = sensor_token.clone();
    let publish = move |bodies: Vec<String>| {
        let token = sensor_token.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-i", "edge/sensor", "-l"])
                .args(["-u", &format!("{HUB}/edge/sensor/?api-version=2018-06-30"), "-P", &token])
                .args(["-t", "devices/edge/modules/sensor/messages/events/%24.on=out&kind=reading"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            for body in bodies {
                writeln!(stdin, "{body}").unwrap();
            }
            drop(stdin);
            assert!(child.wait().unwrap().success(), "mosquitto_pub failed");
        })
    };

    // Routes load and the link signs in asynchronously: probe until one message arrives.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        publish(vec!["probe".into()]).await.unwrap();
        if next_event(&mut events, Duration::from_millis(500)).await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no telemetry reached the cloud");
    }
    while next_event(&mut events, Duration::from_millis(300)).await.is_some() {}

    let numbered: Vec<String> = (0..20).map(|n| format!("m{n:02}")).collect();
    publish(numbered.clone()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < numbered.len() {
        let event = next_event(&mut events, Duration::from_secs(20)).await.expect("every message within 20 s");
        assert_eq!((event.device.as_str(), event.module.as_str()), ("edge", "sensor"));
        assert!(event.properties.contains(&("kind".to_owned(), "reading".to_owned())), "{:?}", event.properties);
        seen.push(String::from_utf8(event.body).unwrap());
    }
    assert_eq!(seen, numbered, "in order, once");

    // A direct method from the cloud reaches a module over MQTT and its answer comes back.
    let mut options = MqttOptions::new("edge/responder", "127.0.0.1", port);
    options.set_credentials(format!("{HUB}/edge/responder/?api-version=2018-06-30"), responder_token);
    let (client, mut mqtt) = AsyncClient::new(options, 16);
    client.subscribe("$iothub/methods/POST/#", QoS::AtLeastOnce).await.unwrap();
    let (ready, subscribed) = tokio::sync::oneshot::channel();
    let answering = client.clone();
    tokio::spawn(async move {
        let mut ready = Some(ready);
        while let Ok(event) = mqtt.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Event::Incoming(Packet::Publish(p)) if p.topic.starts_with("$iothub/methods/POST/echo/") => {
                    let rid = p.topic.rsplit_once("$rid=").unwrap().1.to_owned();
                    let topic = format!("$iothub/methods/res/201/?$rid={rid}");
                    answering.publish(topic, QoS::AtLeastOnce, false, p.payload.to_vec()).await.unwrap();
                }
                _ => {}
            }
        }
    });
    subscribed.await.unwrap();
    let call = |method: &str| {
        let mut pending = cloud.calls().register();
        let request = outpost_cloud::amqp::Outgoing {
            device: "edge".into(),
            module: "responder".into(),
            kind: Some(outpost_core::topology::DownKind::MethodRequest),
            body: br#"{"n": 3}"#.to_vec(),
            correlation_id: Some(pending.id.clone()),
            headers: vec![("x-outpost-method".into(), method.into())],
            expiration_ms: Some(2_000),
            ..Default::default()
        };
        let cloud = cloud.clone();
        async move {
            cloud.send_down(request).await.unwrap();
            tokio::time::timeout(Duration::from_secs(20), &mut pending.answer).await.unwrap().unwrap()
        }
    };
    let answer = call("echo").await;
    assert_eq!((answer.status, answer.payload.as_slice()), (201, br#"{"n": 3}"#.as_slice()));
    let silent = call("ignored").await;
    assert_eq!(silent.status, 504, "{}", String::from_utf8_lossy(&silent.payload));
    client.disconnect().await.unwrap();

    // A module's reported properties reach its twin in the cloud.
    let reported = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-i", "edge/sensor"])
        .args(["-u", &format!("{HUB}/edge/sensor/?api-version=2018-06-30"), "-P", &sensor_token_for_twin])
        .args(["-t", "$iothub/twin/PATCH/properties/reported/?$rid=1", "-m", r#"{"firmware": "1.2", "interval": 5}"#])
        .status()
        .unwrap();
    assert!(reported.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = cloud.clone();
        let twin = tokio::task::spawn_blocking(move || c.twin("edge", "sensor")).await.unwrap();
        if twin.as_ref().is_ok_and(|t| t.reported.get("firmware") == Some(&serde_json::json!("1.2"))) {
            break;
        }
        assert!(Instant::now() < deadline, "the reported properties never reached the cloud: {twin:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The broker goes away; the hub keeps taking messages.
    tokio::task::block_in_place(|| rabbit.stop());
    let offline: Vec<String> = (0..30).map(|n| format!("n{n:02}")).collect();
    publish(offline.clone()).await.unwrap();
    tokio::task::block_in_place(|| rabbit.start_again());
    let mut arrived = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrived.len() < offline.len() {
        assert!(Instant::now() < deadline, "after the outage only {arrived:?} arrived");
        if let Some(event) = next_event(&mut events, Duration::from_secs(5)).await {
            arrived.insert(String::from_utf8(event.body).unwrap());
        }
    }
    assert_eq!(arrived, offline.iter().cloned().collect::<BTreeSet<_>>());

    // A cloud-to-device message reaches the device's subscriber.
    let mut subscriber = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-i", "edge", "-C", "1", "-v"])
        .args(["-u", &format!("{HUB}/edge/?api-version=2018-06-30"), "-P", &device_token])
        .args(["-t", "devices/edge/messages/devicebound/#"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let message = outpost_cloud::amqp::Outgoing {
        device: "edge".into(),
        kind: Some(outpost_core::topology::DownKind::Message),
        body: b"open the valve".to_vec(),
        message_id: Some("c2d-1".into()),
        headers: vec![("priority".into(), "high".into())],
        expiration_ms: Some(60_000),
        ..Default::default()
    };
    cloud.send_down(message).await.unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while subscriber.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the device never got the message");
            std::thread::sleep(Duration::from_millis(50));
        }
        subscriber.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let line = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(line.starts_with("devices/edge/messages/devicebound/%24.mid=c2d-1&"), "{line}");
    assert!(line.contains("priority=high") && line.trim_end().ends_with("open the valve"), "{line}");
    shutdown.cancel();
}
