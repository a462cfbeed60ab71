//! Who may connect and what they may do, with a real outpost-identityd issuing and verifying
//! SAS tokens: modules with IoT Hub credentials use only their own topics; wrong tokens,
//! mismatched client ids and anonymous clients are refused with the right return codes;
//! configured users get their ACL. Clients: mosquitto_pub/sub, and raw MQTT for return codes.

#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::BytesMut;
use outpost_core::{DeviceId, ModuleId};
use outpost_hub::auth::User;
use outpost_hub::config::Config;
use outpost_hub::mqtt::{Connect, Packet, Properties, Version, decode, encode};
use tokio_util::sync::CancellationToken;

struct Env {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    token: String,
    other_token: String,
    shutdown: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let identity = outpost_identity::config::Config::under(dir.path(), DeviceId::new("dev1").unwrap(), "hub.example");
    let service = outpost_identity::open(&identity).unwrap();
    for module in ["sensor", "filter"] {
        service.create_module(&ModuleId::new(module).unwrap(), "test").unwrap();
    }
    let token = service.issue_token(Some(&ModuleId::new("sensor").unwrap()), 3600).unwrap().to_string();
    let other_token = service.issue_token(Some(&ModuleId::new("filter").unwrap()), 3600).unwrap().to_string();
    let listener = outpost_rpc::bind(&identity.paths.socket, 0o660).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_identity::run_owned(identity.clone(), service, listener, shutdown.clone()));

    let mut config = Config::default();
    config.admin.socket = "".into();
    config.metrics.enabled = false;
    config.store.dir = "".into();
    config.routes.deployment_file = "".into();
    config.identity.socket = identity.paths.socket.clone();
    // TLS (on the fixed port 8883 modules dial) is exercised by one test alone.
    config.mqtt.tls = false;
    config.https.enabled = false;
    config.auth.user.push(User {
        name: "dashboard".into(),
        password: "s3cret".into(),
        publish: vec![],
        subscribe: vec!["devices/+/modules/+/messages/events/#".into()],
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hub = shutdown.clone();
    tokio::spawn(async move { outpost_hub::run(config, listener, hub).await.unwrap() });
    Env { _dir: dir, addr, token, other_token, shutdown }
}

/// CONNECTs with `client_id`, `username` and `password` and returns the CONNACK code.
fn connack(addr: SocketAddr, client_id: &str, username: Option<&str>, password: Option<&str>) -> u8 {
    let connect = Connect {
        version: Version::V311,
        client_id: client_id.into(),
        clean_start: true,
        keep_alive: 30,
        username: username.map(str::to_owned),
        password: password.map(|p| bytes::Bytes::copy_from_slice(p.as_bytes())),
        will: None,
        properties: Properties::default(),
    };
    let mut out = BytesMut::new();
    encode(&Packet::Connect(Box::new(connect)), Version::V311, &mut out).unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(&out).unwrap();
    let mut answer = [0u8; 4];
    stream.read_exact(&mut answer).unwrap();
    match decode(&answer, Some(Version::V311), 1024).unwrap() {
        Some((Packet::ConnAck(ack), _)) => ack.code,
        other => panic!("{other:?}"),
    }
}

const SENSOR_USER: &str = "hub.example/dev1/sensor/?api-version=2018-06-30";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iothub_credentials_are_verified_by_identityd() {
    let env = env().await;
    let addr = env.addr;
    let (token, other) = (env.token.clone(), env.other_token.clone());
    tokio::task::spawn_blocking(move || {
        assert_eq!(connack(addr, "dev1/sensor", Some(SENSOR_USER), Some(&token)), 0, "its own token");
        assert_eq!(connack(addr, "dev1/sensor", Some(SENSOR_USER), Some(&other)), 5, "another module's token");
        assert_eq!(connack(addr, "dev1/sensor", Some(SENSOR_USER), Some("SharedAccessSignature sr=x&sig=y&se=1")), 4);
        assert_eq!(connack(addr, "dev1/sensor", Some(SENSOR_USER), None), 4, "no token");
        assert_eq!(
            connack(addr, "dev1/filter", Some(SENSOR_USER), Some(&token)),
            2,
            "client id and user name disagree"
        );
        let other_hub = "other.example/dev1/sensor/?api-version=2018-06-30";
        assert_eq!(connack(addr, "dev1/sensor", Some(other_hub), Some(&token)), 5, "another hub");
        assert_eq!(connack(addr, "someone", None, None), 5, "anonymous is off by default");
        assert_eq!(connack(addr, "dash", Some("dashboard"), Some("wrong")), 4);
        assert_eq!(connack(addr, "dash", Some("dashboard"), Some("s3cret")), 0);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_use_their_own_topics_and_users_their_acl() {
    let env = env().await;
    let port = env.addr.port().to_string();
    let token = env.token.clone();
    tokio::task::spawn_blocking(move || {
        // The dashboard user watches module telemetry.
        let watcher = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port, "-u", "dashboard", "-P", "s3cret", "-i", "dash"])
            .args(["-C", "1", "-W", "30", "-v", "-t", "devices/+/modules/+/messages/events/#"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let topic = "devices/dev1/modules/sensor/messages/events/%24.on=temperatureOutput";
        let publish = |topic: &str| {
            Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port, "-i", "dev1/sensor", "-u", SENSOR_USER, "-P", &token])
                .args(["-q", "1", "-t", topic, "-m", "{\"t\":21}"])
                .output()
                .unwrap()
        };
        // Publish until the watcher has it (its subscription's start is not observable).
        let mut watcher = watcher;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while watcher.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "the dashboard never saw the module's telemetry");
            assert!(publish(topic).status.success());
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = watcher.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{topic} {{\"t\":21}}"));

        // Another module's topic: the 3.1.1 connection is closed, so the QoS 1 publish fails.
        assert!(!publish("devices/dev1/modules/filter/messages/events/").status.success());
        // Subscribing to another module's inputs is refused (SUBACK 0x80, reported by
        // mosquitto_sub as a failed subscription).
        let out = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port, "-i", "dev1/sensor", "-u", SENSOR_USER, "-P", &token])
            .args(["-W", "3", "-t", "devices/dev1/modules/filter/#"])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.to_lowercase().contains("denied") || text.to_lowercase().contains("fail"), "{text}");
    })
    .await
    .unwrap();
}
