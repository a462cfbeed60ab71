//! The official Azure IoT Python SDK as a module talking to outpost-hub over TLS on 8883:
//! token and trust bundle from identityd's workload API, the hub's certificate issued by
//! identityd; a message to an output observed by a plain MQTT client (mosquitto_sub) as a
//! configured user; the module twin (GET, reported PATCH, a desired patch when the deployment
//! changes); the same message over MQTT over WebSockets on 443; direct methods from one SDK
//! module to another through the HTTPS endpoint on 443. One test, because it needs ports 8883
//! and 443 on loopback.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use outpost_core::{DeviceId, ModuleId};
use outpost_hub::auth::User;
use outpost_hub::config::Config;
use tokio_util::sync::CancellationToken;

/// A deployment with module `pymod` whose twin wants `threshold`.
fn manifest(threshold: u32) -> String {
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
            "systemModules": {"edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:1"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "outpost/hub:1"}}},
            "modules": {"pymod": {"version": "1", "type": "docker", "status": "running", "restartPolicy": "always",
                "settings": {"image": "example/pymod:1"}}}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}}},
        "pymod": {"properties.desired": {"TemperatureThreshold": threshold}}}})
    .to_string()
}

/// The SDK module script `script` with the environment the agent would give it.
fn module_command(script: &str, module: &str, socket: &std::path::Path, generation: &str) -> Command {
    let mut command = Command::new("python3");
    command
        .arg(script)
        .env("IOTEDGE_IOTHUBHOSTNAME", "hub.example")
        .env("IOTEDGE_DEVICEID", "dev1")
        .env("IOTEDGE_MODULEID", module)
        .env("IOTEDGE_GATEWAYHOSTNAME", "localhost")
        .env("IOTEDGE_MODULEGENERATIONID", generation)
        .env("IOTEDGE_WORKLOADURI", format!("unix://{}", socket.display()))
        .env("IOTEDGE_APIVERSION", "2019-01-30")
        .env("IOTEDGE_AUTHSCHEME", "sasToken");
    command
}

