//! One reconcile pass: observe the agent's containers, plan, execute the plan in order.
//! A failing step fails its module, not the pass: the other modules still get their steps,
//! and the failure is reported and retried on the next pass.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use outpost_core::ModuleId;
use outpost_core::manifest::ModuleSpec;
use outpost_runtime::container::TaskState;
use outpost_runtime::containerd::Containerd;

use crate::identity::IdentityService;
use crate::module_container::{
    DeviceContext, LABEL_CONFIG, LABEL_MODULE, LABEL_OWNER, OWNER, container_spec, hosts_file,
};
use crate::planner::{ObservedModule, ObservedState, Plan, Step, plan};
use crate::restart::{RestartSettings, RestartStats};

/// How long a module gets to stop after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The outcome of a pass.
#[derive(Debug, Default)]
pub struct PassReport {
    /// The plan that was executed.
    pub plan: Plan,
    /// Modules whose steps failed, with the reason.
    pub failures: BTreeMap<ModuleId, String>,
}

/// The reconcile engine with its in-memory restart statistics.
#[derive(Debug)]
pub struct Reconciler {
    runtime: Containerd,
    identity: IdentityService,
    device: DeviceContext,
    log_dir: PathBuf,
    settings: RestartSettings,
    stats: HashMap<ModuleId, RestartStats>,
    running_since: HashMap<ModuleId, u64>,
}

impl Reconciler {
    /// An engine driving `runtime`, with identities from `identity`; module logs go to
    /// `{log_dir}/{module}.log`.
    pub fn new(
        runtime: Containerd,
        identity: IdentityService,
        device: DeviceContext,
        log_dir: PathBuf,
        settings: RestartSettings,
    ) -> Self {
        Self { runtime, identity, device, log_dir, settings, stats: HashMap::new(), running_since: HashMap::new() }
    }

    /// The log file of `module`.
    pub fn log_path(&self, module: &ModuleId) -> PathBuf {
        self.log_dir.join(format!("{module}.log"))
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

    /// Runs one pass towards `desired` at time `now` (seconds since the epoch).
    pub async fn reconcile(
        &mut self,
        desired: &BTreeMap<ModuleId, ModuleSpec>,
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
        let mut present = HashMap::new();
        for spec in desired.values() {
            if !present.contains_key(&spec.image) {
                let found = self.runtime.image_digest(&spec.image).await?.is_some();
                present.insert(spec.image.clone(), found);
            }
        }
        let plan =
            plan(desired, &observed, &|image: &str| present.get(image).copied().unwrap_or(false), &self.settings, now);
        let mut failures: BTreeMap<ModuleId, String> = BTreeMap::new();
        for step in &plan.steps {
            let module = match step {
                Step::Pull { .. } => None,
                Step::Stop { module }
                | Step::Remove { module }
                | Step::Create { module }
                | Step::Start { module, .. } => Some(module),
            };
            if module.is_some_and(|m| failures.contains_key(m)) {
                continue;
            }
            if let Err(reason) = self.execute(step, desired, now).await {
                tracing::warn!(?step, %reason, "reconcile step failed");
                match module {
                    Some(m) => {
                        failures.insert(m.clone(), reason);
                    }
                    None => {
                        // A failed pull fails every module that needs the image.
                        if let Step::Pull { image } = step {
                            for (m, _) in desired.iter().filter(|(_, s)| &s.image == image) {
                                failures.insert(m.clone(), reason.clone());
                            }
                        }
                    }
                }
            }
        }
        Ok(PassReport { plan, failures })
    }

    async fn execute(&mut self, step: &Step, desired: &BTreeMap<ModuleId, ModuleSpec>, now: u64) -> Result<(), String> {
        match step {
            Step::Pull { image } => {
                Err(format!("image {image} is not present and registry pulls are not available yet; import it"))
            }
            Step::Stop { module } => {
                self.runtime.stop(module.as_str(), STOP_GRACE).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Step::Remove { module } => {
                self.runtime.remove(module.as_str()).await.map_err(|e| e.to_string())?;
                self.running_since.remove(module);
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
                self.runtime.start(module.as_str(), &self.log_path(module)).await.map_err(|e| e.to_string())?;
                self.running_since.insert(module.clone(), now);
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
        self.runtime.start(module.as_str(), &self.log_path(module)).await?;
        self.running_since.insert(module.clone(), now);
        Ok(())
    }
}
