//! The admin API and the metrics of a running hub, with mosquitto clients as its traffic:
//! `GetStatus` shows the sessions with their subscriptions and queues and the counters;
//! `/metrics` (read with curl) has the same figures in Prometheus' text format.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outpost_hub::config::Config;
use outpost_proto::hub::v1 as pb;
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_describe_the_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.identity.socket = "".into();
    config.store.dir = "".into();
    config.routes.deployment_file = "".into();
    config.auth.allow_anonymous = true;
    config.auth.anonymous_publish = vec!["#".into()];
    config.auth.anonymous_subscribe = vec!["#".into()];
    config.admin.socket = dir.path().join("hub.sock");
    let metrics = free_port();
    config.metrics.bind = format!("127.0.0.1:{metrics}").parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let shutdown = CancellationToken::new();
    let socket = config.admin.socket.clone();
    let hub = tokio::spawn(outpost_hub::run(config, listener, shutdown.clone()));

    // A persistent subscriber that takes three messages.
    let mut watcher = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-i", "watcher", "-c", "-q", "1", "-t", "t/#", "-C", "3"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let status = || async {
        // The hub binds its admin socket as it starts: wait for it.
        let started = Instant::now();
        let channel = loop {
            match outpost_rpc::connect(&socket).await {
                Ok(channel) => break channel,
                Err(_) if started.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the admin socket never answered: {e}"),
            }
        };
        let mut client = pb::hub_client::HubClient::new(channel);
        client.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = status().await;
        if now.clients.iter().any(|c| c.client_id == "watcher" && !c.subscriptions.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the subscriber never appeared: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 0..3 {
        let sent = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port, "-q", "1", "-t", &format!("t/{n}"), "-m", "hello"])
            .status()
            .unwrap();
        assert!(sent.success());
    }
    assert!(watcher.wait().unwrap().success());

    let now = status().await;
    let watcher = now.clients.iter().find(|c| c.client_id == "watcher").unwrap();
    assert!(!watcher.connected && watcher.persistent, "{watcher:?}");
    assert_eq!(watcher.protocol, "3.1.1");
    assert_eq!(watcher.subscriptions, [pb::Subscription { filter: "t/#".into(), qos: 1 }]);
    let counters = now.counters.unwrap();
    assert_eq!((counters.received, counters.delivered), (3, 3), "{counters:?}");
    assert!(!now.store.unwrap().durable);

    let text = tokio::task::spawn_blocking(move || {
        let out = Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{metrics}/metrics")]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap();
    for line in [
        "# TYPE outpost_hub_messages_received_total counter",
        "outpost_hub_messages_received_total 3",
        "outpost_hub_messages_delivered_total 3",
        "outpost_hub_messages_dropped_total{reason=\"queue_full\"} 0",
        "outpost_hub_connected_clients 0",
        "outpost_hub_sessions 1",
        "# TYPE outpost_hub_batch_duration_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
    }
    assert!(text.contains("outpost_hub_batch_duration_seconds_bucket{le=\"+Inf\"}"), "{text}");

    shutdown.cancel();
    hub.await.unwrap().unwrap();
    assert!(!socket.exists(), "the socket is removed at shutdown");
}
