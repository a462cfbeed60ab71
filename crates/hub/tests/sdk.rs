//! The official Azure IoT Python SDK as a module talking to outpost-hub over TLS on 8883:
//! token and trust bundle from identityd's workload API, the hub's certificate issued by
//! identityd, the message observed by a plain MQTT client (mosquitto_sub) as a configured
//! user. Needs port 8883 on loopback.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use outpost_core::{DeviceId, ModuleId};
use outpost_hub::auth::User;
use outpost_hub::config::Config;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_sdk_module_sends_to_its_output_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut identity =
        outpost_identity::config::Config::under(dir.path(), DeviceId::new("dev1").unwrap(), "hub.example");
    identity.device.gateway_hostname = "localhost".into();
    let service = outpost_identity::open(&identity).unwrap();
    let (pymod, _) = service.create_module(&ModuleId::new("pymod").unwrap(), "test").unwrap();
    let listener = outpost_rpc::bind(&identity.paths.socket, 0o660).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_identity::run_owned(identity.clone(), service, listener, shutdown.clone()));

    let mut config = Config::default();
    config.routes.deployment_file = "".into();
    config.identity.socket = identity.paths.socket.clone();
    config.mqtt.tls_bind = "127.0.0.1:8883".parse().unwrap();
    config.auth.user.push(User {
        name: "dashboard".into(),
        password: "s3cret".into(),
        publish: vec![],
        subscribe: vec!["devices/+/modules/+/messages/events/#".into()],
    });
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = plain.local_addr().unwrap().port().to_string();
    let hub_shutdown = shutdown.clone();
    let hub = tokio::spawn(async move { outpost_hub::run(config, plain, hub_shutdown).await });

    let socket = identity.paths.workload_dir.join("pymod/workload.sock");
    let generation = pymod.generation_id.to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/sdk_hub_module.py");
    let result = tokio::task::spawn_blocking(move || {
        let mut watcher = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port, "-u", "dashboard", "-P", "s3cret", "-i", "dash"])
            .args(["-C", "1", "-W", "60", "-v", "-t", "devices/dev1/modules/pymod/messages/events/#"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The SDK sends one message; repeat the module until the watcher (whose subscription
        // start is not observable) has it.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while watcher.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "the SDK's message never arrived");
            let out = Command::new("python3")
                .arg(script)
                .env("IOTEDGE_IOTHUBHOSTNAME", "hub.example")
                .env("IOTEDGE_DEVICEID", "dev1")
                .env("IOTEDGE_MODULEID", "pymod")
                .env("IOTEDGE_GATEWAYHOSTNAME", "localhost")
                .env("IOTEDGE_MODULEGENERATIONID", &generation)
                .env("IOTEDGE_WORKLOADURI", format!("unix://{}", socket.display()))
                .env("IOTEDGE_APIVERSION", "2019-01-30")
                .env("IOTEDGE_AUTHSCHEME", "sasToken")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "the SDK module failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(watcher.wait_with_output().unwrap().stdout).unwrap()
    })
    .await
    .unwrap();
    let (topic, body) = result.trim().split_once(' ').unwrap();
    assert!(topic.starts_with("devices/dev1/modules/pymod/messages/events/"), "{topic}");
    assert!(topic.contains("%24.on=temperatureOutput"), "the output name: {topic}");
    assert!(topic.contains("source=sdk"), "the application property: {topic}");
    assert_eq!(body, r#"{"machine": {"temperature": 42.5}}"#);
    shutdown.cancel();
    hub.await.unwrap().unwrap();
}
