//! Containers and their tasks: create from an image and a [`ContainerSpec`], start with
//! stdout/stderr appended to a log file, stop with SIGTERM then SIGKILL after a grace period,
//! wait, inspect, remove, list.

use std::collections::HashMap;
use std::time::Duration;

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest, DeleteTaskRequest, GetImageRequest,
    GetRequest, KillRequest, ListContainersRequest, ReadContentRequest, StartRequest, WaitRequest,
};
use containerd_client::types::v1::Status;

use super::Containerd;
use crate::container::{ContainerInfo, ContainerSpec, Output, TaskState};
use crate::error::RuntimeError;
use crate::oci::{ImageConfig, Manifest, chain_ids};
use crate::spec::runtime_spec;

/// The runc shim every container uses.
const RUNTIME: &str = "io.containerd.runc.v2";
/// The type URL containerd expects for a runtime spec.
const SPEC_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;

fn not_found(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::NotFound
}

impl Containerd {
    async fn read_content(&self, digest: &str) -> Result<Vec<u8>, RuntimeError> {
        let request = self.request(ReadContentRequest { digest: digest.to_owned(), offset: 0, size: 0 }, None);
        let mut stream = ContentClient::new(self.channel.clone())
            .read(request)
            .await
            .map_err(RuntimeError::containerd("read content"))?
            .into_inner();
        let mut data = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(RuntimeError::containerd("read content"))? {
            data.extend_from_slice(&chunk.data);
        }
        Ok(data)
    }

    /// The configuration of image `name`, read from the content store.
    pub async fn image_config(&self, name: &str) -> Result<ImageConfig, RuntimeError> {
        let image = ImagesClient::new(self.channel.clone())
            .get(self.request(GetImageRequest { name: name.to_owned() }, None))
            .await
            .map_err(|status| {
                if not_found(&status) {
                    RuntimeError::InvalidSpec(format!("image {name} is not present; pull or import it first"))
                } else {
                    RuntimeError::Containerd { operation: "get image", status }
                }
            })?
            .into_inner();
        let target = image.image.and_then(|i| i.target).ok_or_else(|| RuntimeError::InvalidImage {
            what: name.to_owned(),
            reason: "image record has no target".into(),
        })?;
        let invalid = |reason: String| RuntimeError::InvalidImage { what: name.to_owned(), reason };
        let manifest: Manifest =
            serde_json::from_slice(&self.read_content(&target.digest).await?).map_err(|e| invalid(e.to_string()))?;
        serde_json::from_slice(&self.read_content(&manifest.config.digest).await?).map_err(|e| invalid(e.to_string()))
    }

