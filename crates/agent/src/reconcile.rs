//! One reconcile pass: observe the agent's containers, plan, execute the plan in order.
//! A failing step fails its module, not the pass: the other modules still get their steps,
//! and the failure is reported and retried on the next pass. Images are pulled in the
//! background ([`Pulls`]); modules waiting for one are skipped until it is there.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use outpost_core::ModuleId;
use outpost_core::manifest::{ModuleSpec, RegistryCredential};
use outpost_runtime::ContainerRuntime;
use outpost_runtime::container::TaskState;

use crate::identity::ModuleIdentities;
use crate::logs::ModuleLogs;
use crate::module_container::{
    DeviceContext, LABEL_CONFIG, LABEL_MODULE, LABEL_OWNER, OWNER, container_spec, hosts_file,
};
use crate::planner::{ObservedModule, ObservedState, Plan, Step, plan};
use crate::pulls::{PullState, Pulls};
use crate::restart::{RestartSettings, RestartStats};

/// How long a module gets to stop after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why a module's steps did not run in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// Its image is downloading; the text says how far.
    Pulling(String),
    /// Its image could not be pulled; retried at `retry_at`.
    PullFailed {
        /// Why.
        reason: String,
        /// Seconds since the epoch.
        retry_at: u64,
    },
    /// A step failed; retried on the next pass.
    Failed(String),
}

/// The outcome of a pass.
#[derive(Debug, Default)]
pub struct PassReport {
    /// The plan that was executed.
    pub plan: Plan,
    /// Modules whose steps did not (all) run, with the reason.
    pub blocked: BTreeMap<ModuleId, Blocked>,
    /// Manifest digests of the desired images that are present.
    pub image_digests: BTreeMap<String, String>,
    /// When each module last started (seconds since the epoch), as far as the agent knows.
    pub started: BTreeMap<ModuleId, u64>,
}

impl PassReport {
    /// The first failure, for the deployment's status (pulls in progress are not failures).
    pub fn first_failure(&self) -> Option<(&ModuleId, String)> {
        self.blocked.iter().find_map(|(module, blocked)| match blocked {
            Blocked::Pulling(_) => None,
            Blocked::PullFailed { reason, .. } | Blocked::Failed(reason) => Some((module, reason.clone())),
        })
    }
}

/// The reconcile engine with its in-memory restart statistics.
#[derive(Debug)]
pub struct Reconciler {
    runtime: Arc<dyn ContainerRuntime>,
    identity: Arc<dyn ModuleIdentities>,
    device: DeviceContext,
    logs: ModuleLogs,
    settings: RestartSettings,
    stats: HashMap<ModuleId, RestartStats>,
    running_since: HashMap<ModuleId, u64>,
    last_started: HashMap<ModuleId, u64>,
    pulls: Arc<Pulls>,
}

impl Reconciler {
    /// An engine driving `runtime`, with identities from `identity` and images from `pulls`;
    /// module output goes to `logs`.
    pub fn new(
        runtime: Arc<dyn ContainerRuntime>,
        identity: Arc<dyn ModuleIdentities>,
        device: DeviceContext,
        logs: ModuleLogs,
        settings: RestartSettings,
        pulls: Pulls,
    ) -> Self {
        Self {
            runtime,
            identity,
            device,
            logs,
            settings,
            stats: HashMap::new(),
            running_since: HashMap::new(),
            last_started: HashMap::new(),
            pulls: Arc::new(pulls),
        }
    }

    /// The image pulls.
    pub fn pulls(&self) -> &Arc<Pulls> {
        &self.pulls
    }

    /// The container runtime.
    pub fn runtime(&self) -> &Arc<dyn ContainerRuntime> {
        &self.runtime
    }

    /// Where module output goes.
    pub fn logs(&self) -> &ModuleLogs {
        &self.logs
    }

    /// The agent's containers as they are now.
    pub async fn observe(&mut self, now: u64) -> Result<Vec<ObservedModule>, outpost_runtime::RuntimeError> {
        let mut observed = Vec::new();
        for container in self.runtime.list(LABEL_OWNER, OWNER).await? {
            let Some(module) = container.labels.get(LABEL_MODULE).and_then(|m| ModuleId::new(m.clone()).ok()) else {
                continue;
            };
            let state = match self.runtime.state(&container.id).await? {
                TaskState::NoTask | TaskState::Created => ObservedState::Created,
                TaskState::Running { .. } => {
                    let since = *self.running_since.entry(module.clone()).or_insert(now);
                    self.last_started.entry(module.clone()).or_insert(since);
                    ObservedState::Running { since }
                }
                TaskState::Stopped { exit_code, exited_at } => {
                    self.running_since.remove(&module);
                    ObservedState::Exited { code: exit_code as i32, at: exited_at }
                }
                TaskState::Unknown => ObservedState::Unknown,
            };
            let stats = self.stats.entry(module.clone()).or_default();
            if let ObservedState::Running { since } = state {
                stats.observe_running(&self.settings, since, now);
            }
            observed.push(ObservedModule {
                module,
                config_fingerprint: container.labels.get(LABEL_CONFIG).cloned().unwrap_or_default(),
                state,
                stats: *stats,
            });
        }
        Ok(observed)
    }

