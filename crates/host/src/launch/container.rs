//! Services as containers (`[runtime] mode = "container"`): one container per service in the
//! system namespace, from Outpost's own image, on the host's network, with the device's
//! state, socket and log directories bind-mounted at the same paths (so the configuration
//! outpostd writes is valid inside and out). Missing images are imported from the OCI
//! archives in `[runtime] image_dir`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use outpost_runtime::container::{BindMount, ContainerSpec, Device, Output, TaskState};
use outpost_runtime::containerd::Containerd;

use super::{Instance, LaunchError, Launcher};
use crate::config::{Config, KeyStoreKind};
use crate::services::ServiceName;

/// Label naming the service a container runs.
pub const LABEL_SERVICE: &str = "io.outpost.service";

/// Starts services as containerd containers.
#[derive(Debug)]
pub struct ContainerLauncher {
    runtime: Containerd,
    config: Config,
    logger: PathBuf,
}

impl ContainerLauncher {
    /// Uses `runtime` (connected to the system namespace). `logger` is outpost-logger on the
    /// host: containerd's shim runs it for modules' output, and the agent checks it exists.
    pub fn new(runtime: Containerd, config: Config, logger: PathBuf) -> Self {
        Self { runtime, config, logger }
    }

    fn container_id(service: ServiceName) -> String {
        format!("outpost-{service}")
    }

    async fn import_archives(&self) -> Result<usize, LaunchError> {
        let dir = &self.config.runtime.image_dir;
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
        let mut imported = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "tar") {
                match self.runtime.import_archive(&path, None).await {
                    Ok(image) => {
                        tracing::info!(archive = %path.display(), image = %image.name, "imported");
                        imported += 1;
                    }
                    Err(e) => tracing::warn!(archive = %path.display(), error = %e, "cannot import"),
                }
            }
        }
        Ok(imported)
    }

    fn spec(&self, service: ServiceName, image: &str) -> ContainerSpec {
        let c = &self.config;
        let paths = &c.paths;
        let rw =
            |path: &Path| BindMount { source: path.to_owned(), target: path.display().to_string(), read_only: false };
        let ro =
            |path: &Path| BindMount { source: path.to_owned(), target: path.display().to_string(), read_only: true };
        let mut mounts = vec![rw(&paths.run_dir), rw(&paths.log_dir), ro(Path::new("/etc/resolv.conf"))];
        let state = match service {
            ServiceName::Identityd => paths.state_dir.join("identity"),
            ServiceName::Agent => paths.state_dir.join("agent"),
            ServiceName::Hub => paths.state_dir.join("hub"),
            ServiceName::Watchdog => paths.host_dir().join("watchdog"),
        };
        mounts.push(rw(&state));
        mounts.push(ro(&paths.host_dir().join("config")));
        let mut devices = Vec::new();
        match service {
            ServiceName::Identityd => {
                if let Some(file) = &c.device.key_file {
                    mounts.push(ro(file));
                }
                if c.key_store.kind == KeyStoreKind::Tpm
                    && let Some(node) = c.key_store.tcti.strip_prefix("device:")
                {
                    devices.push(Device { host: node.into(), container: node.into(), permissions: "rw".into() });
                }
            }
            ServiceName::Agent => {
                mounts.push(rw(&c.containerd.socket));
                mounts.push(ro(&self.logger));
                // `outpost import` of the archives shipped with the device names paths here.
                if c.runtime.image_dir.is_dir() {
                    mounts.push(ro(&c.runtime.image_dir));
                }
            }
            // The hub reads the applied deployment (its routes) from the agent's state.
            ServiceName::Hub => mounts.push(ro(&paths.state_dir.join("agent"))),
            ServiceName::Watchdog => {}
        }
        if matches!(service, ServiceName::Agent | ServiceName::Hub) && !c.cloud.ca_file.is_empty() {
            mounts.push(ro(Path::new(&c.cloud.ca_file)));
        }
        ContainerSpec {
            id: Self::container_id(service),
            image: image.to_owned(),
            cmd: Some(vec!["--config".into(), service.config_path(paths).display().to_string()]),
            labels: BTreeMap::from([(LABEL_SERVICE.to_owned(), service.as_str().to_owned())]),
            mounts,
            host_network: true,
            hosts_file: Some(PathBuf::from("/etc/hosts")),
            devices,
            ..ContainerSpec::default()
        }
    }
}

