//! outpostd running the services as containers of Outpost's images on a private containerd:
//! images imported from the image directory, the runtime self-update driven by a deployment
//! — a broken hub image rolled back and reported by the agent, a good one kept — and a clean
//! stop. Needs root, containerd and runc, and the workspace's binaries built.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use outpost_proto::agent::v1 as agent_pb;
use outpost_proto::agent::v1::agent_client::AgentClient;
use outpost_proto::host::v1 as pb;
use outpost_proto::host::v1::host_client::HostClient;
use outpost_runtime::oci::{ImageBuilder, write_archive};
use outpost_testkit::Containerd;
use support::{bin_dir, free_port};

mod support;

/// Writes `outpost/{name}:{tag}` running `program` to `dir`.
fn image(dir: &Path, name: &str, tag: &str, program: &Path) {
    let in_image = format!("/usr/local/bin/{name}");
    let built =
        ImageBuilder::new().program(&in_image, program).unwrap().entrypoint(&[&in_image]).dir("/tmp").build().unwrap();
    write_archive(&built, &format!("outpost/{name}:{tag}"), &dir.join(format!("{name}-{tag}.tar"))).unwrap();
}

const MANIFEST: &str = r#"{"modulesContent": {
    "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1",
        "runtime": {"type": "docker", "settings": {}},
        "systemModules": {
            "edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:0.1.0"}},
            "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "HUB_IMAGE"}}},
        "modules": {}}},
    "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}}}}}"#;

struct Device {
    dir: tempfile::TempDir,
    outpostd: Child,
    _containerd: Containerd,
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.outpostd.kill();
        let _ = self.outpostd.wait();
    }
}

impl Device {
    fn log(&self) -> String {
        let outpostd = std::fs::read_to_string(self.dir.path().join("outpostd.log")).unwrap_or_default();
        let agent = std::fs::read_to_string(self.dir.path().join("log/agent.log")).unwrap_or_default();
        format!("outpostd:\n{outpostd}\nagent:\n{agent}")
    }

