//! outpostd running the real services as child processes (with a private containerd for the
//! agent): start order, the watchdog's escalation on a hung service, restarts after
//! crashes, operators' stop/start, image replacement that rolls back, and a clean stop.
//! Needs the workspace's binaries built (`cargo build --workspace --bins`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use outpost_proto::host::v1 as pb;
use outpost_proto::host::v1::host_client::HostClient;
use outpost_testkit::Containerd;
use support::{bin_dir, free_port};

mod support;

struct Device {
    dir: tempfile::TempDir,
    outpostd: Child,
    metrics_port: u16,
    _containerd: Containerd,
}

impl Device {
    fn start(extra: &str) -> Device {
        let containerd = Containerd::start();
        let dir = tempfile::Builder::new().prefix("op").tempdir_in("/tmp").unwrap();
        let root = dir.path();
        let metrics_port = free_port();
        let config = format!(
            "[device]\nid = \"proc-device\"\nhub_hostname = \"hub.test\"\nkey = \"c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==\"\n\
             [paths]\nstate_dir = \"{r}/state\"\nrun_dir = \"{r}/run\"\nlog_dir = \"{r}/log\"\n\
             [containerd]\nsocket = \"{sock}\"\nnamespace = \"{ns}\"\n\
             [runtime]\nmode = \"process\"\nbin_dir = \"{bin}\"\nstop_grace_secs = 2\nmodule_stop_grace_secs = 2\n\
             [watchdog]\ninterval_secs = 1\ntimeout_secs = 1\nfailures = 2\nmax_backoff_secs = 4\nmetrics_bind = \"127.0.0.1:{metrics_port}\"\n\
             [hub]\nmqtt_bind = \"127.0.0.1:{mqtt}\"\nmqtts_bind = \"127.0.0.1:{mqtts}\"\nhttps_bind = \"127.0.0.1:{https}\"\nmetrics_bind = \"\"\n{extra}",
            r = root.display(),
            sock = containerd.socket().display(),
            ns = containerd.namespace(),
            bin = bin_dir().display(),
            mqtt = free_port(),
            mqtts = free_port(),
            https = free_port(),
        );
        std::fs::write(root.join("config.toml"), config).unwrap();
        let outpostd = Command::new(env!("CARGO_BIN_EXE_outpostd"))
            .arg("--config")
            .arg(root.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("outpostd.log")).unwrap())
            .spawn()
            .unwrap();
        Device { dir, outpostd, metrics_port, _containerd: containerd }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/host.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("outpostd.log")).unwrap_or_default()
    }

    async fn client(&self) -> HostClient<tonic::transport::Channel> {
        for _ in 0..100 {
            if let Ok(channel) = outpost_rpc::connect(&self.socket()).await {
                return HostClient::new(channel);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("outpostd's socket never answered:\n{}", self.log());
    }

    async fn services(&self) -> Vec<pb::Service> {
        self.client().await.list_services(pb::ListServicesRequest {}).await.unwrap().into_inner().services
    }

    async fn service(&self, name: &str) -> pb::Service {
        self.services().await.into_iter().find(|s| s.name == name).unwrap()
    }

    /// Waits until `condition` holds for the services, or fails showing them and the log.
    async fn until(&self, what: &str, limit: Duration, condition: impl Fn(&[pb::Service]) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let services = self.services().await;
            if condition(&services) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{what} did not happen within {limit:?}: {services:#?}\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn until_running(&self, name: &str, other_than_pid: u32) -> pb::Service {
        self.until(&format!("{name} running (not pid {other_than_pid})"), Duration::from_secs(30), |services| {
            services.iter().any(|s| s.name == name && s.state() == pb::ServiceState::Running && s.pid != other_than_pid)
        })
        .await;
        self.service(name).await
    }

    fn metrics(&self) -> String {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{}/metrics", self.metrics_port)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.outpostd.kill();
        let _ = self.outpostd.wait();
        // Children run in their own process groups: stop what a failed test left.
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("state/host/pids")) {
            for entry in entries.flatten() {
                if let Some(pid) =
                    std::fs::read_to_string(entry.path()).ok().and_then(|t| t.lines().next()?.parse::<i32>().ok())
                {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), signal).unwrap();
}

fn all_running(services: &[pb::Service]) -> bool {
    services.len() == 4 && services.iter().all(|s| s.state() == pb::ServiceState::Running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outpostd_supervises_the_services_and_the_watchdog_escalates() {
    let device = Device::start("");
    device.until("every service serving", Duration::from_secs(60), all_running).await;
    let services = device.services().await;
    let names: Vec<_> = services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["identityd", "agent", "hub", "watchdog"]);
    let started: Vec<i64> = services.iter().map(|s| s.started_at_ms).collect();
    assert!(started.windows(2).all(|w| w[0] <= w[1]), "started in order: {started:?}");
    let info = device.client().await.get_system_info(pb::GetSystemInfoRequest {}).await.unwrap().into_inner();
    assert_eq!((info.device_id.as_str(), info.mode.as_str()), ("proc-device", "process"));

    // A hung hub (SIGSTOP: its socket accepts, nothing answers) fails its health checks; the
    // watchdog asks outpostd to restart it, which kills the hung process after the grace.
    let hub = device.service("hub").await;
    signal(hub.pid, nix::sys::signal::Signal::SIGSTOP);
    let restarted = device.until_running("hub", hub.pid).await;
    assert!(!alive(hub.pid), "the hung hub is gone");
    assert!(restarted.restart_count >= 1);
    let metrics = device.metrics();
    assert!(
        metrics.contains("outpost_watchdog_actions_total{service=\"hub\",action=\"restart\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("outpost_watchdog_checks_total{service=\"hub\",result=\"failed\"}"), "{metrics}");

    // A hub that hangs again after every start is escalated to recreation.
    let recreate = "outpost_watchdog_actions_total{service=\"hub\",action=\"recreate\",outcome=\"ok\"}";
    let mut hung = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while !device.metrics().contains(recreate) {
        assert!(std::time::Instant::now() < deadline, "no recreation:\n{}\n{}", device.metrics(), device.log());
        let pid = device.service("hub").await.pid;
        if pid != 0 && hung.insert(pid) {
            signal(pid, nix::sys::signal::Signal::SIGSTOP);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (The last one stopped may be the recreated one: the watchdog deals with it in turn.)
    device
        .until("a hub that was not hung serving", Duration::from_secs(45), |services| {
            services.iter().any(|s| s.name == "hub" && s.state() == pb::ServiceState::Running && !hung.contains(&s.pid))
        })
        .await;

    // A crashed agent is started again after its cool-off, as is a crashed watchdog.
    let agent = device.service("agent").await;
    signal(agent.pid, nix::sys::signal::Signal::SIGKILL);
    let agent_after = device.until_running("agent", agent.pid).await;
    assert_eq!(agent_after.last_exit_code, 137);
    let watchdog = device.service("watchdog").await;
    signal(watchdog.pid, nix::sys::signal::Signal::SIGKILL);
    device.until_running("watchdog", watchdog.pid).await;

    // Operators stop and start a service; a stopped service stays stopped.
    let mut client = device.client().await;
    let stopped = client.stop_service(pb::ServiceRequest { name: "hub".into() }).await.unwrap().into_inner();
    assert_eq!(stopped.state(), pb::ServiceState::Stopped);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        device.service("hub").await.state(),
        pb::ServiceState::Stopped,
        "the watchdog leaves a stopped service alone"
    );
    client.start_service(pb::ServiceRequest { name: "hub".into() }).await.unwrap();
    device.until_running("hub", 0).await;
    let bad = client.stop_service(pb::ServiceRequest { name: "nope".into() }).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("identityd, agent, hub and watchdog"), "{}", bad.message());
    let recreated = client
        .restart_service(pb::RestartServiceRequest {
            name: "identityd".into(),
            recreate: true,
            reason: "test".into(),
            unless_stopped: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recreated.name, "identityd");
    device.until_running("identityd", 0).await;

    // Logs: the hub's own output, through outpostd.
    let mut logs = client
        .stream_logs(pb::StreamLogsRequest { name: "hub".into(), tail: 0, follow: false })
        .await
        .unwrap()
        .into_inner();
    let mut text = String::new();
    while let Some(line) = logs.message().await.unwrap() {
        text.push_str(&line.line);
        text.push('\n');
    }
    assert!(text.contains("starting outpost-hub"), "{text}");

    // The CLI: status as JSON, logs, restart, and `config apply` after an edit.
    let cli = |args: &[&str]| {
        let out = Command::new(bin_dir().join("outpost"))
            .arg("--host-socket")
            .arg(device.socket())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&["system", "status", "-o", "json"]);
    assert!(ok, "{out}{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["deviceId"], "proc-device");
    assert!(status["services"].as_array().unwrap().iter().all(|s| s["state"] == "running"), "{out}");
    let (ok, out, _) = cli(&["system", "logs", "hub", "--tail", "3"]);
    assert!(ok && out.lines().count() == 3, "{out}");
    let (ok, out, err) = cli(&["system", "restart", "watchdog"]);
    assert!(ok && out.contains("SERVICE") && out.contains("watchdog"), "{out}{err}");
    let config = device.dir.path().join("config.toml");
    let run = device.dir.path().join("run");
    let sockets = [
        "--identity-socket".to_owned(),
        run.join("identity.sock").display().to_string(),
        "--agent-socket".to_owned(),
        run.join("agent.sock").display().to_string(),
        "--hub-socket".to_owned(),
        run.join("hub.sock").display().to_string(),
    ];
    let with_sockets = |args: &[&str]| {
        let mut all: Vec<&str> = sockets.iter().map(String::as_str).collect();
        all.extend(args);
        cli(&all)
    };
    device.until("every service serving again", Duration::from_secs(30), all_running).await;
    let (ok, out, err) = with_sockets(&["check", "-c", config.to_str().unwrap(), "-o", "json"]);
    let checks: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    let status = |id: &str| {
        checks.as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()["status"].as_str().unwrap().to_owned()
    };
    assert!(ok, "{checks:#}");
    for id in [
        "device-config",
        "config-applied",
        "services",
        "identity-socket",
        "agent-socket",
        "containerd",
        "hub-ports",
        "log-rotation",
    ] {
        assert_eq!(status(id), "ok", "{id}: {checks:#}");
    }
    assert_eq!(status("cloud"), "warning", "no cloud configured: {checks:#}");
    let bundle = device.dir.path().join("bundle.tar.gz");
    let (ok, out, err) =
        with_sockets(&["support-bundle", "-c", config.to_str().unwrap(), "-O", bundle.to_str().unwrap(), "-q"]);
    assert!(ok && out.contains("wrote"), "{out}{err}");
    let listing = Command::new("tar").arg("tzf").arg(&bundle).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for part in [
        "check.json",
        "versions.json",
        "services.json",
        "modules.json",
        "config/config.toml",
        "config/identityd.toml",
        "logs/hub.log",
    ] {
        assert!(listing.lines().any(|l| l.ends_with(part)), "{part} missing: {listing}");
    }
    let unpacked = device.dir.path().join("bundle");
    std::fs::create_dir_all(&unpacked).unwrap();
    assert!(Command::new("tar").arg("xzf").arg(&bundle).arg("-C").arg(&unpacked).status().unwrap().success());
    let everything =
        Command::new("grep").args(["-r", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ"]).arg(&unpacked).output().unwrap();
    assert!(
        everything.stdout.is_empty(),
        "the device key is in the bundle: {}",
        String::from_utf8_lossy(&everything.stdout)
    );
    let (ok, out, err) = cli(&["config", "apply", "-c", config.to_str().unwrap()]);
    assert!(ok && out.contains("no service's configuration changed"), "{out}{err}");
    let edited = std::fs::read_to_string(&config).unwrap() + "[services.hub.mqtt]\nmax_inflight = 50\n";
    std::fs::write(&config, edited).unwrap();
    let hub_before = device.service("hub").await;
    let (ok, out, err) = cli(&["config", "apply", "-c", config.to_str().unwrap(), "-o", "json"]);
    assert!(ok, "{out}{err}");
    let applied: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(applied["changed"], serde_json::json!(["hub"]));
    assert_eq!(applied["restarted"], serde_json::json!(["hub"]));
    assert_ne!(device.until_running("hub", hub_before.pid).await.pid, hub_before.pid);
    std::fs::write(&config, "[device]\nid = \"proc-device\"\nhub_hostname = \"\"\n").unwrap();
    let (ok, _, err) = cli(&["config", "apply", "-c", config.to_str().unwrap()]);
    assert!(!ok && err.contains("device.hub_hostname"), "{err}");
    let (ok, _, err) = cli(&["system", "stop", "nope"]);
    assert!(!ok && err.contains("unknown service"), "{err}");

    // SIGTERM stops everything and outpostd exits 0.
    let pids: Vec<u32> = device.services().await.iter().map(|s| s.pid).collect();
    let mut device = device;
    signal(device.outpostd.id(), nix::sys::signal::Signal::SIGTERM);
    let status = device.outpostd.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", device.log());
    for pid in pids {
        assert!(!alive(pid), "service {pid} still runs after outpostd stopped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_that_does_not_serve_is_rolled_back() {
    let device = Device::start("");
    device.until("every service serving", Duration::from_secs(60), all_running).await;
    let mut client = device.client().await;
    let hub = device.service("hub").await;
    assert_eq!(hub.image, "outpost-hub");

    // A program that exits at once.
    let err = client
        .update_service(pb::UpdateServiceRequest {
            name: "hub".into(),
            image: "/bin/false".into(),
            healthy_within_secs: 10,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Aborted);
    assert!(
        err.message().contains("/bin/false failed: it exited with 1; rolled back to outpost-hub"),
        "{}",
        err.message()
    );
    let back = device.until_running("hub", hub.pid).await;
    assert_eq!(back.image, "outpost-hub");

    // A program that runs but never serves.
    let silent = device.dir.path().join("silent-hub");
    std::fs::write(&silent, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&silent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = client
        .update_service(pb::UpdateServiceRequest {
            name: "hub".into(),
            image: silent.display().to_string(),
            healthy_within_secs: 2,
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("did not report healthy within 2 s"), "{}", err.message());
    assert_eq!(device.until_running("hub", back.pid).await.image, "outpost-hub");

    // Missing programs and services that cannot be replaced are refused before anything stops.
    let err = client
        .update_service(pb::UpdateServiceRequest {
            name: "hub".into(),
            image: "/nonexistent/hub".into(),
            healthy_within_secs: 2,
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("is not an executable file"), "{}", err.message());
    let err = client
        .update_service(pb::UpdateServiceRequest {
            name: "identityd".into(),
            image: "x".into(),
            healthy_within_secs: 2,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // A working replacement stays, and outpostd remembers it across its own restart.
    let copy = device.dir.path().join("outpost-hub-next");
    std::fs::copy(bin_dir().join("outpost-hub"), &copy).unwrap();
    let done = client
        .update_service(pb::UpdateServiceRequest {
            name: "hub".into(),
            image: copy.display().to_string(),
            healthy_within_secs: 30,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.image.as_str(), done.previous_image.as_str()), (copy.to_str().unwrap(), "outpost-hub"));
    assert_eq!(device.service("hub").await.image, copy.display().to_string());
    let journal = std::fs::read_to_string(device.dir.path().join("state/host/images.json")).unwrap();
    assert!(journal.contains("outpost-hub-next"), "{journal}");
}

#[test]
fn a_broken_configuration_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[device]\nid = \"d\"\nhub_hostname = \"h\"\n[watchdog]\nfailures = \"three\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outpostd")).arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("watchdog.failures"), "{stderr}");

    std::fs::write(&path, "[device]\nid = \"d\"\nhub_hostname = \"h\"\n[cloud]\nurl = \"mqtt://x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outpostd")).arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cloud.url") && stderr.contains("amqp://"), "{stderr}");
}
