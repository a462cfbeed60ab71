//! Routes from the deployment move module outputs to module inputs, as edgeHub does: the
//! receiving module sees the sender in `$.cdid`/`$.cmid`, `$body` conditions filter, a module
//! that has never connected finds its messages queued when it does, and a new deployment
//! swaps the routes. Modules are mosquitto clients with SAS tokens from a real identityd.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_core::{DeviceId, ModuleId};
use outpost_hub::config::Config;
use tokio_util::sync::CancellationToken;

fn manifest(routes: serde_json::Value) -> String {
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
            "systemModules": {"edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:1"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "outpost/hub:1"}}},
            "modules": {}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": routes}}}})
    .to_string()
}

struct Module {
    name: &'static str,
    token: String,
}

struct Env {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    modules: Vec<Module>,
    shutdown: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Env {
    fn module(&self, name: &str) -> &Module {
        self.modules.iter().find(|m| m.name == name).unwrap()
    }

    fn credentials(&self, name: &str) -> Vec<String> {
        let m = self.module(name);
        vec![
            "-i".into(),
            format!("dev1/{name}"),
            "-u".into(),
            format!("hub.example/dev1/{name}/?api-version=2018-06-30"),
            "-P".into(),
            m.token.clone(),
        ]
    }

    /// A module listening on its inputs for `count` messages, with a persistent session.
    fn listen(&self, name: &str, count: u32) -> Child {
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.addr.port().to_string(), "-q", "1", "-c", "-v", "-W", "30"])
            .args(self.credentials(name))
            .args(["-C", &count.to_string(), "-t", &format!("devices/dev1/modules/{name}/#")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn send(&self, name: &str, output: &str, body: &str) {
        let topic = format!(
            "devices/dev1/modules/{name}/messages/events/%24.on={output}&%24.ct=application%2Fjson&%24.ce=utf-8"
        );
        let out = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.addr.port().to_string(), "-q", "1"])
            .args(self.credentials(name))
            .args(["-t", &topic, "-m", body])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn deploy(&self, routes: serde_json::Value) {
        let path = self.dir.path().join("deployment.json");
        std::fs::write(path.with_extension("tmp"), manifest(routes)).unwrap();
        std::fs::rename(path.with_extension("tmp"), path).unwrap();
    }
}

async fn env(routes: serde_json::Value) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let identity = outpost_identity::config::Config::under(dir.path(), DeviceId::new("dev1").unwrap(), "hub.example");
    let service = outpost_identity::open(&identity).unwrap();
    let mut modules = Vec::new();
    for name in ["sensor", "filter", "alerts"] {
        let id = ModuleId::new(name).unwrap();
        service.create_module(&id, "test").unwrap();
        modules.push(Module { name, token: service.issue_token(Some(&id), 3600).unwrap().to_string() });
    }
    let listener = outpost_rpc::bind(&identity.paths.socket, 0o660).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_identity::run_owned(identity.clone(), service, listener, shutdown.clone()));
    let env_dir_deployment = dir.path().join("deployment.json");
    let mut config = Config::default();
    config.admin.socket = "".into();
    config.metrics.enabled = false;
    config.store.dir = "".into();
    config.identity.socket = identity.paths.socket.clone();
    config.mqtt.tls = false;
    config.https.enabled = false;
    config.routes.deployment_file = env_dir_deployment;
    config.routes.poll_secs = 1;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let env = Env { dir, addr, modules, shutdown: shutdown.clone() };
    env.deploy(routes);
    tokio::spawn(async move { outpost_hub::run(config, listener, shutdown).await.unwrap() });
    env
}

/// Sends until `listener` has what it waits for (subscriptions and route loading are not
/// observable from outside), then returns its output lines.
fn send_until(env: &Env, mut listener: Child, from: &str, output: &str, body: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while listener.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "nothing arrived");
        env.send(from, output, body);
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = listener.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_outputs_reach_module_inputs_along_the_routes() {
    let env = env(serde_json::json!({
        "sensorToFilter": "FROM /messages/modules/sensor/outputs/temperatureOutput INTO BrokeredEndpoint(\"/modules/filter/inputs/input1\")",
        "hot": {"route": "FROM /messages/modules/sensor/* WHERE $body.machine.temperature > 50 INTO BrokeredEndpoint(\"/modules/alerts/inputs/hot\")", "priority": 1},
        "cloud": "FROM /messages/* INTO $upstream"
    }))
    .await;
    let env = std::sync::Arc::new(env);
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        // The filter gets the sensor's readings on input1, with the sender stamped in.
        let lines = send_until(&e, e.listen("filter", 1), "sensor", "temperatureOutput", r#"{"machine":{"temperature":20}}"#);
        let (topic, body) = lines[0].split_once(' ').unwrap();
        assert!(topic.starts_with("devices/dev1/modules/filter/inputs/input1/"), "{topic}");
        assert!(topic.contains("%24.cdid=dev1") && topic.contains("%24.cmid=sensor"), "{topic}");
        assert!(topic.contains("%24.ct=application%2Fjson"), "{topic}");
        assert_eq!(body, r#"{"machine":{"temperature":20}}"#);

        // The alerts module has never connected: only hot readings were kept for it.
        e.send("sensor", "temperatureOutput", r#"{"machine":{"temperature":20}}"#);
        e.send("sensor", "temperatureOutput", r#"{"machine":{"temperature":75}}"#);
        let out = e.listen("alerts", 1).wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("devices/dev1/modules/alerts/inputs/hot/"), "{text}");
        assert!(text.trim_end().ends_with(r#"{"machine":{"temperature":75}}"#), "only the hot one: {text}");

        // A module cannot feed another's input by publishing to it directly.
        let out = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &e.addr.port().to_string(), "-q", "1"])
            .args(e.credentials("sensor"))
            .args(["-t", "devices/dev1/modules/filter/inputs/input1/", "-m", "forged"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "refused");

        // A new deployment swaps the routes: now the filter's output goes to alerts.
        e.deploy(serde_json::json!({
            "filterToAlerts": "FROM /messages/modules/filter/outputs/* INTO BrokeredEndpoint(\"/modules/alerts/inputs/fromFilter\")"
        }));
        let lines = send_until(&e, e.listen("alerts", 1), "filter", "output1", r#"{"alert":true}"#);
        assert!(lines[0].starts_with("devices/dev1/modules/alerts/inputs/fromFilter/"), "{lines:?}");
    })
    .await
    .unwrap();
}
