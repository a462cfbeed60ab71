//! outpost-agent as a daemon: the management API over its socket, a persisted deployment,
//! operator actions, and an agent restart that adopts running modules without restarting
//! them.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use outpost_agent::config::Config;
use outpost_core::manifest::RegistryCredential;
use outpost_proto::agent::v1 as pb;
use outpost_proto::agent::v1::agent_client::AgentClient;
use outpost_runtime::oci::digest;
use outpost_runtime::registry::{RegistryClient, RegistrySettings};
use outpost_testkit::Registry;
use support::{IMAGE, Setup, busybox, manifest_json, pid, setup};
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
    config.logs.logger = env!("CARGO_BIN_EXE_outpost-logger").into();
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

#[tokio::test]
async fn modules_are_pulled_from_a_registry_with_the_deployments_credentials() {
    let env = setup().await;
    let registry = Registry::start_with_login("puller", "s3cret");
    let image = format!("{}/modules/sensor:1", registry.address());
    let built = busybox("sensor 1\n");
    let login = |password: &str| RegistryCredential {
        address: registry.address().into(),
        username: "puller".into(),
        password: password.into(),
    };
    RegistryClient::new(&image, &RegistrySettings::default(), &[login("s3cret")]).unwrap().push(&built).await.unwrap();
    let with = |password: &str| {
        let credentials =
            serde_json::json!({"private": {"address": registry.address(), "username": "puller", "password": password}});
        manifest_json(&[("sensor", 1, LOOP, "always")]).replace(IMAGE, &image).replace(
            r#""runtime": {"type": "docker", "settings": {}}"#,
            &format!(r#""runtime": {{"type": "docker", "settings": {{"registryCredentials": {credentials}}}}}"#),
        )
    };
    let daemon = start(config(&env)).await;
    let mut client = daemon.client().await;
    let last_desired = |client: &mut AgentClient<tonic::transport::Channel>| {
        let mut client = client.clone();
        async move {
            client.get_deployment(pb::GetDeploymentRequest {}).await.unwrap().into_inner().last_desired_status.unwrap()
        }
    };
    assert_eq!(last_desired(&mut client).await.code, 417, "nothing deployed yet");

    // Wrong password: the module backs off with the registry's answer, the deployment is 500.
    client.apply_deployment(pb::ApplyDeploymentRequest { manifest_json: with("wrong") }).await.unwrap();
    until(&mut client, &[("sensor", "backoff")]).await;
    let status = client.get_module(pb::ModuleRequest { module_id: "sensor".into() }).await.unwrap().into_inner();
    assert!(status.status_description.contains("registryCredentials"), "{}", status.status_description);
    assert!(!status.status_description.contains("wrong"), "{}", status.status_description);
    let last = last_desired(&mut client).await;
    assert_eq!(last.code, 500, "{last:?}");

    // The right one: pulled at once (a new deployment retries failed pulls) and running.
    client.apply_deployment(pb::ApplyDeploymentRequest { manifest_json: with("s3cret") }).await.unwrap();
    until(&mut client, &[("sensor", "running")]).await;
    let status = client.get_module(pb::ModuleRequest { module_id: "sensor".into() }).await.unwrap().into_inner();
    assert_eq!(status.image_digest, digest(&built.manifest));
    assert!(!status.last_start_time.is_empty());
    assert!(status.memory_bytes > 0 && status.pids >= 1, "usage of a running module: {status:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while last_desired(&mut client).await.code != 200 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", last_desired(&mut client).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // PullImage streams progress and ends with the digest, or fails with the reason.
    let second = format!("{}/modules/sensor:2", registry.address());
    let built2 = busybox("sensor 2\n");
    RegistryClient::new(&second, &RegistrySettings::default(), &[login("s3cret")])
        .unwrap()
        .push(&built2)
        .await
        .unwrap();
    let mut stream = client.pull_image(pb::PullImageRequest { image: second.clone() }).await.unwrap().into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        messages.push(message);
    }
    let final_message = messages.last().unwrap();
    assert_eq!(final_message.digest, digest(&built2.manifest));
    assert_eq!(final_message.bytes_done, final_message.bytes_total);
    assert_eq!(env.client.image_digest(&second).await.unwrap(), Some(digest(&built2.manifest)));
    let missing = format!("{}/modules/sensor:404", registry.address());
    let mut stream = client.pull_image(pb::PullImageRequest { image: missing }).await.unwrap().into_inner();
    let error = loop {
        match stream.message().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a missing tag cannot be pulled"),
            Err(status) => break status,
        }
    };
    assert!(error.message().contains("not found"), "{}", error.message());

    // Offline devices import archives instead.
    let archive = env.dir.path().join("imported.tar");
    let imported = busybox("imported\n");
    outpost_runtime::oci::write_archive(&imported, "outpost.test/imported:1", &archive).unwrap();
    let request = pb::ImportImageRequest { path: archive.display().to_string(), name: String::new() };
    let answer = client.import_image(request).await.unwrap().into_inner();
    assert_eq!((answer.name.as_str(), answer.digest), ("outpost.test/imported:1", digest(&imported.manifest)));
    let missing = pb::ImportImageRequest { path: "/nonexistent/archive.tar".into(), name: "x:1".into() };
    let error = client.import_image(missing).await.unwrap_err();
    assert!(error.message().contains("/nonexistent/archive.tar"), "{}", error.message());

    // A manifest with an unsupported schema version is refused (412); the module stays.
    let bad = with("s3cret").replacen(r#""schemaVersion": "1.1""#, r#""schemaVersion": "9.0""#, 1);
    client.apply_deployment(pb::ApplyDeploymentRequest { manifest_json: bad }).await.unwrap_err();
    assert_eq!(last_desired(&mut client).await.code, 412);
    until(&mut client, &[("sensor", "running")]).await;
    daemon.stop().await;
}

async fn log_lines(
    client: &mut AgentClient<tonic::transport::Channel>,
    module: &str,
    tail: Option<u32>,
) -> Vec<(String, String)> {
    let request = pb::StreamLogsRequest { module_id: module.into(), tail, since_unix: 0, follow: false };
    let mut stream = client.stream_logs(request).await.unwrap().into_inner();
    let mut lines = Vec::new();
    while let Some(line) = stream.message().await.unwrap() {
        lines.push((line.stream, line.text));
    }
    lines
}

#[tokio::test]
async fn module_output_is_kept_in_rotated_files_and_streamed() {
    let env = setup().await;
    let mut config = config(&env);
    config.logs.max_size_bytes = 4096;
    config.logs.max_files = 3;
    let log_dir = config.paths.log_dir.clone();
    let daemon = start(config).await;
    let mut client = daemon.client().await;
    let chatty = "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo out-$i; done; \
                  trap 'exit 0' TERM; while true; do sleep 0.1; done";
    let text = manifest_json(&[("chatty", 1, chatty, "always"), ("quick", 2, "echo last words >&2; exit 3", "never")]);
    client.apply_deployment(pb::ApplyDeploymentRequest { manifest_json: text }).await.unwrap();
    until(&mut client, &[("chatty", "running"), ("quick", "failed")]).await;

    // A process that writes and exits at once loses nothing.
    assert_eq!(log_lines(&mut client, "quick", None).await, [("stderr".to_owned(), "last words".to_owned())]);

    // Rotation keeps at most three files under the cap; the newest lines are all there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let has = |lines: &[(String, String)], text: &str| lines.iter().any(|(_, t)| t == text);
    while !{
        let all = log_lines(&mut client, "chatty", None).await;
        has(&all, "out-300")
    } {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chatty's last line never arrived: {:?}",
            log_lines(&mut client, "chatty", Some(4)).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(log_dir.join("chatty.log.2").exists() && !log_dir.join("chatty.log.3").exists());
    for name in ["chatty.log", "chatty.log.1", "chatty.log.2"] {
        assert!(std::fs::metadata(log_dir.join(name)).unwrap().len() <= 4096, "{name}");
    }
    let all = log_lines(&mut client, "chatty", None).await;
    let numbers: Vec<u32> =
        all.iter().filter(|(s, _)| s == "stdout").map(|(_, t)| t["out-".len()..].parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] + 1 == w[1]), "no gaps, in order: {numbers:?}");
    assert_eq!(numbers.last(), Some(&300));
    assert!(numbers.len() < 300, "old lines were rotated away");
    assert_eq!(log_lines(&mut client, "chatty", Some(4)).await, all[all.len() - 4..]);

    // Following: a restart's output arrives on the open stream.
    let request = pb::StreamLogsRequest { module_id: "chatty".into(), tail: Some(0), since_unix: 0, follow: true };
    let mut follow = client.stream_logs(request).await.unwrap().into_inner();
    client.restart_module(pb::ModuleRequest { module_id: "chatty".into() }).await.unwrap();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), follow.message()).await.unwrap().unwrap().unwrap();
        if line.text == "out-1" {
            break; // the restarted process's first line
        }
    }
    drop(follow);

    let missing = client
        .stream_logs(pb::StreamLogsRequest { module_id: "ghost".into(), tail: None, since_unix: 0, follow: false })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_containerd_restart_is_ridden_out() {
    let mut env = setup().await;
    let daemon = start(config(&env)).await;
    let mut client = daemon.client().await;
    let one = manifest_json(&[("steady", 1, LOOP, "always")]);
    client.apply_deployment(pb::ApplyDeploymentRequest { manifest_json: one }).await.unwrap();
    until(&mut client, &[("steady", "running")]).await;
    let before = pid(&env.client, "steady").await;

    // containerd goes away and comes back; its shims, and so the module, keep running.
    tokio::task::block_in_place(|| env.containerd.restart());
    let two = manifest_json(&[("steady", 1, LOOP, "always"), ("newcomer", 2, LOOP, "always")]);
    client.apply_deployment(pb::ApplyDeploymentRequest { manifest_json: two }).await.unwrap();
    until(&mut client, &[("newcomer", "running"), ("steady", "running")]).await;
    assert_eq!(pid(&env.client, "steady").await, before, "not restarted");
    daemon.stop().await;
}

