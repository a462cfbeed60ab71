//! The running agent: the desired deployment, operator overrides, the last statuses, and the
//! reconcile loop that ties them to the runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use outpost_core::ModuleId;
use outpost_core::manifest::{DeploymentManifest, DesiredStatus, ModuleSpec, RegistryCredential};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::deployment::{DeploymentError, DeploymentStore};
use crate::pulls::{PullState, PullWatch, Pulls};
use crate::reconcile::Reconciler;
use crate::status::{ModuleStatus, statuses};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Azure's `lastDesiredStatus`: how the last desired deployment fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastDesiredStatus {
    /// 200 applied, 400 invalid manifest, 412 unsupported schema version, 417 no deployment,
    /// 500 a module's steps failed.
    pub code: u16,
    /// For people.
    pub description: String,
}

impl LastDesiredStatus {
    fn of_rejection(error: &DeploymentError) -> Self {
        let schema = matches!(error, DeploymentError::Invalid(e)
            if e.problems.iter().any(|p| p.path.to_string().ends_with(".schemaVersion")));
        Self { code: if schema { 412 } else { 400 }, description: error.to_string() }
    }
}

#[derive(Debug, Default)]
struct Desired {
    text: String,
    manifest: Option<DeploymentManifest>,
    /// Modules an operator stopped; cleared by Start or a new deployment.
    stopped: BTreeSet<ModuleId>,
}

/// The agent's shared state.
#[derive(Debug)]
pub struct Agent {
    store: DeploymentStore,
    desired: std::sync::Mutex<Desired>,
    reconciler: Mutex<Reconciler>,
    statuses: std::sync::Mutex<Vec<ModuleStatus>>,
    last_desired: std::sync::Mutex<LastDesiredStatus>,
    pulls: Arc<Pulls>,
    logs: crate::logs::ModuleLogs,
    runtime: Arc<dyn outpost_runtime::ContainerRuntime>,
    wake: Arc<Notify>,
    system: Arc<crate::runtime_update::SystemModules>,
    /// The hub's admin socket, and the digest of the last deployment whose routes the hub
    /// was seen to have (or given up waiting for).
    hub: Option<(std::path::PathBuf, std::sync::Mutex<String>)>,
}

impl Agent {
    /// An agent with the deployment in `store` (loaded now) driving `reconciler`.
    pub fn new(store: DeploymentStore, reconciler: Reconciler) -> Result<Self, DeploymentError> {
        let mut desired = Desired::default();
        let mut last = LastDesiredStatus { code: 417, description: "no deployment has been applied".into() };
        if let Some((text, manifest)) = store.load()? {
            desired.text = text;
            desired.manifest = Some(manifest);
            last = LastDesiredStatus { code: 200, description: "being applied".into() };
        }
        let pulls = reconciler.pulls().clone();
        let logs = reconciler.logs().clone();
        let runtime = reconciler.runtime().clone();
        let wake = pulls.waker();
        Ok(Self {
            store,
            desired: std::sync::Mutex::new(desired),
            reconciler: Mutex::new(reconciler),
            statuses: std::sync::Mutex::new(Vec::new()),
            last_desired: std::sync::Mutex::new(last),
            pulls,
            logs,
            runtime,
            wake,
            system: Arc::default(),
            hub: None,
        })
    }

    /// Waits, before starting a new deployment's modules, until the hub on `socket` has the
    /// deployment's routes.
    pub fn with_hub(mut self, socket: std::path::PathBuf) -> Self {
        self.hub = Some((socket, std::sync::Mutex::new(String::new())));
        self
    }