    async fn host(&self) -> HostClient<tonic::transport::Channel> {
        for _ in 0..100 {
            if let Ok(channel) = outpost_rpc::connect(&self.dir.path().join("run/host.sock")).await {
                return HostClient::new(channel);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("outpostd never answered:\n{}", self.log());
    }

    async fn hub(&self) -> pb::Service {
        let services = self.host().await.list_services(pb::ListServicesRequest {}).await.unwrap().into_inner().services;
        services.into_iter().find(|s| s.name == "hub").unwrap()
    }

    async fn reported(&self) -> serde_json::Value {
        let channel = outpost_rpc::connect(&self.dir.path().join("run/agent.sock")).await.unwrap();
        let response =
            AgentClient::new(channel).get_deployment(agent_pb::GetDeploymentRequest {}).await.unwrap().into_inner();
        serde_json::from_str(&response.reported_properties_json).unwrap()
    }

    async fn until<F: std::future::Future<Output = bool>>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut() -> F,
    ) {
        let deadline = tokio::time::Instant::now() + limit;
        while !check().await {
            assert!(tokio::time::Instant::now() < deadline, "{what} did not happen within {limit:?}\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_run_as_containers_and_a_broken_hub_image_is_rolled_back() {
    let containerd = Containerd::start();
    let dir = tempfile::Builder::new().prefix("oc").tempdir_in("/tmp").unwrap();
    let root = dir.path();
    let bin = bin_dir();
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for (name, program) in [
        ("identityd", "outpost-identityd"),
        ("agent", "outpost-agent"),
        ("hub", "outpost-hub"),
        ("watchdog", "outpost-watchdog"),
    ] {
        image(&images, name, "0.1.0", &bin.join(program));
    }
    image(&images, "hub", "next", &bin.join("outpost-hub"));
    image(&images, "hub", "broken", Path::new("/bin/false"));

    let config = format!(
        "[device]\nid = \"ctr-device\"\nhub_hostname = \"hub.test\"\nkey = \"c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==\"\n\
         [paths]\nstate_dir = \"{r}/state\"\nrun_dir = \"{r}/run\"\nlog_dir = \"{r}/log\"\n\
         [containerd]\nsocket = \"{sock}\"\nnamespace = \"{ns}\"\nsystem_namespace = \"{ns}-system\"\n\
         [runtime]\nmode = \"container\"\nbin_dir = \"{bin}\"\nimage_dir = \"{images}\"\nstop_grace_secs = 3\n\
         update_healthy_within_secs = 20\n\
         [watchdog]\ninterval_secs = 2\ntimeout_secs = 1\nfailures = 3\nmetrics_bind = \"\"\n\
         [hub]\nmqtt_bind = \"127.0.0.1:{mqtt}\"\nmqtts_bind = \"127.0.0.1:{mqtts}\"\nhttps_bind = \"127.0.0.1:{https}\"\nmetrics_bind = \"\"\n",
        r = root.display(),
        sock = containerd.socket().display(),
        ns = containerd.namespace(),
        bin = bin.display(),
        images = images.display(),
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
    let mut device = Device { dir, outpostd, _containerd: containerd };

    device
        .until("every service serving as a container", Duration::from_secs(120), || async {
            let services =
                device.host().await.list_services(pb::ListServicesRequest {}).await.unwrap().into_inner().services;
            services.len() == 4 && services.iter().all(|s| s.state() == pb::ServiceState::Running)
        })
        .await;
    let hub = device.hub().await;
    assert_eq!(hub.image, "outpost/hub:0.1.0");
    // The hub runs in a container: a mount namespace of its own.
    let namespace = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_ne!(namespace(&hub.pid.to_string()), namespace("self"), "the hub is not containerised");

    // A deployment naming a broken hub image: the agent asks outpostd to replace the hub,
    // outpostd puts the previous image back, and the agent reports the failure.
    let channel = outpost_rpc::connect(&device.dir.path().join("run/agent.sock")).await.unwrap();
    let mut agent = AgentClient::new(channel);
    let manifest = MANIFEST.replace("HUB_IMAGE", "outpost/hub:broken");
    agent.apply_deployment(agent_pb::ApplyDeploymentRequest { manifest_json: manifest }).await.unwrap();
    device
        .until("the rollback reported", Duration::from_secs(90), || async {
            device.reported().await["lastDesiredStatus"]["code"] == 500
        })
        .await;
    let reported = device.reported().await;
    let description = reported["lastDesiredStatus"]["description"].as_str().unwrap().to_owned();
    assert!(
        description
            .starts_with("edgeHub: outpost/hub:broken failed: it exited with 1; rolled back to outpost/hub:0.1.0"),
        "{description}"
    );
    assert_eq!(reported["systemModules"]["edgeHub"]["settings"]["image"], "outpost/hub:0.1.0");
    assert_eq!(reported["systemModules"]["edgeHub"]["lastUpdateFailure"]["image"], "outpost/hub:broken");
    device
        .until("the previous hub serving again", Duration::from_secs(60), || async {
            let hub = device.hub().await;
            hub.state() == pb::ServiceState::Running && hub.image == "outpost/hub:0.1.0"
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(device.hub().await.failed_update_image, "outpost/hub:broken", "not retried");

    // A good image is kept.
    let manifest = MANIFEST.replace("HUB_IMAGE", "outpost/hub:next");
    agent.apply_deployment(agent_pb::ApplyDeploymentRequest { manifest_json: manifest }).await.unwrap();
    device
        .until("the hub replaced", Duration::from_secs(90), || async {
            let hub = device.hub().await;
            hub.state() == pb::ServiceState::Running && hub.image == "outpost/hub:next"
        })
        .await;
    device
        .until("success reported", Duration::from_secs(30), || async {
            let reported = device.reported().await;
            reported["lastDesiredStatus"]["code"] == 200
                && reported["systemModules"]["edgeHub"]["settings"]["image"] == "outpost/hub:next"
        })
        .await;

    // SIGTERM: every service's task stops, outpostd exits 0.
    let pids: Vec<u32> = device
        .host()
        .await
        .list_services(pb::ListServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services
        .iter()
        .map(|s| s.pid)
        .collect();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(device.outpostd.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = device.outpostd.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", device.log());
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{pid} still runs");
    }
}