    /// Runs one pass towards `desired` at time `now` (seconds since the epoch), pulling
    /// images with `credentials`.
    pub async fn reconcile(
        &mut self,
        desired: &BTreeMap<ModuleId, ModuleSpec>,
        credentials: &[RegistryCredential],
        now: u64,
    ) -> Result<PassReport, outpost_runtime::RuntimeError> {
        let hosts = &self.device.hosts_file;
        if let Some(dir) = hosts.parent() {
            std::fs::create_dir_all(dir).map_err(outpost_runtime::RuntimeError::io(dir))?;
        }
        // Written only when it differs: passes run every few seconds.
        let wanted = hosts_file(&self.device.gateway_hostname);
        if std::fs::read_to_string(hosts).ok().as_deref() != Some(wanted.as_str()) {
            std::fs::write(hosts, wanted).map_err(outpost_runtime::RuntimeError::io(hosts))?;
        }

        let observed = self.observe(now).await?;
        let mut image_digests = BTreeMap::new();
        for spec in desired.values() {
            if !image_digests.contains_key(&spec.image)
                && let Some(digest) = self.runtime.image_digest(&spec.image).await?
            {
                image_digests.insert(spec.image.clone(), digest);
            }
        }
        let plan = plan(desired, &observed, &|image: &str| image_digests.contains_key(image), &self.settings, now);
        let mut blocked: BTreeMap<ModuleId, Blocked> = BTreeMap::new();
        // Modules no longer desired are stopped concurrently: each may take the whole grace
        // period, and none of them should delay the others or the rest of the plan.
        let leaving: Vec<&ModuleId> = plan
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Stop { module } if !desired.contains_key(module) => Some(module),
                _ => None,
            })
            .collect();
        let stops = leaving.iter().map(|module| self.runtime.stop(module.as_str(), STOP_GRACE));
        for (module, result) in leaving.iter().zip(futures::future::join_all(stops).await) {
            if let Err(e) = result {
                tracing::warn!(%module, error = %e, "cannot stop a removed module");
                blocked.insert((*module).clone(), Blocked::Failed(e.to_string()));
            }
        }
        for step in &plan.steps {
            let module = match step {
                Step::Pull { image } => {
                    // Pulls run in the background; the modules that need the image wait
                    // (a running one keeps running on its current image meanwhile).
                    let why = match self.pulls.ensure(image, credentials, now, false) {
                        PullState::Pulling(progress) => Blocked::Pulling(progress),
                        PullState::Failed { reason, retry_at } => Blocked::PullFailed { reason, retry_at },
                    };
                    for (m, _) in desired.iter().filter(|(_, s)| &s.image == image) {
                        blocked.insert(m.clone(), why.clone());
                    }
                    continue;
                }
                Step::Stop { module }
                | Step::Remove { module }
                | Step::Create { module }
                | Step::Start { module, .. } => module,
            };
            if blocked.contains_key(module) || (matches!(step, Step::Stop { .. }) && !desired.contains_key(module)) {
                continue;
            }
            if let Err(reason) = self.execute(step, desired, now).await {
                tracing::warn!(?step, %reason, "reconcile step failed");
                blocked.insert(module.clone(), Blocked::Failed(reason));
            }
        }
        let started = self.last_started.iter().map(|(m, t)| (m.clone(), *t)).collect();
        Ok(PassReport { plan, blocked, image_digests, started })
    }

    async fn execute(&mut self, step: &Step, desired: &BTreeMap<ModuleId, ModuleSpec>, now: u64) -> Result<(), String> {
        match step {
            Step::Pull { .. } => Ok(()),
            Step::Stop { module } => {
                self.runtime.stop(module.as_str(), STOP_GRACE).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Step::Remove { module } => {
                self.runtime.remove(module.as_str()).await.map_err(|e| e.to_string())?;
                self.running_since.remove(module);
                self.last_started.remove(module);
                if !desired.contains_key(module) {
                    self.stats.remove(module);
                    self.identity.remove(module).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Step::Create { module } => {
                let spec = desired.get(module).ok_or_else(|| format!("module {module} is not in the deployment"))?;
                let generation = self.identity.ensure(module).await.map_err(|e| e.to_string())?;
                let container = container_spec(module, spec, &generation, &self.device).map_err(|e| e.to_string())?;
                self.runtime.create_container(&container).await.map_err(|e| e.to_string())
            }
            Step::Start { module, restart } => {
                self.runtime.start(module.as_str(), &self.logs.output()).await.map_err(|e| e.to_string())?;
                self.running_since.insert(module.clone(), now);
                self.last_started.insert(module.clone(), now);
                if *restart {
                    self.stats.entry(module.clone()).or_default().restarted(now);
                }
                Ok(())
            }
        }
    }

    /// The restart statistics of `module`.
    pub fn stats(&self, module: &ModuleId) -> RestartStats {
        self.stats.get(module).copied().unwrap_or_default()
    }
}

impl Reconciler {
    /// Stops and starts `module` now (an operator's restart; not counted as a policy restart).
    pub async fn restart_module(&mut self, module: &ModuleId, now: u64) -> Result<(), outpost_runtime::RuntimeError> {
        self.runtime.stop(module.as_str(), STOP_GRACE).await?;
        self.runtime.start(module.as_str(), &self.logs.output()).await?;
        self.running_since.insert(module.clone(), now);
        self.last_started.insert(module.clone(), now);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
