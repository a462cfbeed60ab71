//! Shared test environment: a private containerd with a busybox image, an in-process
//! identityd, and a manifest builder.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use outpost_agent::identity::IdentityService;
use outpost_agent::logs::{ModuleLogs, Rotation};
use outpost_agent::module_container::DeviceContext;
use outpost_agent::pulls::Pulls;
use outpost_agent::reconcile::Reconciler;
use outpost_agent::restart::RestartSettings;
use outpost_core::manifest::{DeploymentManifest, ModuleSpec};
use outpost_core::{DeviceId, ModuleId};
use outpost_runtime::container::TaskState;
use outpost_runtime::containerd::Containerd as Client;
use outpost_runtime::oci::{BuiltImage, ImageBuilder, write_archive};
use outpost_runtime::registry::RegistrySettings;
use outpost_testkit::Containerd;
use tokio_util::sync::CancellationToken;

pub const IMAGE: &str = "outpost.test/busybox:1";

pub struct Setup {
    pub containerd: Containerd,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
    pub client: Client,
    pub identity_socket: std::path::PathBuf,
    pub workload_dir: std::path::PathBuf,
    pub reconciler: Reconciler,
    pub logs: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A busybox image running `sh -c`, with `/etc/motd` holding `motd` (to tell images apart).
pub fn busybox(motd: &str) -> BuiltImage {
    ImageBuilder::new()
        .file("/bin/busybox", Path::new("/bin/busybox"))
        .unwrap()
        .symlink("/bin/sh", "/bin/busybox")
        .bytes("/etc/motd", motd.as_bytes().to_vec(), 0o644)
        .entrypoint(&["/bin/sh", "-c"])
        .build()
        .unwrap()
}

pub async fn setup() -> Setup {
    let containerd = Containerd::start();
    let client = Client::connect(&containerd.socket(), containerd.namespace()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = busybox("");
    let archive = dir.path().join("busybox.tar");
    write_archive(&image, IMAGE, &archive).unwrap();
    client.import_archive(&archive, None).await.unwrap();

    let config = outpost_identity::config::Config::under(dir.path(), DeviceId::new("dev1").unwrap(), "hub.example");
    let service = outpost_identity::open(&config).unwrap();
    let listener = outpost_rpc::bind(&config.paths.socket, 0o660).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_identity::run_owned(config.clone(), service, listener, shutdown.clone()));

    let device = DeviceContext {
        device_id: DeviceId::new("dev1").unwrap(),
        hub_hostname: "hub.example".into(),
        gateway_hostname: "edge.local".into(),
        workload_dir: config.paths.workload_dir.clone(),
        hosts_file: dir.path().join("agent/hosts"),
        api_version: "2022-08-03".into(),
    };
    let logs = dir.path().join("logs");
    let settings = RestartSettings::default();
    let pulls = Pulls::new(
        std::sync::Arc::new(client.clone()),
        RegistrySettings::default(),
        settings.cool_off_unit,
        settings.max_cool_off,
        Default::default(),
    );
    let module_logs = ModuleLogs {
        dir: logs.clone(),
        logger: env!("CARGO_BIN_EXE_outpost-logger").into(),
        rotation: Rotation::default(),
    };
    let reconciler = Reconciler::new(
        std::sync::Arc::new(client.clone()),
        std::sync::Arc::new(IdentityService::new(&config.paths.socket)),
        device,
        module_logs,
        settings,
        pulls,
    );
    Setup {
        containerd,
        dir,
        shutdown,
        client,
        identity_socket: config.paths.socket,
        workload_dir: config.paths.workload_dir,
        reconciler,
        logs,
    }
}

/// A manifest with modules `(name, startupOrder, script, restartPolicy)`.
pub fn manifest_json(modules: &[(&str, u32, &str, &str)]) -> String {
    let entries: Vec<String> = modules
        .iter()
        .map(|(name, order, script, policy)| {
            let options = serde_json::json!({ "Cmd": [script] }).to_string();
            format!(
                r#""{name}": {{"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "{policy}",
                   "startupOrder": {order}, "settings": {{"image": "{IMAGE}", "createOptions": {options}}}}}"#,
                options = serde_json::to_string(&options).unwrap()
            )
        })
        .collect();
    let text = format!(
        r#"{{"modulesContent": {{
            "$edgeAgent": {{"properties.desired": {{"schemaVersion": "1.1",
                "runtime": {{"type": "docker", "settings": {{}}}},
                "systemModules": {{
                    "edgeAgent": {{"type": "docker", "settings": {{"image": "outpost/agent:1"}}}},
                    "edgeHub": {{"type": "docker", "status": "running", "restartPolicy": "always", "settings": {{"image": "outpost/hub:1"}}}}}},
                "modules": {{ {} }} }}}},
            "$edgeHub": {{"properties.desired": {{"schemaVersion": "1.1", "routes": {{}}}}}}}}}}"#,
        entries.join(",")
    );
    text
}

/// The modules of [`manifest_json`].
pub fn manifest(modules: &[(&str, u32, &str, &str)]) -> BTreeMap<ModuleId, ModuleSpec> {
    DeploymentManifest::parse(&manifest_json(modules)).unwrap().agent.modules
}

pub fn id(name: &str) -> ModuleId {
    ModuleId::new(name).unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

pub async fn pid(client: &Client, module: &str) -> Option<u32> {
    match client.state(module).await.unwrap() {
        TaskState::Running { pid } => Some(pid),
        _ => None,
    }
}
