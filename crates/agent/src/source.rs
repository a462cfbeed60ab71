//! Where desired deployments come from. The management API's `ApplyDeployment` is one way
//! in; a [`DeploymentSource`] is any other: a watched file today (for devices configured by
//! provisioning tools or by hand), the cloud later. Every source ends in
//! [`Agent::apply`](crate::daemon::Agent::apply), so validation, persistence and
//! `lastDesiredStatus` are the same whichever way a deployment arrives.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::daemon::Agent;

/// A stream of desired deployments.
#[async_trait::async_trait]
pub trait DeploymentSource: Send + std::fmt::Debug {
    /// A name for logs.
    fn name(&self) -> String;

    /// Waits for the next desired deployment (manifest JSON text); `None` when the source
    /// has nothing more to give.
    async fn next(&mut self) -> Option<String>;
}

/// A manifest file, read when it first appears and whenever its content changes.
#[derive(Debug)]
pub struct WatchedFile {
    path: PathBuf,
    every: Duration,
    last: Option<String>,
    first: bool,
}

impl WatchedFile {
    /// Watches `path`, looking every `every`.
    pub fn new(path: PathBuf, every: Duration) -> Self {
        Self { path, every, last: None, first: true }
    }
}

#[async_trait::async_trait]
impl DeploymentSource for WatchedFile {
    fn name(&self) -> String {
        format!("file {}", self.path.display())
    }

    async fn next(&mut self) -> Option<String> {
        loop {
            if !self.first {
                tokio::time::sleep(self.every).await;
            }
            self.first = false;
            match tokio::fs::read_to_string(&self.path).await {
                Ok(text) if self.last.as_deref() != Some(text.as_str()) => {
                    self.last = Some(text.clone());
                    return Some(text);
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "cannot read the deployment file"),
            }
        }
    }
}

/// Applies what `source` gives until it ends or `shutdown`.
pub async fn feed(agent: Arc<Agent>, mut source: Box<dyn DeploymentSource>, shutdown: CancellationToken) {
    let name = source.name();
    loop {
        let text = tokio::select! {
            () = shutdown.cancelled() => return,
            text = source.next() => text,
        };
        let Some(text) = text else {
            tracing::info!(source = name, "deployment source ended");
            return;
        };
        // A file being written may be seen half-written; the next look sees it whole. The
        // refusal is reported (lastDesiredStatus 400) and the running deployment stays.
        match agent.apply(&text) {
            Ok(modules) => tracing::info!(source = name, modules, "deployment applied"),
            Err(e) => tracing::warn!(source = name, error = %e, "deployment refused; the running one stays"),
        }
    }
}