#[tokio::test]
async fn a_watched_deployment_file_is_applied_and_reported_like_azure() {
    let env = setup().await;
    let mut config = config(&env);
    let file = env.dir.path().join("deployment.json");
    config.deployment.file = file.clone();
    config.deployment.poll_secs = 1;
    let daemon = start(config).await;
    let mut client = daemon.client().await;
    let text = manifest_json(&[("watched", 1, LOOP, "always")]).replacen(
        r#""schemaVersion": "1.1","#,
        r#""schemaVersion": "1.1", "$version": 3,"#,
        1,
    );
    std::fs::write(&file, &text).unwrap();
    until(&mut client, &[("watched", "running")]).await;
    let deployment = client.get_deployment(pb::GetDeploymentRequest {}).await.unwrap().into_inner();
    assert_eq!(deployment.manifest_json, text);
    let reported: serde_json::Value = serde_json::from_str(&deployment.reported_properties_json).unwrap();
    assert_eq!(reported["lastDesiredVersion"], 3);
    assert_eq!(reported["modules"]["watched"]["runtimeStatus"], "running");
    assert_eq!(reported["modules"]["watched"]["restartPolicy"], "always");

    // A broken file is refused (400) and the running deployment stays.
    std::fs::write(&file, "{\"modulesContent\": ").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let last = client.get_deployment(pb::GetDeploymentRequest {}).await.unwrap().into_inner();
        if last.last_desired_status.as_ref().is_some_and(|s| s.code == 400) {
            assert_eq!(last.manifest_json, text, "the stored deployment is untouched");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the broken file was not refused: {last:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until(&mut client, &[("watched", "running")]).await;
    daemon.stop().await;
}
