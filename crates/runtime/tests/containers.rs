//! Containers from our own images on a private containerd: output, exit codes, stop with
//! grace period and SIGKILL, host networking, labels, removal.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use outpost_runtime::container::{ContainerSpec, TaskState};
use outpost_runtime::containerd::Containerd as Client;
use outpost_runtime::oci::{ImageBuilder, write_archive};
use outpost_testkit::{Containerd, eventually};

const IMAGE: &str = "outpost.test/busybox:1";

async fn setup() -> (Containerd, Client, tempfile::TempDir) {
    let daemon = Containerd::start();
    let client = Client::connect(&daemon.socket(), daemon.namespace()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = ImageBuilder::new()
        .file("/bin/busybox", Path::new("/bin/busybox"))
        .unwrap()
        .symlink("/bin/sh", "/bin/busybox")
        .entrypoint(&["/bin/sh", "-c"])
        .cmd(&["echo default command"])
        .env("GREETING", "from-image")
        .build()
        .unwrap();
    let archive = dir.path().join("busybox.tar");
    write_archive(&image, IMAGE, &archive).unwrap();
    client.import_archive(&archive, None).await.unwrap();
    (daemon, client, dir)
}

fn spec(id: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        id: id.into(),
        image: IMAGE.into(),
        cmd: Some(vec![script.into()]),
        labels: BTreeMap::from([("io.outpost.owner".into(), "test".into())]),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_container_runs_its_command_and_reports_the_exit_code() {
    let (_daemon, client, dir) = setup().await;
    // The pause before exiting sidesteps the shim's file-logging race (see `start`), which a
    // binary logger will remove.
    let mut s = spec("hello", "echo $GREETING $EXTRA; echo to-stderr >&2; sleep 0.3; exit 3");
    s.env.insert("EXTRA".into(), "and-spec".into());
    client.create_container(&s).await.unwrap();
    assert_eq!(client.state("hello").await.unwrap(), TaskState::NoTask);
    let log = dir.path().join("logs/hello.log");
    let waiter = client.clone();
    client.start("hello", &log).await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(20), waiter.wait("hello")).await.unwrap().unwrap();
    assert_eq!(code, 3);
    assert!(
        matches!(client.state("hello").await.unwrap(), TaskState::Stopped { exit_code: 3, exited_at } if exited_at > 1_700_000_000)
    );
    // The shim copies output to the file asynchronously: it may land just after the exit.
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually("both streams in the log", Duration::from_secs(5), || {
        read().contains("from-image and-spec") && read().contains("to-stderr")
    });

    // Restarting appends to the same log.
    client.start("hello", &log).await.unwrap();
    assert_eq!(client.wait("hello").await.unwrap(), 3);
    eventually("second run's output", Duration::from_secs(5), || read().matches("from-image").count() == 2);

    assert_eq!(client.list("io.outpost.owner", "test").await.unwrap().len(), 1);
    client.remove("hello").await.unwrap();
    assert!(client.list("io.outpost.owner", "test").await.unwrap().is_empty());
    assert!(matches!(client.remove("hello").await, Err(outpost_runtime::RuntimeError::NotFound(_))));
}

#[tokio::test]
async fn stop_sends_sigterm_then_sigkill_after_the_grace_period() {
    let (_daemon, client, dir) = setup().await;
    client
        .create_container(&spec("polite", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"))
        .await
        .unwrap();
    client
        .create_container(&spec("stubborn", "trap '' TERM; echo ready; while true; do sleep 0.1; done"))
        .await
        .unwrap();
    client.start("polite", &dir.path().join("polite.log")).await.unwrap();
    client.start("stubborn", &dir.path().join("stubborn.log")).await.unwrap();
    assert!(matches!(client.state("polite").await.unwrap(), TaskState::Running { pid } if pid > 0));
    for name in ["polite", "stubborn"] {
        let log = dir.path().join(format!("{name}.log"));
        eventually("the trap to be installed", Duration::from_secs(10), || {
            std::fs::read_to_string(&log).unwrap_or_default().contains("ready")
        });
    }

    // A running task reports its usage; a stopped one has none.
    let stats = client.stats("polite").await.unwrap().expect("a running task has stats");
    assert!(stats.memory_bytes > 0 && stats.pids >= 1, "{stats:?}");

    assert_eq!(client.stop("polite", Duration::from_secs(10)).await.unwrap(), Some(0));
    assert_eq!(client.stats("polite").await.unwrap(), None);
    assert_eq!(client.stop("stubborn", Duration::from_millis(500)).await.unwrap(), Some(137), "128 + SIGKILL");
    assert_eq!(client.state("stubborn").await.unwrap(), TaskState::NoTask);
    assert_eq!(client.stop("stubborn", Duration::from_secs(1)).await.unwrap(), None, "stopping twice is harmless");
}

#[tokio::test]
async fn host_networking_and_bind_mounts_reach_the_host() {
    let (_daemon, client, dir) = setup().await;
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("in.txt"), "from-host").unwrap();
    let mut s = spec("net", "cat /data/in.txt > /data/out.txt; ls /sys/class/net > /data/ifaces.txt");
    s.host_network = true;
    s.mounts.push(outpost_runtime::container::BindMount {
        source: shared.clone(),
        target: "/data".into(),
        read_only: false,
    });
    client.create_container(&s).await.unwrap();
    client.start("net", &dir.path().join("net.log")).await.unwrap();
    assert_eq!(
        client.wait("net").await.unwrap(),
        0,
        "{}",
        std::fs::read_to_string(dir.path().join("net.log")).unwrap_or_default()
    );
    assert_eq!(std::fs::read_to_string(shared.join("out.txt")).unwrap(), "from-host");
    let host_ifaces: Vec<String> =
        std::fs::read_dir("/sys/class/net").unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let seen = std::fs::read_to_string(shared.join("ifaces.txt")).unwrap();
    assert!(host_ifaces.iter().all(|i| seen.contains(i.as_str())), "host interfaces {host_ifaces:?} vs {seen}");
}

#[tokio::test]
async fn missing_images_are_reported_clearly() {
    let (_daemon, client, _dir) = setup().await;
    let mut s = spec("ghost", "true");
    s.image = "outpost.test/missing:1".into();
    let err = client.create_container(&s).await.unwrap_err().to_string();
    assert!(err.contains("outpost.test/missing:1 is not present"), "{err}");
}