    /// Waits (up to 5 s) until the hub has the routes of the deployment `text`, once per
    /// deployment.
    async fn hub_has_routes(&self, text: &str) {
        let Some((socket, seen)) = &self.hub else { return };
        let digest = crate::hub_routes::sha256_hex(text);
        if *seen.lock().unwrap_or_else(|p| p.into_inner()) == digest {
            return;
        }
        crate::hub_routes::wait_for(socket, &digest, std::time::Duration::from_secs(5)).await;
        *seen.lock().unwrap_or_else(|p| p.into_inner()) = digest;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Desired> {
        self.desired.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates, persists and schedules `text`; returns the number of modules.
    pub fn apply(&self, text: &str) -> Result<usize, DeploymentError> {
        let manifest = match self.store.apply(text) {
            Ok(manifest) => manifest,
            Err(error) => {
                if matches!(error, DeploymentError::Invalid(_)) {
                    self.set_last_desired(LastDesiredStatus::of_rejection(&error));
                }
                return Err(error);
            }
        };
        let modules = manifest.agent.modules.len();
        let mut desired = self.lock();
        desired.text = text.to_owned();
        desired.manifest = Some(manifest);
        desired.stopped.clear();
        drop(desired);
        self.set_last_desired(LastDesiredStatus { code: 200, description: "being applied".into() });
        self.pulls.forget_failures();
        self.wake.notify_one();
        Ok(modules)
    }

    /// The applied manifest text ("" if none).
    pub fn deployment_text(&self) -> String {
        self.lock().text.clone()
    }

    /// Whether `module` is in the deployment.
    pub fn has_module(&self, module: &ModuleId) -> bool {
        self.lock().manifest.as_ref().is_some_and(|m| m.agent.modules.contains_key(module))
    }

    fn desired_modules(&self) -> (BTreeMap<ModuleId, ModuleSpec>, Vec<RegistryCredential>) {
        let desired = self.lock();
        let mut modules = desired.manifest.as_ref().map(|m| m.agent.modules.clone()).unwrap_or_default();
        for module in &desired.stopped {
            if let Some(spec) = modules.get_mut(module) {
                spec.status = DesiredStatus::Stopped;
            }
        }
        let credentials = desired
            .manifest
            .as_ref()
            .map(|m| m.agent.runtime.registry_credentials.values().cloned().collect())
            .unwrap_or_default();
        (modules, credentials)
    }

    /// The registry credentials of the applied deployment.
    pub fn registry_credentials(&self) -> Vec<RegistryCredential> {
        self.desired_modules().1
    }

    /// Starts pulling `image` now, whatever its cool-off, and follows it.
    pub fn pull_image(&self, image: &str) -> Result<PullWatch, String> {
        let credentials = self.registry_credentials();
        if let PullState::Failed { reason, .. } = self.pulls.ensure(image, &credentials, now(), true) {
            return Err(reason);
        }
        self.pulls.watch(image).ok_or_else(|| format!("the pull of {image} ended at once; see the agent's log"))
    }

    /// The container runtime.
    pub fn runtime(&self) -> Arc<dyn outpost_runtime::ContainerRuntime> {
        self.runtime.clone()
    }

    /// Where module output goes.
    pub fn module_logs(&self) -> crate::logs::ModuleLogs {
        self.logs.clone()
    }

    /// The runtime services as outpostd last reported them (empty without outpostd).
    pub fn system_modules(&self) -> Arc<crate::runtime_update::SystemModules> {
        self.system.clone()
    }

    /// The agent's and the hub's images in the applied deployment.
    pub fn system_images(&self) -> Option<(String, String)> {
        let desired = self.lock();
        let agent = &desired.manifest.as_ref()?.agent;
        Some((agent.edge_agent.image.clone(), agent.edge_hub.image.clone()))
    }

    /// The agent's state as Azure's `$edgeAgent` reported properties.
    pub fn reported_properties(&self) -> serde_json::Value {
        let (system_agent, system_hub) = self.system.snapshot();
        let desired = self.lock();
        let version = crate::reported::desired_version(&desired.text);
        let mut last = self.last_desired_status();
        // A runtime replacement the deployment asked for and outpostd rolled back fails it.
        if let Some(manifest) = &desired.manifest {
            let wanted = [
                ("edgeHub", &manifest.agent.edge_hub.image, &system_hub),
                ("edgeAgent", &manifest.agent.edge_agent.image, &system_agent),
            ];
            for (name, image, seen) in wanted {
                if let Some((failed, reason)) = seen.as_ref().and_then(|s| s.failed_update.as_ref())
                    && failed == image
                {
                    last = LastDesiredStatus { code: 500, description: format!("{name}: {reason}") };
                }
            }
        }
        let system = crate::reported::System { agent: system_agent, hub: system_hub };
        crate::reported::reported(desired.manifest.as_ref(), version, &last, &self.statuses(), &system)
    }

    /// How the last desired deployment fared.
    pub fn last_desired_status(&self) -> LastDesiredStatus {
        self.last_desired.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_last_desired(&self, status: LastDesiredStatus) {
        *self.last_desired.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    /// Marks `module` stopped (or not) by the operator.
    pub fn set_stopped(&self, module: &ModuleId, stopped: bool) {
        let mut desired = self.lock();
        if stopped {
            desired.stopped.insert(module.clone());
        } else {
            desired.stopped.remove(module);
        }
    }

    /// The statuses from the last pass.
    pub fn statuses(&self) -> Vec<ModuleStatus> {
        self.statuses.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs one reconcile pass now and records the statuses.
    pub async fn pass(&self) {
        let (desired, credentials) = self.desired_modules();
        let deployed = self.lock().manifest.is_some();
        if deployed {
            let text = self.deployment_text();
            self.hub_has_routes(&text).await;
        }
        let mut reconciler = self.reconciler.lock().await;
        let now = now();
        match reconciler.reconcile(&desired, &credentials, now).await {
            Ok(report) => {
                if deployed && self.last_desired_status().code != 400 && self.last_desired_status().code != 412 {
                    self.set_last_desired(match report.first_failure() {
                        Some((module, reason)) => {
                            LastDesiredStatus { code: 500, description: format!("module {module}: {reason}") }
                        }
                        None => LastDesiredStatus { code: 200, description: String::new() },
                    });
                }
                match reconciler.observe(now).await {
                    Ok(observed) => {
                        let current = statuses(&desired, &observed, &report);
                        *self.statuses.lock().unwrap_or_else(|p| p.into_inner()) = current;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot observe containers after a pass"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reconcile pass failed; retrying");
                if deployed {
                    self.set_last_desired(LastDesiredStatus { code: 500, description: e.to_string() });
                }
            }
        }
    }

    /// An operator restart of `module`, then a pass.
    pub async fn restart(&self, module: &ModuleId) -> Result<(), outpost_runtime::RuntimeError> {
        self.set_stopped(module, false);
        let result = self.reconciler.lock().await.restart_module(module, now()).await;
        self.pass().await;
        result
    }

    /// Reconciles every `interval` and whenever woken, until `shutdown`.
    pub async fn run(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        loop {
            self.pass().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
