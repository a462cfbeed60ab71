//! `outpost cloud device|twin …` against a running outpost-cloud over TLS with its generated
//! CA and admin token: devices are created, listed, shown, tagged, disabled and deleted;
//! twins shown and patched; a wrong token, an untrusted certificate and bad input are refused
//! with messages that say so.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

const CLI: &str = env!("CARGO_BIN_EXE_outpost");

struct Cloud {
    endpoint: String,
    token_file: PathBuf,
    ca_file: PathBuf,
    shutdown: CancellationToken,
    _state: tempfile::TempDir,
}

async fn start_cloud() -> Cloud {
    let state = tempfile::tempdir().unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let broker_auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = api.local_addr().unwrap().port();
    let mut config = outpost_cloud::config::Config::default();
    config.cloud.state_dir = state.path().to_owned();
    config.api.bind = api.local_addr().unwrap();
    // No broker here: the link keeps retrying in the background, the registry works.
    config.amqp.url = "amqp://127.0.0.1:1".into();
    let opened = outpost_cloud::open(&config).unwrap();
    let token_file = opened.admin_token_file.clone().unwrap();
    let ca_file = opened.tls.as_ref().unwrap().ca_file.clone().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_cloud::run(opened, outpost_cloud::Listeners { api, broker_auth }, shutdown.clone()));
    Cloud { endpoint: format!("https://127.0.0.1:{port}"), token_file, ca_file, shutdown, _state: state }
}

