//! outpostd when what it needs is missing: containerd not there (it waits, says so, answers
//! its API, and stops at once when told), and a service image that is not there (the service
//! is reported failed with how to build it, and retried on the backoff schedule).
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_proto::host::v1 as pb;
use outpost_proto::host::v1::host_client::HostClient;
use support::free_port;

mod support;

fn start(root: &std::path::Path, containerd: &str, namespace: &str) -> Child {
    let config = format!(
        "[device]\nid = \"d\"\nhub_hostname = \"h\"\n\
         [paths]\nstate_dir = \"{r}/state\"\nrun_dir = \"{r}/run\"\nlog_dir = \"{r}/log\"\n\
         [containerd]\nsocket = \"{containerd}\"\nnamespace = \"{namespace}\"\nsystem_namespace = \"{namespace}-system\"\n\
         [runtime]\nmode = \"container\"\nimage_dir = \"{r}/no-images\"\n\
         [watchdog]\nmetrics_bind = \"\"\n\
         [hub]\nmqtt_bind = \"127.0.0.1:{}\"\nmqtts_bind = \"127.0.0.1:{}\"\nhttps_bind = \"127.0.0.1:{}\"\nmetrics_bind = \"\"\n",
        free_port(),
        free_port(),
        free_port(),
        r = root.display(),
    );
    std::fs::write(root.join("config.toml"), config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_outpostd"))
        .arg("--config")
        .arg(root.join("config.toml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("outpostd.log")).unwrap())
        .spawn()
        .unwrap()
}

async fn services(root: &std::path::Path) -> Option<Vec<pb::Service>> {
    let channel = outpost_rpc::connect(&root.join("run/host.sock")).await.ok()?;
    let response = HostClient::new(channel).list_services(pb::ListServicesRequest {}).await.ok()?;
    Some(response.into_inner().services)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_containerd_outpostd_waits_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut outpostd = start(dir.path(), "/nonexistent/containerd.sock", "outpost-none");
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        if let Some(listed) = services(dir.path()).await {
            break listed;
        }
        assert!(Instant::now() < deadline, "the host API never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(listed.iter().all(|s| s.state() == pb::ServiceState::Unspecified), "{listed:?}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let log = std::fs::read_to_string(dir.path().join("outpostd.log")).unwrap();
    assert!(log.contains("containerd is not reachable; retrying in 5 s"), "{log}");
    assert!(cpu_ticks(outpostd.id()) < 100, "outpostd spins while waiting");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(outpostd.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopped = Instant::now();
    assert!(outpostd.wait().unwrap().success());
    assert!(stopped.elapsed() < Duration::from_secs(5), "waiting for containerd held up the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_fails_the_service_with_how_to_build_it() {
    let containerd = outpost_testkit::Containerd::start();
    let dir = tempfile::tempdir().unwrap();
    let mut outpostd = start(dir.path(), &containerd.socket().display().to_string(), containerd.namespace());
    let deadline = Instant::now() + Duration::from_secs(30);
    let identityd = loop {
        let found = services(dir.path()).await.and_then(|s| s.into_iter().find(|s| s.name == "identityd"));
        if let Some(service) = found.filter(|s| s.state() == pb::ServiceState::Failed) {
            break service;
        }
        assert!(Instant::now() < deadline, "identityd never failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        identityd.description.contains("image outpost/identityd:0.1.0 is not in containerd namespace"),
        "{}",
        identityd.description
    );
    assert!(identityd.description.contains("cargo xtask images"), "{}", identityd.description);
    assert!(identityd.description.contains("retrying in"), "{}", identityd.description);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(outpostd.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(outpostd.wait().unwrap().success());
}
