//! Where the hub's routes come from: the `$edgeHub` desired properties of the applied
//! deployment. Today that is the deployment file the agent keeps (read when it changes); the
//! cloud will be another [`RouteSource`]. Routes are swapped whole, in one step.

use std::path::PathBuf;
use std::time::Duration;

use outpost_core::manifest::DeploymentManifest;
use outpost_core::routes::Route;

/// A stream of route sets.
#[async_trait::async_trait]
pub trait RouteSource: Send + std::fmt::Debug {
    /// Waits for the next set of routes; `None` when the source is done.
    async fn next(&mut self) -> Option<Vec<Route>>;
}

/// The routes of a deployment manifest file, read whenever its content changes.
#[derive(Debug)]
pub struct DeploymentFile {
    path: PathBuf,
    every: Duration,
    last: Option<String>,
    first: bool,
}

impl DeploymentFile {
    /// Watches `path`, looking every `every`.
    pub fn new(path: PathBuf, every: Duration) -> Self {
        Self { path, every, last: None, first: true }
    }
}

/// The routes of a manifest's text; the manifest reader has already checked every route, so
/// a refusal here means the file is not a valid deployment at all.
pub fn routes_of(text: &str) -> Result<Vec<Route>, String> {
    let manifest = DeploymentManifest::parse(text).map_err(|e| e.to_string())?;
    manifest.hub.routes.iter().map(|(name, spec)| Route::parse(name, &spec.route).map_err(|e| e.to_string())).collect()
}

#[async_trait::async_trait]
impl RouteSource for DeploymentFile {
    async fn next(&mut self) -> Option<Vec<Route>> {
        loop {
            if !self.first {
                tokio::time::sleep(self.every).await;
            }
            self.first = false;
            let text = match tokio::fs::read_to_string(&self.path).await {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot read the deployment");
                    continue;
                }
            };
            if self.last.as_deref() == Some(text.as_str()) {
                continue;
            }
            self.last = Some(text.clone());
            match routes_of(&text) {
                Ok(routes) => {
                    tracing::info!(path = %self.path.display(), routes = routes.len(), "routes loaded");
                    return Some(routes);
                }
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "deployment refused; routes unchanged");
                }
            }
        }
    }
}