/// Runs the SDK module script (with `arg`) until a dashboard subscribed through the plain
/// listener on `port` sees its message (the subscription's start is not observable); the
/// dashboard's line.
async fn sent_and_seen(port: &str, socket: &std::path::Path, generation: &str, arg: Option<&str>) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/sdk_hub_module.py");
    let (port, socket, generation, arg) =
        (port.to_owned(), socket.to_owned(), generation.to_owned(), arg.map(str::to_owned));
    tokio::task::spawn_blocking(move || {
        let mut watcher = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port, "-u", "dashboard", "-P", "s3cret"])
            .args(["-C", "1", "-W", "60", "-v", "-t", "devices/dev1/modules/pymod/messages/events/#"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while watcher.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "the SDK's message never arrived ({arg:?})");
            let out = module_command(script, "pymod", &socket, &generation).args(arg.as_slice()).output().unwrap();
            assert!(
                out.status.success(),
                "the SDK module failed ({arg:?}):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(watcher.wait_with_output().unwrap().stdout).unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sdk_modules_use_outputs_twins_and_direct_methods_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut identity =
        outpost_identity::config::Config::under(dir.path(), DeviceId::new("dev1").unwrap(), "hub.example");
    identity.device.gateway_hostname = "localhost".into();
    let service = outpost_identity::open(&identity).unwrap();
    let (pymod, _) = service.create_module(&ModuleId::new("pymod").unwrap(), "test").unwrap();
    let (caller, _) = service.create_module(&ModuleId::new("caller").unwrap(), "test").unwrap();
    let listener = outpost_rpc::bind(&identity.paths.socket, 0o660).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_identity::run_owned(identity.clone(), service, listener, shutdown.clone()));

    let deployment = dir.path().join("deployment.json");
    std::fs::write(&deployment, manifest(25)).unwrap();
    let mut config = Config::default();
    config.admin.socket = "".into();
    config.metrics.enabled = false;
    config.store.dir = "".into();
    config.routes.deployment_file = deployment.clone();
    config.routes.poll_secs = 1;
    config.identity.socket = identity.paths.socket.clone();
    config.mqtt.tls_bind = "127.0.0.1:8883".parse().unwrap();
    config.https.bind = "127.0.0.1:443".parse().unwrap();
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

    // The SDK module sends one message, over TCP (8883) and then over MQTT over WebSockets
    // (443, /$iothub/websocket); a dashboard watches.
    let socket = identity.paths.workload_dir.join("pymod/workload.sock");
    let generation = pymod.generation_id.to_string();
    let over_tcp = sent_and_seen(&port, &socket, &generation, None).await;
    let (topic, body) = over_tcp.trim().split_once(' ').unwrap();
    assert!(topic.starts_with("devices/dev1/modules/pymod/messages/events/"), "{topic}");
    assert!(topic.contains("%24.on=temperatureOutput"), "the output name: {topic}");
    assert!(topic.contains("source=sdk") && topic.contains("transport=tcp"), "the application properties: {topic}");
    assert_eq!(body, r#"{"machine": {"temperature": 42.5}}"#);
    let over_websockets = sent_and_seen(&port, &socket, &generation, Some("websockets")).await;
    assert!(over_websockets.contains("transport=websockets"), "{over_websockets}");

    // The twin: GET with the deployment's desired properties, a reported PATCH, then a desired
    // patch when the deployment changes.
    let socket = identity.paths.workload_dir.join("pymod/workload.sock");
    let generation = pymod.generation_id.to_string();
    let twin_script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/sdk_hub_twin.py");
    let lines = tokio::task::spawn_blocking(move || {
        let mut child =
            module_command(twin_script, "pymod", &socket, &generation).stdout(Stdio::piped()).spawn().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        for line in std::io::BufRead::lines(stdout) {
            let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            if line.get("ready").is_some() {
                std::fs::write(deployment.with_extension("tmp"), manifest(35)).unwrap();
                std::fs::rename(deployment.with_extension("tmp"), &deployment).unwrap();
            }
            lines.push(line);
        }
        assert!(child.wait().unwrap().success(), "{lines:?}");
        lines
    })
    .await
    .unwrap();
    let twin = &lines[0]["twin"];
    assert_eq!(twin["desired"]["TemperatureThreshold"], 25, "{lines:?}");
    assert_eq!(twin["desired"]["$version"], 1, "{lines:?}");
    assert_eq!(lines[1]["reported"], "ok");
    let patch = &lines.last().unwrap()["patch"];
    assert_eq!(patch["TemperatureThreshold"], 35, "{lines:?}");
    assert_eq!(patch["$version"], 2, "{lines:?}");

    // Direct methods: `caller` invokes `pymod`'s methods with invoke_method (HTTPS on 443).
    let workload = identity.paths.workload_dir.clone();
    let (target_generation, caller_generation) = (pymod.generation_id.to_string(), caller.generation_id.to_string());
    let target_script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/sdk_hub_method_target.py");
    let invoke_script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/sdk_hub_invoke.py");
    let (handled, calls) = tokio::task::spawn_blocking(move || {
        let mut target =
            module_command(target_script, "pymod", &workload.join("pymod/workload.sock"), &target_generation)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(target.stdout.take().unwrap()));
        assert!(lines.next().unwrap().unwrap().contains("ready"));
        let out = module_command(invoke_script, "caller", &workload.join("caller/workload.sock"), &caller_generation)
            .arg("pymod")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let calls: Vec<serde_json::Value> =
            String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let handled: Vec<String> = lines.map(Result::unwrap).collect();
        assert!(target.wait().unwrap().success(), "{handled:?} {calls:?}");
        (handled, calls)
    })
    .await
    .unwrap();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let echo = &calls[0]["result"];
    assert_eq!(echo["status"], 200, "{calls:?}");
    assert_eq!(echo["payload"], serde_json::json!({"method": "echo", "echo": {"n": 7, "text": "hé"}}), "{calls:?}");
    let offline = calls[1]["cause"].as_str().unwrap_or_default();
    assert!(offline.contains("404"), "a module that is not connected: {calls:?}");
    assert_eq!(calls[2]["result"]["status"], 200, "{calls:?}");
    assert_eq!(handled, [r#"{"handled": "echo"}"#, r#"{"handled": "stop"}"#]);

    shutdown.cancel();
    hub.await.unwrap().unwrap();
}