    /// Creates container `spec.id` from its image (which must be present). The snapshot is
    /// prepared under a lease: until the container record references it, containerd's
    /// garbage collector would otherwise be free to remove it.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let lease = self.create_lease("create").await?;
        let result = self.create_container_leased(spec, &lease).await;
        self.delete_lease(&lease).await;
        result
    }

    async fn create_container_leased(&self, spec: &ContainerSpec, lease: &str) -> Result<(), RuntimeError> {
        let config = self.image_config(&spec.image).await?;
        let runtime_spec = runtime_spec(spec, &config.config, &self.namespace)?;
        let top = chain_ids(&config.rootfs.diff_ids).pop().unwrap_or_default();
        let prepare = PrepareSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            key: spec.id.clone(),
            parent: top,
            labels: Default::default(),
        };
        let mut snapshots = SnapshotsClient::new(self.channel.clone());
        match snapshots.prepare(self.request(prepare, Some(lease))).await {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::AlreadyExists => {}
            Err(status) => return Err(RuntimeError::Containerd { operation: "prepare container snapshot", status }),
        }
        let container = Container {
            id: spec.id.clone(),
            labels: spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>(),
            image: spec.image.clone(),
            runtime: Some(Runtime { name: RUNTIME.to_owned(), options: None }),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE.to_owned(),
                value: serde_json::to_vec(&runtime_spec).expect("runtime specs always serialise"),
            }),
            snapshotter: self.snapshotter.clone(),
            snapshot_key: spec.id.clone(),
            ..Default::default()
        };
        if let Err(status) = ContainersClient::new(self.channel.clone())
            .create(self.request(CreateContainerRequest { container: Some(container) }, Some(lease)))
            .await
        {
            let remove = RemoveSnapshotRequest { snapshotter: self.snapshotter.clone(), key: spec.id.clone() };
            let _ = snapshots.remove(self.request(remove, None)).await;
            return Err(RuntimeError::Containerd { operation: "create container", status });
        }
        Ok(())
    }

    /// Starts container `id` with its output going to `output`. A leftover stopped task is
    /// cleaned up first.
    pub async fn start(&self, id: &str, output: impl Into<Output>) -> Result<(), RuntimeError> {
        let output = output.into();
        if let Output::File(path) = &output
            && let Some(parent) = path.parent()
        {
            std::fs::create_dir_all(parent).map_err(RuntimeError::io(parent))?;
        }
        let mut tasks = TasksClient::new(self.channel.clone());
        if let TaskState::Stopped { .. } | TaskState::Created = self.state(id).await? {
            let _ = tasks.delete(self.request(DeleteTaskRequest { container_id: id.to_owned() }, None)).await;
        }
        let mounts = SnapshotsClient::new(self.channel.clone())
            .mounts(self.request(MountsRequest { snapshotter: self.snapshotter.clone(), key: id.to_owned() }, None))
            .await
            .map_err(RuntimeError::containerd("container mounts"))?
            .into_inner()
            .mounts;
        // With `file://`, both streams are appended to one file by containerd's shim (known
        // defect on containerd 1.6: stderr written in the last milliseconds before a process
        // exits can be lost). Modules use a binary logger, which receives the pipes.
        let uri = output.uri();
        let (stdout, stderr) = (uri.clone(), uri);
        let create =
            CreateTaskRequest { container_id: id.to_owned(), rootfs: mounts, stdout, stderr, ..Default::default() };
        tasks.create(self.request(create, None)).await.map_err(RuntimeError::containerd("create task"))?;
        tasks
            .start(self.request(StartRequest { container_id: id.to_owned(), exec_id: String::new() }, None))
            .await
            .map_err(RuntimeError::containerd("start task"))?;
        Ok(())
    }

    /// The state of container `id`'s task.
    pub async fn state(&self, id: &str) -> Result<TaskState, RuntimeError> {
        let request = self.request(GetRequest { container_id: id.to_owned(), exec_id: String::new() }, None);
        match TasksClient::new(self.channel.clone()).get(request).await {
            Ok(response) => {
                let Some(process) = response.into_inner().process else { return Ok(TaskState::Unknown) };
                Ok(match Status::try_from(process.status).unwrap_or(Status::Unknown) {
                    Status::Created => TaskState::Created,
                    Status::Running => TaskState::Running { pid: process.pid },
                    Status::Stopped => TaskState::Stopped {
                        exit_code: process.exit_status,
                        exited_at: process.exited_at.map(|t| t.seconds.max(0) as u64).unwrap_or(0),
                    },
                    _ => TaskState::Unknown,
                })
            }
            Err(status) if not_found(&status) => Ok(TaskState::NoTask),
            Err(status) => Err(RuntimeError::Containerd { operation: "get task", status }),
        }
    }

    /// Waits for container `id`'s task to exit and returns its exit status.
    pub async fn wait(&self, id: &str) -> Result<u32, RuntimeError> {
        let request = self.request(WaitRequest { container_id: id.to_owned(), exec_id: String::new() }, None);
        let response = TasksClient::new(self.channel.clone())
            .wait(request)
            .await
            .map_err(RuntimeError::containerd("wait task"))?;
        Ok(response.into_inner().exit_status)
    }

    async fn kill(&self, id: &str, signal: u32) -> Result<(), RuntimeError> {
        let request =
            self.request(KillRequest { container_id: id.to_owned(), exec_id: String::new(), signal, all: true }, None);
        match TasksClient::new(self.channel.clone()).kill(request).await {
            Ok(_) => Ok(()),
            Err(status) if not_found(&status) => Ok(()),
            Err(status) => Err(RuntimeError::Containerd { operation: "kill task", status }),
        }
    }

    /// Stops container `id`: SIGTERM, then SIGKILL if it is still running after `grace`.
    /// Returns the exit status, or `None` if it was not running. The task is deleted.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<Option<u32>, RuntimeError> {
        let status = match self.state(id).await? {
            TaskState::NoTask => return Ok(None),
            TaskState::Running { .. } => {
                let waiter = self.clone();
                let wait_id = id.to_owned();
                let mut wait = tokio::spawn(async move { waiter.wait(&wait_id).await });
                self.kill(id, SIGTERM).await?;
                match tokio::time::timeout(grace, &mut wait).await {
                    Ok(result) => Some(result.map_err(|e| RuntimeError::InvalidSpec(e.to_string()))??),
                    Err(_) => {
                        tracing::warn!(
                            container = id,
                            grace_secs = grace.as_secs(),
                            "did not stop on SIGTERM; sending SIGKILL"
                        );
                        self.kill(id, SIGKILL).await?;
                        Some(wait.await.map_err(|e| RuntimeError::InvalidSpec(e.to_string()))??)
                    }
                }
            }
            TaskState::Stopped { exit_code, .. } => Some(exit_code),
            TaskState::Created | TaskState::Unknown => {
                self.kill(id, SIGKILL).await?;
                None
            }
        };
        match TasksClient::new(self.channel.clone())
            .delete(self.request(DeleteTaskRequest { container_id: id.to_owned() }, None))
            .await
        {
            Ok(_) => {}
            Err(s) if not_found(&s) => {}
            Err(status) => return Err(RuntimeError::Containerd { operation: "delete task", status }),
        }
        Ok(status)
    }

    /// Removes container `id` (stopping it at once if needed) and its snapshot.
    pub async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.stop(id, Duration::ZERO).await?;
        match ContainersClient::new(self.channel.clone())
            .delete(self.request(DeleteContainerRequest { id: id.to_owned() }, None))
            .await
        {
            Ok(_) => {}
            Err(status) if not_found(&status) => return Err(RuntimeError::NotFound(id.to_owned())),
            Err(status) => return Err(RuntimeError::Containerd { operation: "delete container", status }),
        }
        let remove = RemoveSnapshotRequest { snapshotter: self.snapshotter.clone(), key: id.to_owned() };
        match SnapshotsClient::new(self.channel.clone()).remove(self.request(remove, None)).await {
            Ok(_) => Ok(()),
            Err(status) if not_found(&status) => Ok(()),
            Err(status) => Err(RuntimeError::Containerd { operation: "remove container snapshot", status }),
        }
    }

    /// Containers whose label `key` equals `value`.
    pub async fn list(&self, key: &str, value: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let filter = format!("labels.\"{key}\"=={value}");
        let response = ContainersClient::new(self.channel.clone())
            .list(self.request(ListContainersRequest { filters: vec![filter] }, None))
            .await
            .map_err(RuntimeError::containerd("list containers"))?;
        let mut containers: Vec<ContainerInfo> = response
            .into_inner()
            .containers
            .into_iter()
            .map(|c| ContainerInfo { id: c.id, image: c.image, labels: c.labels.into_iter().collect() })
            .collect();
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(containers)
    }
}
