//! Agents following the control plane: two devices (each its own identityd, agent, state
//! dir and containerd namespace) against a real RabbitMQ and an in-process outpost-cloud.
//! A deployment targeted by tag reaches exactly the matching device; a layered deployment
//! adds a module on top; retagging moves a device in; the metrics count what the agents
//! report; the agent answers its direct methods.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use outpost_agent::config::Config;
use outpost_cloud::registry::Credentials;
use outpost_cloud::service::{Cloud, NewDeployment, NewDevice, TwinUpdate};
use outpost_core::DeviceId;
use outpost_proto::agent::v1 as pb;
use outpost_proto::agent::v1::agent_client::AgentClient;
use outpost_runtime::containerd::Containerd as Client;
use outpost_runtime::oci::write_archive;
use outpost_testkit::{Containerd, RabbitMq};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod support;

const HUB: &str = "outpost.test";
const LOOP: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

struct CloudSide {
    rabbit: RabbitMq,
    cloud: Arc<Cloud>,
    api: std::net::SocketAddr,
    admin_token: String,
    shutdown: CancellationToken,
    _state: tempfile::TempDir,
}

async fn start_cloud() -> CloudSide {
    let state = tempfile::tempdir().unwrap();
    let broker_auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth_port = broker_auth.local_addr().unwrap().port();
    let rabbit =
        tokio::task::spawn_blocking(move || RabbitMq::start(&format!("http://127.0.0.1:{auth_port}"), "outpost"))
            .await
            .unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = outpost_cloud::config::Config::default();
    config.cloud.state_dir = state.path().to_owned();
    config.cloud.hub_hostname = HUB.into();
    config.api.tls = false;
    config.api.bind = api.local_addr().unwrap();
    config.amqp.url = format!("amqp://127.0.0.1:{}", rabbit.port());
    let opened = outpost_cloud::open(&config).unwrap();
    let admin_token = std::fs::read_to_string(opened.admin_token_file.clone().unwrap()).unwrap().trim().to_owned();
    let cloud = opened.cloud.clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_cloud::run(opened, outpost_cloud::Listeners { api, broker_auth }, shutdown.clone()));
    CloudSide { rabbit, cloud, api: config.api.bind, admin_token, shutdown, _state: state }
}

struct Device {
    id: String,
    config: Config,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

/// One device: registered in the cloud, its identityd holding the registered key, its agent
/// following the cloud in its own containerd namespace.
async fn start_device(cloud: &CloudSide, containerd: &Containerd, id: &str, tags: Value) -> Device {
    let (c, device_id) = (cloud.cloud.clone(), id.to_owned());
    let Value::Object(tags) = tags else { panic!("tags") };
    let record =
        tokio::task::spawn_blocking(move || c.create_device(NewDevice { id: device_id, tags, ..NewDevice::default() }))
            .await
            .unwrap()
            .unwrap();
    let Credentials::SymmetricKey { primary, .. } = record.credentials else { panic!("keys") };
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();

    let mut identity = outpost_identity::config::Config::under(dir.path(), DeviceId::new(id).unwrap(), HUB);
    identity.device.key = Some(primary);
    let service = outpost_identity::open(&identity).unwrap();
    let listener = outpost_rpc::bind(&identity.paths.socket, 0o660).unwrap();
    tokio::spawn(outpost_identity::run_owned(identity.clone(), service, listener, shutdown.clone()));

    let namespace = format!("{}-{id}", containerd.namespace());
    let client = Client::connect(&containerd.socket(), &namespace).await.unwrap();
    let archive = dir.path().join("busybox.tar");
    write_archive(&support::busybox(""), support::IMAGE, &archive).unwrap();
    client.import_archive(&archive, None).await.unwrap();

    let mut config = Config::default();
    let root = dir.path();
    config.paths.state_dir = root.join("agent-state");
    config.paths.socket = root.join("run/agent.sock");
    config.paths.identity_socket = identity.paths.socket.clone();
    config.paths.workload_dir = identity.paths.workload_dir.clone();
    config.paths.log_dir = root.join("agent-logs");
    config.logs.logger = env!("CARGO_BIN_EXE_outpost-logger").into();
    config.containerd.socket = containerd.socket();
    config.containerd.namespace = namespace;
    config.reconcile.interval_secs = 1;
    config.cloud.url = format!("amqp://127.0.0.1:{}", cloud.rabbit.port());
    config.cloud.report_interval_secs = 1;
    let listener = outpost_rpc::bind(&config.paths.socket, 0o660).unwrap();
    tokio::spawn(outpost_agent::run(config.clone(), listener, shutdown.clone()));
    Device { id: id.to_owned(), config, shutdown, _dir: dir }
}

impl Device {
    async fn running(&self) -> Vec<String> {
        let Ok(channel) = outpost_rpc::connect(&self.config.paths.socket).await else { return Vec::new() };
        let Ok(modules) = AgentClient::new(channel).list_modules(pb::ListModulesRequest {}).await else {
            return Vec::new();
        };
        let mut running: Vec<String> = modules
            .into_inner()
            .modules
            .into_iter()
            .filter(|m| m.runtime_status == "running")
            .map(|m| m.module_id)
            .collect();
        running.sort();
        running
    }