fn run(cloud: &Cloud, token_file: &Path, ca_file: &Path, args: &[&str]) -> Output {
    Command::new(CLI)
        .env("OUTPOST_CLOUD_ENDPOINT", &cloud.endpoint)
        .env("OUTPOST_CLOUD_TOKEN_FILE", token_file)
        .env("OUTPOST_CLOUD_CA_FILE", ca_file)
        .env("HOME", "/nonexistent")
        .env_remove("XDG_CONFIG_HOME")
        .arg("cloud")
        .args(args)
        .output()
        .unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn failed(output: &Output) -> String {
    assert!(!output.status.success(), "succeeded: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_manage_devices_and_twins() {
    let cloud = start_cloud().await;
    let (token, ca) = (cloud.token_file.clone(), cloud.ca_file.clone());
    let cli = |args: &[&str]| run(&cloud, &token, &ca, args);

    let created: Value =
        serde_json::from_str(&ok(&cli(&["device", "create", "plant-1", "--tags", r#"{"env":"prod"}"#, "-o", "json"])))
            .unwrap();
    assert_eq!(created["deviceId"], "plant-1");
    assert_eq!(created["status"], "enabled");
    let key = created["authentication"]["symmetricKey"]["primaryKey"].as_str().unwrap();
    assert_eq!(key.len(), 44, "a generated 32-byte key in base64: {key}");
    let text = ok(&cli(&["device", "create", "plant-2"]));
    assert!(text.contains("primary key:"), "{text}");

    let table = ok(&cli(&["device", "list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("DEVICE") && lines[0].contains("LAST ACTIVITY"), "{table}");
    assert!(lines[1].starts_with("plant-1") && lines[1].contains("enabled") && lines[1].contains("never"), "{table}");
    assert!(lines[2].starts_with("plant-2"), "{table}");

    ok(&cli(&["device", "set-tags", "plant-2", r#"{"env":"test","ring":2}"#]));
    let shown: Value = serde_json::from_str(&ok(&cli(&["device", "show", "plant-2", "-o", "json"]))).unwrap();
    assert_eq!(shown["tags"], serde_json::json!({"env": "test", "ring": 2}));

    let twin: Value =
        serde_json::from_str(&ok(&cli(&["twin", "update", "plant-1", "-m", "sensor", "--desired", r#"{"rate":5}"#])))
            .unwrap();
    assert_eq!(twin["moduleId"], "sensor");
    assert_eq!(twin["properties"]["desired"], serde_json::json!({"rate": 5, "$version": 1}));
    let etag = twin["etag"].as_str().unwrap().to_owned();
    ok(&cli(&["twin", "update", "plant-1", "-m", "sensor", "--desired", r#"{"rate":6}"#, "--if-match", &etag]));
    let stale =
        failed(&cli(&["twin", "update", "plant-1", "-m", "sensor", "--desired", r#"{"rate":7}"#, "--if-match", &etag]));
    assert!(stale.contains("has changed"), "{stale}");
    let twin: Value = serde_json::from_str(&ok(&cli(&["twin", "show", "plant-1", "-m", "sensor"]))).unwrap();
    assert_eq!(twin["properties"]["desired"]["rate"], 6);

    let disabled = ok(&cli(&["device", "disable", "plant-2", "--reason", "lost"]));
    assert!(disabled.contains("plant-2: disabled"), "{disabled}");
    let shown = ok(&cli(&["device", "show", "plant-2"]));
    assert!(shown.contains("disabled (lost)"), "{shown}");

    // Bad input is refused with what and where.
    let err = failed(&cli(&["device", "create", "plant-1"]));
    assert!(err.contains("exists already"), "{err}");
    let err = failed(&cli(&["device", "create", "bad/id"]));
    assert!(err.contains("invalid argument"), "{err}");
    let err = failed(&cli(&["device", "set-tags", "plant-1", "[1]"]));
    assert!(err.contains("must be a JSON object"), "{err}");
    let err = failed(&cli(&["twin", "update", "plant-1", "--desired", r#"{"a.b":1}"#]));
    assert!(err.contains("\"a.b\""), "{err}");
    let err = failed(&cli(&["device", "create", "k", "--primary-key", "c2hvcnQ="]));
    assert!(err.contains("16 to 64 bytes"), "{err}");
    let err = failed(&cli(&["device", "show", "ghost"]));
    assert!(err.contains("not found") && err.contains("ghost"), "{err}");

    ok(&cli(&["device", "delete", "plant-2"]));
    let table = ok(&cli(&["device", "list", "-o", "json"]));
    assert_eq!(serde_json::from_str::<Value>(&table).unwrap().as_array().unwrap().len(), 1);

    // A wrong token, and a certificate the CLI does not trust.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let err = failed(&run(&cloud, &wrong, &ca, &["device", "list"]));
    assert!(err.contains("unauthenticated: unknown operator token"), "{err}");
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, outpost_cloud::tls::generate(&["localhost".into()]).unwrap().0).unwrap();
    let err = failed(&run(&cloud, &token, &other_ca, &["device", "list"]));
    assert!(err.contains("is --ca-file right?"), "{err}");
    cloud.shutdown.cancel();
}

fn manifest(modules: Value) -> String {
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "outpost-agent:1"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "outpost-hub:1"}}
            },
            "modules": modules
        }},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {"up": "FROM /messages/* INTO $upstream"},
            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}}
    }})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_target_deployments_by_tags_and_see_their_metrics() {
    let cloud = start_cloud().await;
    let (token, ca) = (cloud.token_file.clone(), cloud.ca_file.clone());
    let cli = |args: &[&str]| run(&cloud, &token, &ca, args);
    for (id, tags) in [("line-1", r#"{"env":"prod"}"#), ("line-2", r#"{"env":"prod"}"#), ("lab-1", r#"{"env":"test"}"#)]
    {
        ok(&cli(&["device", "create", id, "--tags", tags]));
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let sensor = serde_json::json!({"sensor": {"type": "docker", "status": "running", "restartPolicy": "always",
        "settings": {"image": "sensor:1"}}});
    std::fs::write(&base, manifest(sensor)).unwrap();
    let layer = dir.path().join("layer.json");
    std::fs::write(
        &layer,
        r#"{"modulesContent": {"$edgeAgent": {"properties.desired.modules.filter":
            {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "filter:1"}}}}}"#,
    )
    .unwrap();

    let created = ok(&cli(&[
        "deployment",
        "create",
        "prod-base",
        "-f",
        base.to_str().unwrap(),
        "--target",
        "tags.env='prod'",
        "--priority",
        "10",
        "--label",
        "team=ops",
    ]));
    assert!(created.contains("2 targeted, 2 applied"), "{created}");
    ok(&cli(&[
        "deployment",
        "create",
        "filters",
        "-f",
        layer.to_str().unwrap(),
        "--target",
        "*",
        "--priority",
        "20",
        "--layered",
    ]));

    let table = ok(&cli(&["deployment", "list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("DEPLOYMENT") && lines[0].contains("TARGETED"), "{table}");
    assert!(lines[1].starts_with("filters") && lines[1].contains("layered"), "{table}");
    let shown = ok(&cli(&["deployment", "show", "filters"]));
    assert!(shown.contains("3 targeted, 2 applied"), "{shown}");
    assert!(shown.contains("not applied: lab-1:"), "{shown}");

    let twin: Value = serde_json::from_str(&ok(&cli(&["twin", "show", "line-1", "-m", "$edgeAgent"]))).unwrap();
    let modules = twin["properties"]["desired"]["modules"].as_object().unwrap();
    assert_eq!(modules.keys().collect::<Vec<_>>(), ["filter", "sensor"]);

    // Retagging moves a device in; the metrics follow.
    ok(&cli(&["device", "set-tags", "lab-1", r#"{"env":"prod"}"#]));
    let json: Value = serde_json::from_str(&ok(&cli(&["deployment", "show", "prod-base", "-o", "json"]))).unwrap();
    assert_eq!(json["systemMetrics"]["results"]["appliedCount"], 3);
    assert_eq!(json["labels"]["team"], "ops");

    // Bad input: the position of a bad condition, the path of a bad manifest.
    let err =
        failed(&cli(&["deployment", "create", "x", "-f", base.to_str().unwrap(), "--target", "tags.env = = 'a'"]));
    assert!(err.contains("at 1:"), "{err}");
    std::fs::write(&base, manifest(serde_json::json!({"bad": {"type": "docker"}}))).unwrap();
    let err = failed(&cli(&["deployment", "create", "x", "-f", base.to_str().unwrap(), "--target", "*"]));
    assert!(err.contains("modules.bad"), "{err}");
    let err = failed(&cli(&["deployment", "create", "x", "-f", layer.to_str().unwrap(), "--target", "*"]));
    assert!(err.contains("layered"), "{err}");

    ok(&cli(&["deployment", "delete", "filters"]));
    let twin: Value = serde_json::from_str(&ok(&cli(&["twin", "show", "line-1", "-m", "$edgeAgent"]))).unwrap();
    assert_eq!(twin["properties"]["desired"]["modules"].as_object().unwrap().len(), 1);
    cloud.shutdown.cancel();
}
