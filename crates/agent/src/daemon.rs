//! The running agent: the desired deployment, operator overrides, the last statuses, and the
//! reconcile loop that ties them to the runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use outpost_core::ModuleId;
use outpost_core::manifest::{DeploymentManifest, DesiredStatus, ModuleSpec};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::deployment::{DeploymentError, DeploymentStore};
use crate::reconcile::Reconciler;
use crate::status::{ModuleStatus, statuses};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
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
    wake: Notify,
}

impl Agent {
    /// An agent with the deployment in `store` (loaded now) driving `reconciler`.
    pub fn new(store: DeploymentStore, reconciler: Reconciler) -> Result<Self, DeploymentError> {
        let mut desired = Desired::default();
        if let Some((text, manifest)) = store.load()? {
            desired.text = text;
            desired.manifest = Some(manifest);
        }
        Ok(Self {
            store,
            desired: std::sync::Mutex::new(desired),
            reconciler: Mutex::new(reconciler),
            statuses: std::sync::Mutex::new(Vec::new()),
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Desired> {
        self.desired.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates, persists and schedules `text`; returns the number of modules.
    pub fn apply(&self, text: &str) -> Result<usize, DeploymentError> {
        let manifest = self.store.apply(text)?;
        let modules = manifest.agent.modules.len();
        let mut desired = self.lock();
        desired.text = text.to_owned();
        desired.manifest = Some(manifest);
        desired.stopped.clear();
        drop(desired);
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

    fn desired_modules(&self) -> BTreeMap<ModuleId, ModuleSpec> {
        let desired = self.lock();
        let mut modules = desired.manifest.as_ref().map(|m| m.agent.modules.clone()).unwrap_or_default();
        for module in &desired.stopped {
            if let Some(spec) = modules.get_mut(module) {
                spec.status = DesiredStatus::Stopped;
            }
        }
        modules
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
        let desired = self.desired_modules();
        let mut reconciler = self.reconciler.lock().await;
        let now = now();
        match reconciler.reconcile(&desired, now).await {
            Ok(report) => match reconciler.observe(now).await {
                Ok(observed) => {
                    let current = statuses(&desired, &observed, &report.plan, &report.failures);
                    *self.statuses.lock().unwrap_or_else(|p| p.into_inner()) = current;
                }
                Err(e) => tracing::warn!(error = %e, "cannot observe containers after a pass"),
            },
            Err(e) => tracing::warn!(error = %e, "reconcile pass failed; retrying"),
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
