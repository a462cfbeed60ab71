//! outpost-agent as a daemon: the management API over its socket, a persisted deployment,
//! operator actions, and an agent restart that adopts running modules without restarting
//! them.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use outpost_agent::config::Config;
use outpost_proto::agent::v1 as pb;
use outpost_proto::agent::v1::agent_client::AgentClient;
use support::{Setup, manifest_json, pid, setup};
use tokio_util::sync::CancellationToken;

const LOOP: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

struct Daemon {
    config: Config,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), outpost_agent::StartError>>,
}

fn config(env: &Setup) -> Config {
    let mut config = Config::default();
    let root = env.dir.path();
    config.paths.state_dir = root.join("agent-state");
    config.paths.socket = root.join("run/agent.sock");
    config.paths.identity_socket = env.identity_socket.clone();
    config.paths.workload_dir = env.workload_dir.clone();
    config.paths.log_dir = root.join("agent-logs");
    config.containerd.socket = env.containerd.socket();
    config.containerd.namespace = env.containerd.namespace().to_owned();
    config.reconcile.interval_secs = 1;
    config
}

async fn start(config: Config) -> Daemon {
    let listener = outpost_rpc::bind(&config.paths.socket, 0o660).unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(outpost_agent::run(config.clone(), listener, shutdown.clone()));
    Daemon { config, shutdown, task }
}

impl Daemon {
    async fn client(&self) -> AgentClient<tonic::transport::Channel> {
        AgentClient::new(outpost_rpc::connect(&self.config.paths.socket).await.unwrap())
    }

    async fn stop(self) -> Config {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task).await.unwrap().unwrap().unwrap();
        self.config
    }
}

async fn statuses(client: &mut AgentClient<tonic::transport::Channel>) -> Vec<(String, String)> {
    let modules = client.list_modules(pb::ListModulesRequest {}).await.unwrap().into_inner().modules;
    modules.into_iter().map(|m| (m.module_id, m.runtime_status)).collect()
}

async fn until(client: &mut AgentClient<tonic::transport::Channel>, expected: &[(&str, &str)]) {
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = statuses(client).await;
        if now == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "statuses {now:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_management_api_applies_controls_and_survives_an_agent_restart() {
    let env = setup().await;
    let daemon = start(config(&env)).await;
    let mut client = daemon.client().await;

    // Invalid manifests are refused with their paths; nothing is applied.
    let err = client
        .apply_deployment(pb::ApplyDeploymentRequest { manifest_json: "{\"modulesContent\":{}}".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("$.modulesContent['$edgeAgent']: is required"), "{}", err.message());
    assert_eq!(client.get_deployment(pb::GetDeploymentRequest {}).await.unwrap().into_inner().manifest_json, "");

    let text = manifest_json(&[("alpha", 1, LOOP, "always"), ("beta", 2, LOOP, "always")]);
    let applied =
        client.apply_deployment(pb::ApplyDeploymentRequest { manifest_json: text.clone() }).await.unwrap().into_inner();
    assert_eq!(applied.modules, 2);
    until(&mut client, &[("alpha", "running"), ("beta", "running")]).await;

    // Operator actions.
    let stopped = client.stop_module(pb::ModuleRequest { module_id: "beta".into() }).await.unwrap().into_inner();
    assert_eq!((stopped.runtime_status.as_str(), stopped.desired_status.as_str()), ("stopped", "stopped"));
    until(&mut client, &[("alpha", "running"), ("beta", "stopped")]).await;
    let started = client.start_module(pb::ModuleRequest { module_id: "beta".into() }).await.unwrap().into_inner();
    assert_eq!(started.runtime_status, "running");
    let before = pid(&env.client, "alpha").await.unwrap();
    let restarted = client.restart_module(pb::ModuleRequest { module_id: "alpha".into() }).await.unwrap().into_inner();
    assert_eq!(restarted.runtime_status, "running");
    let after = pid(&env.client, "alpha").await.unwrap();
    assert_ne!(before, after, "restart gives a new process");
    let missing = client.stop_module(pb::ModuleRequest { module_id: "nope".into() }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Restart the agent: the deployment is still there and no module is restarted.
    let pids = (pid(&env.client, "alpha").await, pid(&env.client, "beta").await);
    drop(client);
    let config = daemon.stop().await;
    let daemon = start(config).await;
    let mut client = daemon.client().await;
    assert_eq!(client.get_deployment(pb::GetDeploymentRequest {}).await.unwrap().into_inner().manifest_json, text);
    until(&mut client, &[("alpha", "running"), ("beta", "running")]).await;
    assert_eq!(
        (pid(&env.client, "alpha").await, pid(&env.client, "beta").await),
        pids,
        "modules adopted, not restarted"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn crashing_modules_show_backoff_with_the_reason() {
    let env = setup().await;
    let daemon = start(config(&env)).await;
    let mut client = daemon.client().await;
    let text = manifest_json(&[("crasher", 1, "exit 2", "always")]);
    client.apply_deployment(pb::ApplyDeploymentRequest { manifest_json: text }).await.unwrap();
    until(&mut client, &[("crasher", "backoff")]).await;
    let status = client.list_modules(pb::ListModulesRequest {}).await.unwrap().into_inner().modules.remove(0);
    assert!(status.status_description.starts_with("exited with 2; restarting at "), "{}", status.status_description);
    assert_eq!(status.exit_code, 2);
    daemon.stop().await;
}
