//! The seam between the supervisor and what runs a service: [`process::ProcessLauncher`]
//! (child processes) or [`container::ContainerLauncher`] (containerd). Both hand back an
//! [`Instance`] to wait on and stop.

pub mod container;
pub mod process;

use std::time::Duration;

use crate::services::ServiceName;

/// Why a service could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The program or image is not there; the message says how to get it.
    #[error("{0}")]
    Missing(String),
    /// The runtime (containerd, the OS) refused.
    #[error("{0}")]
    Runtime(String),
}

/// Something that starts services.
#[async_trait::async_trait]
pub trait Launcher: Send + Sync + std::fmt::Debug {
    /// Checks that `image` (a program in process mode) can be started, importing it if the
    /// launcher knows where from.
    async fn prepare(&self, service: ServiceName, image: &str) -> Result<(), LaunchError>;

    /// Starts `service` from `image`. With `recreate`, whatever was left of a previous
    /// instance (a container, a socket file) is removed first.
    async fn start(&self, service: ServiceName, image: &str, recreate: bool) -> Result<Box<dyn Instance>, LaunchError>;

    /// Stops whatever of `service` is left running from before outpostd started (a crash),
    /// so that it can be started cleanly.
    async fn clean_up(&self, service: ServiceName) -> Result<(), LaunchError>;
}

/// A running service.
#[async_trait::async_trait]
pub trait Instance: Send + std::fmt::Debug {
    /// Its process id (the container's init in container mode).
    fn pid(&self) -> u32;

    /// Waits until it exits; its exit status (128 + signal for signals). Cancel-safe.
    async fn wait(&mut self) -> i32;

    /// SIGTERM, up to `grace`, then SIGKILL; its exit status.
    async fn stop(&mut self, grace: Duration) -> i32;
}