fn runtime_error(what: &str) -> impl FnOnce(outpost_runtime::error::RuntimeError) -> LaunchError + '_ {
    move |e| LaunchError::Runtime(format!("{what}: {e}"))
}

#[async_trait::async_trait]
impl Launcher for ContainerLauncher {
    async fn prepare(&self, _service: ServiceName, image: &str) -> Result<(), LaunchError> {
        let present = |r: Result<Option<String>, _>| r.map(|d| d.is_some()).map_err(runtime_error("containerd"));
        if present(self.runtime.image_digest(image).await)? {
            return Ok(());
        }
        self.import_archives().await?;
        if present(self.runtime.image_digest(image).await)? {
            return Ok(());
        }
        Err(LaunchError::Missing(format!(
            "image {image} is not in containerd namespace {} nor among the archives in {}; build the images \
             (`cargo xtask images`) and copy target/images/*.tar there",
            self.config.containerd.system_namespace,
            self.config.runtime.image_dir.display()
        )))
    }

    async fn start(&self, service: ServiceName, image: &str, recreate: bool) -> Result<Box<dyn Instance>, LaunchError> {
        self.prepare(service, image).await?;
        let id = Self::container_id(service);
        let existing = self.runtime.list(LABEL_SERVICE, service.as_str()).await.map_err(runtime_error("containerd"))?;
        let mut exists = false;
        for container in existing {
            if container.id == id && !recreate && container.image == image {
                exists = true;
                self.runtime.stop(&id, Duration::ZERO).await.map_err(runtime_error("cannot clear the old task"))?;
            } else {
                self.runtime.remove(&container.id).await.map_err(runtime_error("cannot remove the old container"))?;
            }
        }
        if recreate {
            let _ = std::fs::remove_file(service.socket(&self.config.paths));
        }
        if !exists {
            let spec = self.spec(service, image);
            for mount in &spec.mounts {
                if !mount.source.exists() {
                    return Err(LaunchError::Runtime(format!("{} does not exist", mount.source.display())));
                }
            }
            self.runtime.create_container(&spec).await.map_err(runtime_error("cannot create the container"))?;
        }
        let output = Output::File(service.log_path(&self.config.paths));
        self.runtime.start(&id, output).await.map_err(runtime_error("cannot start the container"))?;
        let pid = match self.runtime.state(&id).await {
            Ok(TaskState::Running { pid }) => pid,
            _ => 0,
        };
        Ok(Box::new(ContainerInstance { runtime: self.runtime.clone(), id, pid }))
    }

    async fn clean_up(&self, service: ServiceName) -> Result<(), LaunchError> {
        let id = Self::container_id(service);
        if let Ok(TaskState::Running { .. }) = self.runtime.state(&id).await {
            tracing::warn!(%service, "stopping the instance a previous outpostd left running");
        }
        match self.runtime.stop(&id, Duration::from_secs(10)).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(LaunchError::Runtime(format!("cannot stop {id}: {e}"))),
        }
    }
}

/// A service's container with its running task.
#[derive(Debug)]
struct ContainerInstance {
    runtime: Containerd,
    id: String,
    pid: u32,
}

#[async_trait::async_trait]
impl Instance for ContainerInstance {
    fn pid(&self) -> u32 {
        self.pid
    }

    async fn wait(&mut self) -> i32 {
        loop {
            match self.runtime.wait(&self.id).await {
                Ok(code) => return i32::try_from(code).unwrap_or(-1),
                Err(e) => {
                    tracing::debug!(container = %self.id, error = %e, "waiting on the task failed; polling");
                    match self.runtime.state(&self.id).await {
                        Ok(TaskState::Stopped { exit_code, .. }) => return i32::try_from(exit_code).unwrap_or(-1),
                        Ok(TaskState::NoTask) => return -1,
                        _ => tokio::time::sleep(Duration::from_secs(1)).await,
                    }
                }
            }
        }
    }

    async fn stop(&mut self, grace: Duration) -> i32 {
        match self.runtime.stop(&self.id, grace).await {
            Ok(Some(code)) => i32::try_from(code).unwrap_or(-1),
            Ok(None) => -1,
            Err(e) => {
                tracing::warn!(container = %self.id, error = %e, "cannot stop");
                -1
            }
        }
    }
}
