//! The seam between Outpost's services and the container runtime: what the agent needs of
//! containers and images. [`crate::containerd::Containerd`] is the implementation; a
//! recording fake (feature `fake`) serves unit tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::container::{ContainerInfo, ContainerSpec, Output, Stats, TaskState};
use crate::containerd::{Containerd, ImportedImage, PullProgress};
use crate::error::RuntimeError;
use crate::registry::RegistryClient;

/// Containers and images, as the agent uses them.
#[async_trait::async_trait]
pub trait ContainerRuntime: Send + Sync + std::fmt::Debug {
    /// The manifest digest of image `name`, or `None` when it is not present.
    async fn image_digest(&self, name: &str) -> Result<Option<String>, RuntimeError>;

    /// Pulls the image `registry` points at, naming it `name`, with progress on `progress`.
    async fn pull(
        &self,
        registry: &RegistryClient,
        name: &str,
        progress: Arc<watch::Sender<PullProgress>>,
    ) -> Result<ImportedImage, RuntimeError>;

    /// Imports the OCI layout archive at `archive`, naming the image `name` (or by the
    /// archive's own reference).
    async fn import_archive(&self, archive: &Path, name: Option<&str>) -> Result<ImportedImage, RuntimeError>;

    /// Creates a container (not started).
    async fn create_container(&self, spec: &ContainerSpec) -> Result<(), RuntimeError>;

    /// Starts container `id` with its output going to `output`.
    async fn start(&self, id: &str, output: &Output) -> Result<(), RuntimeError>;

    /// Stops container `id`: SIGTERM, `grace`, SIGKILL. The exit status, if it was running.
    async fn stop(&self, id: &str, grace: Duration) -> Result<Option<u32>, RuntimeError>;

    /// Removes container `id` (stopping it first if needed).
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;

    /// The state of container `id`'s task.
    async fn state(&self, id: &str) -> Result<TaskState, RuntimeError>;

    /// Containers whose label `key` is `value`.
    async fn list(&self, key: &str, value: &str) -> Result<Vec<ContainerInfo>, RuntimeError>;

    /// Resource usage of container `id`'s running task, if any.
    async fn stats(&self, id: &str) -> Result<Option<Stats>, RuntimeError>;
}

#[async_trait::async_trait]
impl ContainerRuntime for Containerd {
    async fn image_digest(&self, name: &str) -> Result<Option<String>, RuntimeError> {
        Containerd::image_digest(self, name).await
    }

    async fn pull(
        &self,
        registry: &RegistryClient,
        name: &str,
        progress: Arc<watch::Sender<PullProgress>>,
    ) -> Result<ImportedImage, RuntimeError> {
        Containerd::pull(self, registry, name, progress).await
    }

    async fn import_archive(&self, archive: &Path, name: Option<&str>) -> Result<ImportedImage, RuntimeError> {
        Containerd::import_archive(self, archive, name).await
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        Containerd::create_container(self, spec).await
    }

    async fn start(&self, id: &str, output: &Output) -> Result<(), RuntimeError> {
        Containerd::start(self, id, output.clone()).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<Option<u32>, RuntimeError> {
        Containerd::stop(self, id, grace).await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        Containerd::remove(self, id).await
    }

    async fn state(&self, id: &str) -> Result<TaskState, RuntimeError> {
        Containerd::state(self, id).await
    }

    async fn list(&self, key: &str, value: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        Containerd::list(self, key, value).await
    }

    async fn stats(&self, id: &str) -> Result<Option<Stats>, RuntimeError> {
        Containerd::stats(self, id).await
    }
}