    async fn until_running(&self, expected: &[&str]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let now = self.running().await;
            if now == expected {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} runs {now:?}, expected {expected:?}", self.id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn module(script: &str) -> Value {
    json!({"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
        "settings": {"image": support::IMAGE, "createOptions": json!({"Cmd": [script]}).to_string()}})
}

fn base(modules: Value) -> String {
    json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
            "systemModules": {"edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:1"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "outpost/hub:1"}}},
            "modules": modules}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}, "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}}
    }})
    .to_string()
}

async fn deploy(cloud: &Arc<Cloud>, id: &str, target: &str, priority: u32, layered: bool, content: String) {
    let (cloud, new) = (
        cloud.clone(),
        NewDeployment {
            id: id.into(),
            content,
            target_condition: target.into(),
            priority,
            layered,
            ..Default::default()
        },
    );
    tokio::task::spawn_blocking(move || cloud.create_deployment(new)).await.unwrap().unwrap();
}

async fn metrics(cloud: &Arc<Cloud>, id: &str) -> (u64, u64, u64, u64) {
    let (cloud, id) = (cloud.clone(), id.to_owned());
    let m = tokio::task::spawn_blocking(move || cloud.deployment_metrics(&id)).await.unwrap().unwrap();
    (m.targeted, m.applied, m.reporting_success, m.reporting_failure)
}

async fn until_metrics(cloud: &Arc<Cloud>, id: &str, expected: (u64, u64, u64, u64)) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = metrics(cloud, id).await;
        if now == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} metrics {now:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_follow_targeted_and_layered_deployments_and_report() {
    let cloud = start_cloud().await;
    let containerd = tokio::task::spawn_blocking(Containerd::start).await.unwrap();
    let line = start_device(&cloud, &containerd, "line-1", json!({"env": "prod"})).await;
    let lab = start_device(&cloud, &containerd, "lab-1", json!({"env": "test"})).await;

    deploy(&cloud.cloud, "prod", "tags.env = 'prod'", 10, false, base(json!({"alpha": module(LOOP)}))).await;
    line.until_running(&["alpha"]).await;
    until_metrics(&cloud.cloud, "prod", (1, 1, 1, 0)).await;
    assert!(lab.running().await.is_empty(), "the test device is not targeted");

    let layer = json!({"$edgeAgent": {"properties.desired.modules.beta": module(LOOP)}}).to_string();
    deploy(&cloud.cloud, "extra", "*", 20, true, layer).await;
    line.until_running(&["alpha", "beta"]).await;
    until_metrics(&cloud.cloud, "extra", (2, 1, 1, 0)).await;

    // Retagged, the lab device joins production and gets the layer too.
    let c = cloud.cloud.clone();
    tokio::task::spawn_blocking(move || {
        let Value::Object(tags) = json!({"env": "prod"}) else { unreachable!() };
        c.update_twin("lab-1", "", TwinUpdate { tags: Some(tags), ..TwinUpdate::default() }).unwrap()
    })
    .await
    .unwrap();
    lab.until_running(&["alpha", "beta"]).await;
    until_metrics(&cloud.cloud, "prod", (2, 2, 2, 0)).await;

    // The agent's own direct methods through the cloud.
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", cloud.api)).unwrap().connect().await.unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", cloud.admin_token).parse().unwrap();
    let mut api = outpost_proto::cloud::v1::messaging_client::MessagingClient::with_interceptor(
        channel,
        move |mut request: tonic::Request<()>| {
            request.metadata_mut().insert("authorization", bearer.clone());
            Ok(request)
        },
    );
    let call = |method: &str, payload: &str| outpost_proto::cloud::v1::InvokeMethodRequest {
        device_id: "line-1".into(),
        module_id: "$edgeAgent".into(),
        method_name: method.into(),
        payload_json: payload.into(),
        response_timeout_secs: 20,
    };
    let ping = api.invoke_method(call("ping", "")).await.unwrap().into_inner();
    assert_eq!(ping.status, 200);
    let restart = api.invoke_method(call("RestartModule", r#"{"schemaVersion": "1.0", "id": "alpha"}"#)).await.unwrap();
    assert_eq!(restart.into_inner().status, 200);
    let unknown = api.invoke_method(call("RestartModule", r#"{"id": "nope"}"#)).await.unwrap().into_inner();
    assert_eq!(unknown.status, 404, "{}", unknown.payload_json);
    let other = api.invoke_method(call("Reboot", "")).await.unwrap().into_inner();
    assert_eq!(other.status, 404);

    // The agent's reported properties reached its twin.
    let c = cloud.cloud.clone();
    let twin = tokio::task::spawn_blocking(move || c.twin("line-1", "$edgeAgent").unwrap()).await.unwrap();
    assert_eq!(twin.reported["lastDesiredStatus"]["code"], 200);
    assert!(twin.reported["modules"]["alpha"]["runtimeStatus"].is_string(), "{:?}", twin.reported);

    for device in [line, lab] {
        device.shutdown.cancel();
    }
    cloud.shutdown.cancel();
    drop(containerd);
}
