//! Where the hub's routes and module twins' desired properties come from: the applied
//! deployment. Today that is the deployment file the agent keeps (read when it changes); the
//! cloud will be another [`RouteSource`]. Routes are swapped whole, in one step.

use std::path::PathBuf;
use std::time::Duration;

use outpost_core::manifest::DeploymentManifest;
use outpost_core::routes::Route;

use crate::store::DEFAULT_PRIORITY;

/// A route with what its messages get in the queues it fills.
#[derive(Debug, Clone)]
pub struct HubRoute {
    /// The route.
    pub route: Route,
    /// 0 (first) to 9; routes without one rank below them all ([`DEFAULT_PRIORITY`]).
    pub priority: u8,
    /// Seconds its messages may wait; `None`: the deployment's time-to-live.
    pub ttl_secs: Option<u32>,
}

impl HubRoute {
    /// `route` with the default priority and time-to-live.
    pub fn new(route: Route) -> Self {
        Self { route, priority: DEFAULT_PRIORITY, ttl_secs: None }
    }
}

/// What the hub takes from a deployment.
#[derive(Debug, Clone)]
pub struct HubDeployment {
    /// The `$edgeHub` routes.
    pub routes: Vec<HubRoute>,
    /// `storeAndForwardConfiguration.timeToLiveSecs`; `None`: messages never expire.
    pub ttl_secs: Option<u64>,
    /// `storeAndForwardConfiguration.storeLimits.maxSizeBytes`, if set.
    pub max_store_bytes: Option<u64>,
    /// Desired properties of module twins, by module id.
    pub module_twins: std::collections::BTreeMap<String, serde_json::Value>,
    /// SHA-256 (hex) of the manifest text it came from, so the agent can tell that the hub
    /// has a deployment's routes before it starts the deployment's modules.
    pub source_sha256: String,
}

/// The SHA-256 of `text`, lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A stream of deployments for the hub.
#[async_trait::async_trait]
pub trait RouteSource: Send + std::fmt::Debug {
    /// Waits for the next deployment; `None` when the source is done.
    async fn next(&mut self) -> Option<HubDeployment>;
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

/// The routes and module twins of a manifest's text; the manifest reader has already checked
/// every route, so a refusal here means the file is not a valid deployment at all.
pub fn deployment_of(text: &str) -> Result<HubDeployment, String> {
    let manifest = DeploymentManifest::parse(text).map_err(|e| e.to_string())?;
    let routes = manifest
        .hub
        .routes
        .iter()
        .map(|(name, spec)| {
            let route = Route::parse(name, &spec.route).map_err(|e| e.to_string())?;
            let ttl_secs = spec.time_to_live_secs.filter(|t| *t > 0);
            Ok(HubRoute { route, priority: spec.priority.unwrap_or(DEFAULT_PRIORITY), ttl_secs })
        })
        .collect::<Result<_, String>>()?;
    let store = &manifest.hub.store_and_forward;
    let ttl_secs = u64::try_from(store.time_to_live_secs).ok();
    let module_twins =
        manifest.module_twins.into_iter().map(|(module, desired)| (module.to_string(), desired)).collect();
    Ok(HubDeployment {
        routes,
        ttl_secs,
        max_store_bytes: store.max_size_bytes,
        module_twins,
        source_sha256: sha256_hex(text),
    })
}

#[async_trait::async_trait]
impl RouteSource for DeploymentFile {
    async fn next(&mut self) -> Option<HubDeployment> {
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
            match deployment_of(&text) {
                Ok(deployment) => {
                    tracing::info!(path = %self.path.display(), routes = deployment.routes.len(), "deployment loaded");
                    return Some(deployment);
                }
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "deployment refused; routes unchanged");
                }
            }
        }
    }
}
