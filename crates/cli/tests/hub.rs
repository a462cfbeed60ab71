//! `outpost hub status` against a running outpost-hub with a mosquitto subscriber: the table
//! and the JSON name the client, its subscription and the counters; a hub that is not running
//! is reported with the socket it was looked for at.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

const CLI: &str = env!("CARGO_BIN_EXE_outpost");

fn outpost(socket: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(CLI).arg("--hub-socket").arg(socket).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_status_shows_clients_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = outpost_hub::config::Config::default();
    config.identity.socket = "".into();
    config.store.dir = "".into();
    config.routes.deployment_file = "".into();
    config.metrics.enabled = false;
    config.auth.allow_anonymous = true;
    config.auth.anonymous_subscribe = vec!["#".into()];
    config.admin.socket = dir.path().join("hub.sock");
    let socket = config.admin.socket.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_hub::run(config, listener, shutdown.clone()));

    let mut subscriber = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-i", "dashboard", "-q", "1", "-t", "plant/#"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let socket_for_cli = socket.clone();
    let (table, json) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let table = outpost(&socket_for_cli, &["hub", "status"]);
            let text = String::from_utf8_lossy(&table.stdout).into_owned();
            if table.status.success() && text.contains("plant/# (QoS 1)") {
                let json = outpost(&socket_for_cli, &["hub", "status", "-o", "json"]);
                return (text, serde_json::from_slice::<serde_json::Value>(&json.stdout).unwrap());
            }
            assert!(Instant::now() < deadline, "no subscriber in\n{text}{}", String::from_utf8_lossy(&table.stderr));
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    assert!(table.contains("1 connected, 1 sessions"), "{table}");
    assert!(table.contains("memory only"), "{table}");
    let row = table.lines().find(|l| l.starts_with("dashboard")).unwrap();
    for cell in ["connected", "clean", "3.1.1"] {
        assert!(row.contains(cell), "{row}");
    }
    assert_eq!(json["clients"][0]["clientId"], "dashboard", "{json}");
    assert_eq!(json["clients"][0]["subscriptions"][0]["filter"], "plant/#", "{json}");
    assert_eq!(json["store"]["durable"], false, "{json}");

    shutdown.cancel();
    let missing = outpost(&dir.path().join("nothing.sock"), &["hub", "status"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is outpost-hub running?"), "{missing:?}");
}
