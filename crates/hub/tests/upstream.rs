//! The upstream queue through the real hub: a module's telemetry routed to `$upstream` waits
//! in the store while the uplink fails, survives a restart of the hub, and then goes up in
//! order, each message once, with the sender stamped in its bag. The module is mosquitto_pub
//! with a SAS token from a real identityd; the uplink is a recording one (the cloud's comes
//! with the cloud).

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_core::{DeviceId, ModuleId};
use outpost_hub::config::Config;
use outpost_hub::mqtt::Publish;
use outpost_hub::uplink::{Uplink, UplinkError};
use tokio_util::sync::CancellationToken;

/// Records every batch offered; refuses them while `failing`.
#[derive(Debug, Clone, Default)]
struct Recorder {
    offered: Arc<Mutex<Vec<Vec<Publish>>>>,
    failing: bool,
}

impl Recorder {
    /// Bodies of the messages offered so far, batch after batch.
    fn bodies(&self) -> Vec<String> {
        let offered = self.offered.lock().unwrap();
        offered.iter().flatten().map(|p| String::from_utf8_lossy(&p.payload).into_owned()).collect()
    }
}

#[async_trait::async_trait]
impl Uplink for Recorder {
    async fn send(&mut self, batch: &[Publish]) -> Result<(), UplinkError> {
        self.offered.lock().unwrap().push(batch.to_vec());
        if self.failing { Err(UplinkError::Unavailable("the test's cloud is down".into())) } else { Ok(()) }
    }
}

fn manifest() -> String {
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
            "systemModules": {"edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:1"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "outpost/hub:1"}}},
            "modules": {}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1",
            "routes": {"cloud": {"route": "FROM /messages/* INTO $upstream", "priority": 2}},
            "storeAndForwardConfiguration": {"timeToLiveSecs": 3600}}}}})
    .to_string()
}

async fn wait_for(what: &str, test: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !test() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_messages_wait_for_the_uplink_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let identity = outpost_identity::config::Config::under(dir.path(), DeviceId::new("dev1").unwrap(), "hub.example");
    let service = outpost_identity::open(&identity).unwrap();
    let sensor = ModuleId::new("sensor").unwrap();
    service.create_module(&sensor, "test").unwrap();
    let token = service.issue_token(Some(&sensor), 3600).unwrap().to_string();
    let listener = outpost_rpc::bind(&identity.paths.socket, 0o660).unwrap();
    let shutdown = CancellationToken::new();
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

    let start = |uplink: Recorder| {
        let config = config.clone();
        let stop = shutdown.child_token();
        let hub_stop = stop.clone();
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let hub = tokio::spawn(outpost_hub::run_with_uplink(config, listener, Some(Box::new(uplink)), hub_stop));
            (port, stop, hub)
        }
    };
    let publish = move |port: u16, bodies: Vec<String>| {
        let token = token.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-i", "dev1/sensor", "-l"])
                .args(["-u", "hub.example/dev1/sensor/?api-version=2018-06-30", "-P", &token])
                .args(["-t", "devices/dev1/modules/sensor/messages/events/%24.on=out&kind=reading"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            for body in bodies {
                writeln!(stdin, "{body}").unwrap();
            }
            drop(stdin);
            assert!(child.wait().unwrap().success());
        })
    };

    // The cloud is down: messages are acknowledged, offered, refused, kept.
    let down = Recorder { failing: true, ..Recorder::default() };
    let (port, stop, hub) = start(down.clone()).await;
    // Routes load asynchronously: probe until one message has gone through them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while down.bodies().is_empty() {
        assert!(Instant::now() < deadline, "the routes never applied");
        publish(port, vec!["probe".into()]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let numbered: Vec<String> = (0..20).map(|n| format!("m{n:02}")).collect();
    publish(port, numbered.clone()).await.unwrap();
    wait_for("a batch with every message", || down.bodies().iter().any(|b| b == "m19")).await;
    stop.cancel();
    hub.await.unwrap().unwrap();

    // Back up after a restart: everything goes, in order, once.
    let up = Recorder::default();
    let (port, stop, hub) = start(up.clone()).await;
    wait_for("the stored messages", || up.bodies().iter().any(|b| b == "m19")).await;
    publish(port, vec!["after".into()]).await.unwrap();
    wait_for("a new message", || up.bodies().iter().any(|b| b == "after")).await;
    stop.cancel();
    hub.await.unwrap().unwrap();

    let sent: Vec<String> = up.bodies().into_iter().filter(|b| b.starts_with('m') || b == "after").collect();
    let mut expected = numbered;
    expected.push("after".into());
    assert_eq!(sent, expected);
    let first = &up.offered.lock().unwrap()[0][0];
    assert!(first.topic.starts_with("devices/dev1/modules/sensor/messages/events/%24.on=out&"), "{}", first.topic);
    assert!(first.topic.contains("%24.cmid=sensor") && first.topic.contains("kind=reading"), "{}", first.topic);
    shutdown.cancel();
}
