//! Direct methods over the hub's HTTPS endpoint, with curl as the caller and rumqttc as the
//! target module (tokens from a real outpost-identityd): answers come back with their status
//! and payload; a silent target times out with 504, an absent one is 404; missing or
//! mismatched credentials, bad bodies, wrong verbs and paths get IoT Hub's errors; WebSocket
//! upgrades with another subprotocol or version are refused.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use outpost_core::{DeviceId, ModuleId};
use outpost_hub::config::Config;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

/// A free loopback port (released for the hub to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// POSTs `body` to `path` with `headers`; returns the status and the JSON answer.
fn post(port: u16, path: &str, headers: &[String], body: &str) -> (u16, serde_json::Value) {
    request(port, "POST", path, headers, Some(body))
}

/// Sends a request; returns the status and the JSON answer.
fn request(port: u16, method: &str, path: &str, headers: &[String], body: Option<&str>) -> (u16, serde_json::Value) {
    let mut command = Command::new("curl");
    command.args(["-sk", "-X", method, "-w", "\n%{http_code}", "--max-time", "30"]);
    for header in headers {
        command.args(["-H", header]);
    }
    if let Some(body) = body {
        command.args(["--data-binary", body]);
    }
    let out = command.arg(format!("https://127.0.0.1:{port}{path}")).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (answer, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), serde_json::from_str(answer).unwrap_or(serde_json::Value::Null))
}

/// Module `target` on MQTT: answers "echo" with 201 and the payload, ignores "ignore".
async fn target(port: u16, token: String) -> (AsyncClient, tokio::sync::oneshot::Receiver<()>) {
    let mut options = MqttOptions::new("dev1/target", "127.0.0.1", port);
    options.set_credentials("hub.example/dev1/target/?api-version=2018-06-30", token);
    let (client, mut events) = AsyncClient::new(options, 16);
    client.subscribe("$iothub/methods/POST/#", QoS::AtLeastOnce).await.unwrap();
    let (ready, subscribed) = tokio::sync::oneshot::channel();
    let answering = client.clone();
    tokio::spawn(async move {
        let mut ready = Some(ready);
        while let Ok(event) = events.poll().await {
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
    (client, subscribed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_methods_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let identity = outpost_identity::config::Config::under(dir.path(), DeviceId::new("dev1").unwrap(), "hub.example");
    let service = outpost_identity::open(&identity).unwrap();
    let mut tokens = Vec::new();
    for module in ["caller", "target"] {
        let id = ModuleId::new(module).unwrap();
        service.create_module(&id, "test").unwrap();
        tokens.push(service.issue_token(Some(&id), 3600).unwrap().to_string());
    }
    let device_token = service.issue_token(None, 3600).unwrap().to_string();
    let listener = outpost_rpc::bind(&identity.paths.socket, 0o660).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_identity::run_owned(identity.clone(), service, listener, shutdown.clone()));

    let https = free_port();
    let mut config = Config::default();
    config.admin.socket = "".into();
    config.metrics.enabled = false;
    config.store.dir = "".into();
    config.routes.deployment_file = "".into();
    config.identity.socket = identity.paths.socket.clone();
    config.mqtt.tls = false;
    config.https.bind = format!("127.0.0.1:{https}").parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mqtt = listener.local_addr().unwrap().port();
    let hub = shutdown.clone();
    let hub = tokio::spawn(async move { outpost_hub::run(config, listener, hub).await });

    let (caller, target_token) = (tokens[0].clone(), tokens[1].clone());
    let (_client, subscribed) = target(mqtt, target_token.clone()).await;
    tokio::time::timeout(Duration::from_secs(20), subscribed).await.unwrap().unwrap();

    let results = tokio::task::spawn_blocking(move || {
        let auth = |token: &str| format!("Authorization: {token}");
        let caller_headers = [auth(&caller), "x-ms-edge-moduleId: dev1/caller".to_owned()];
        let path = "/twins/dev1/modules/target/methods?api-version=2018-06-30";
        let echo = post(https, path, &caller_headers, r#"{"methodName":"echo","payload":{"a":[1,2]}}"#);
        let silent = post(https, path, &caller_headers, r#"{"methodName":"ignore","responseTimeoutInSeconds":5}"#);
        let absent =
            post(https, "/twins/dev1/modules/nobody/methods", &caller_headers, r#"{"methodName":"echo","payload":1}"#);
        let anonymous = post(https, path, &[], r#"{"methodName":"echo"}"#);
        let forged = post(https, path, &[auth(&target_token), "x-ms-edge-moduleId: dev1/caller".into()], "{}");
        let device = post(https, path, &[auth(&device_token)], r#"{"methodName":"echo"}"#);
        let bad_token = post(https, path, &[auth("SharedAccessSignature sr=x&sig=y&se=1")], "{}");
        let bad_body = post(https, path, &caller_headers, r#"{"payload":1}"#);
        let elsewhere = post(https, "/devices/dev1/messages", &caller_headers, "{}");
        // MQTT over WebSockets wants its subprotocol and version 13.
        let upgrade = |protocol: &str, version: &str| {
            let headers = ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
                .map(str::to_owned)
                .into_iter()
                .chain([format!("Sec-WebSocket-Protocol: {protocol}"), format!("Sec-WebSocket-Version: {version}")])
                .collect::<Vec<_>>();
            request(https, "GET", "/$iothub/websocket", &headers, None).0
        };
        assert_eq!(upgrade("chat", "13"), 400, "another subprotocol");
        assert_eq!(upgrade("mqtt", "8"), 426, "another version");
        [echo, silent, absent, anonymous, forged, device, bad_token, bad_body, elsewhere]
    })
    .await
    .unwrap();
    let [echo, silent, absent, anonymous, forged, device, bad_token, bad_body, elsewhere] = results;
    assert_eq!(echo, (200, serde_json::json!({"status": 201, "payload": {"a": [1, 2]}})));
    assert_eq!(silent.0, 504, "{silent:?}");
    assert_eq!(silent.1["errorCode"], 504_101, "{silent:?}");
    assert_eq!(absent.0, 404, "{absent:?}");
    assert!(absent.1["message"].as_str().unwrap().contains("dev1/nobody is not connected"), "{absent:?}");
    assert_eq!(anonymous.0, 401, "{anonymous:?}");
    assert_eq!(forged.0, 403, "{forged:?}");
    assert!(forged.1["message"].as_str().unwrap().contains("x-ms-edge-moduleId"), "{forged:?}");
    assert_eq!(device.0, 403, "a device token is not a module's: {device:?}");
    assert_eq!(bad_token.0, 401, "{bad_token:?}");
    assert_eq!(bad_body, (400, serde_json::json!({"errorCode": 400_004, "message": "methodName is missing"})));
    assert_eq!(elsewhere.0, 404, "{elsewhere:?}");

    shutdown.cancel();
    hub.await.unwrap().unwrap();
}
