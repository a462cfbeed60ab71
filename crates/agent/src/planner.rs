//! The reconcile planner: desired modules + observed containers → an ordered plan. Pure: the
//! agent's loop observes, calls [`plan`], and executes the steps in order.
//!
//! | desired | observed | steps |
//! |---|---|---|
//! | absent | present | stop (if running), remove |
//! | present | absent | create, start if desired running |
//! | present, config changed (image, createOptions, env, version, restartPolicy) | present | stop (if running), remove, create, start if desired running |
//! | present, state unknown (container broken) | present | remove, create, start if desired running |
//! | running | created, never started | start |
//! | running | exited | restart policy and cool-off: start now, wait (`backoff`), or leave |
//! | running | running | nothing |
//! | stopped | running | stop |
//! | stopped | not running | nothing |
//!
//! Order: every image pull first; then stops and removals of modules no longer desired; then
//! one group per `startupOrder`, lowest first, each module's steps together.

use std::collections::{BTreeMap, BTreeSet};

use outpost_core::ModuleId;
use outpost_core::manifest::{DesiredStatus, ImagePullPolicy, ModuleSpec, RestartPolicy};

use crate::restart::{Exit, RestartDecision, RestartSettings, RestartStats};

/// The parts of a module's spec that a running container embodies; a change means a new
/// container. (`startupOrder` and the pull policy are deliberately absent: changing when a
/// module starts is no reason to restart it.)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerConfig {
    /// Image reference.
    pub image: String,
    /// `createOptions` JSON text.
    pub create_options: String,
    /// Environment from the manifest.
    pub env: BTreeMap<String, String>,
    /// Manifest `version`.
    pub version: String,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
}

impl ContainerConfig {
    /// The container-relevant parts of `spec`.
    pub fn of(spec: &ModuleSpec) -> Self {
        Self {
            image: spec.image.clone(),
            create_options: spec.create_options.clone(),
            env: spec.env.clone(),
            version: spec.version.clone(),
            restart_policy: spec.restart_policy,
        }
    }
}

/// What the runtime says about a module's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservedState {
    /// Created, never started.
    Created,
    /// Running since (seconds since the epoch).
    Running {
        /// Start time.
        since: u64,
    },
    /// Exited with `code` at `at`.
    Exited {
        /// Exit code (128 + signal for signals).
        code: i32,
        /// Exit time.
        at: u64,
    },
    /// The runtime cannot say (a broken container): it is replaced.
    Unknown,
}

/// One container the agent owns, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedModule {
    /// The module.
    pub module: ModuleId,
    /// The fingerprint of the configuration the container was created with (its label).
    pub config_fingerprint: String,
    /// Its state.
    pub state: ObservedState,
    /// Its restart statistics.
    pub stats: RestartStats,
}

/// One action for the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Pull an image.
    Pull {
        /// Image reference.
        image: String,
    },
    /// Stop a running container (SIGTERM, grace period, SIGKILL).
    Stop {
        /// The module.
        module: ModuleId,
    },
    /// Remove a container.
    Remove {
        /// The module.
        module: ModuleId,
    },
    /// Create a container from the module's spec.
    Create {
        /// The module.
        module: ModuleId,
    },
    /// Start a container; `restart` when the restart policy brings it back (counted).
    Start {
        /// The module.
        module: ModuleId,
        /// Whether this is a policy restart.
        restart: bool,
    },
}

/// The planner's output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Modules waiting out a cool-off, with the time they become due.
    pub backoff: BTreeMap<ModuleId, u64>,
    /// Modules that used up their restarts.
    pub gave_up: BTreeSet<ModuleId>,
}

/// Plans the steps that move `observed` towards `desired` at time `now`. `image_present`
/// says whether an image is already in the local store (images are pulled only when absent
/// and the pull policy allows it).
pub fn plan(
    desired: &BTreeMap<ModuleId, ModuleSpec>,
    observed: &[ObservedModule],
    image_present: &dyn Fn(&str) -> bool,
    settings: &RestartSettings,
    now: u64,
) -> Plan {
    let mut plan = Plan::default();
    let observed: BTreeMap<&ModuleId, &ObservedModule> = observed.iter().map(|o| (&o.module, o)).collect();

    for (module, seen) in &observed {
        if !desired.contains_key(*module) {
            if matches!(seen.state, ObservedState::Running { .. }) {
                plan.steps.push(Step::Stop { module: (*module).clone() });
            }
            plan.steps.push(Step::Remove { module: (*module).clone() });
        }
    }

    let mut pulls = BTreeSet::new();
    let mut groups: BTreeMap<u32, Vec<Step>> = BTreeMap::new();
    for (module, spec) in desired {
        let steps = groups.entry(spec.startup_order).or_default();
        let run = spec.status == DesiredStatus::Running;
        let create = |steps: &mut Vec<Step>, pulls: &mut BTreeSet<String>| {
            if spec.image_pull_policy == ImagePullPolicy::OnCreate && !image_present(&spec.image) {
                pulls.insert(spec.image.clone());
            }
            steps.push(Step::Create { module: module.clone() });
            if run {
                steps.push(Step::Start { module: module.clone(), restart: false });
            }
        };
        let Some(seen) = observed.get(module) else {
            create(steps, &mut pulls);
            continue;
        };
        let running = matches!(seen.state, ObservedState::Running { .. });
        if seen.config_fingerprint != ContainerConfig::of(spec).fingerprint() || seen.state == ObservedState::Unknown {
            if running {
                steps.push(Step::Stop { module: module.clone() });
            }
            steps.push(Step::Remove { module: module.clone() });
            create(steps, &mut pulls);
            continue;
        }
        match (spec.status, seen.state) {
            (DesiredStatus::Stopped, ObservedState::Running { .. }) => {
                steps.push(Step::Stop { module: module.clone() })
            }
            (DesiredStatus::Running, ObservedState::Created) => {
                steps.push(Step::Start { module: module.clone(), restart: false });
            }
            (DesiredStatus::Running, ObservedState::Exited { code, at }) => {
                let exit = if code == 0 { Exit::Clean } else { Exit::Failed };
                match seen.stats.decide(settings, spec.restart_policy, exit, at, now) {
                    RestartDecision::RestartNow => steps.push(Step::Start { module: module.clone(), restart: true }),
                    RestartDecision::BackoffUntil(due) => {
                        plan.backoff.insert(module.clone(), due);
                    }
                    RestartDecision::GaveUp => {
                        plan.gave_up.insert(module.clone());
                    }
                    RestartDecision::Leave => {}
                }
            }
            _ => {}
        }
    }
    let removals = std::mem::take(&mut plan.steps);
    plan.steps = pulls.into_iter().map(|image| Step::Pull { image }).collect();
    plan.steps.extend(removals);
    plan.steps.extend(groups.into_values().flatten());
    plan
}

#[cfg(test)]
mod tests;
