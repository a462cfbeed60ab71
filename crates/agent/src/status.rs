//! Module statuses as Azure reports them: running, stopped, failed, backoff, unknown.

use std::collections::BTreeMap;

use outpost_core::ModuleId;
use outpost_core::manifest::{DesiredStatus, ModuleSpec};

use crate::planner::{ObservedModule, ObservedState, Plan};

/// One module's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleStatus {
    /// The module.
    pub module: ModuleId,
    /// Its image (desired, or the container's when no longer desired).
    pub image: String,
    /// Desired status; `None` for containers no longer in the deployment.
    pub desired: Option<DesiredStatus>,
    /// `running`, `stopped`, `failed`, `backoff` or `unknown`.
    pub runtime_status: &'static str,
    /// Detail for people.
    pub description: String,
    /// Last exit code.
    pub exit_code: i32,
    /// Restarts since the stats were last cleared.
    pub restart_count: u32,
}

/// Statuses of every desired module and every observed container.
pub fn statuses(
    desired: &BTreeMap<ModuleId, ModuleSpec>,
    observed: &[ObservedModule],
    plan: &Plan,
    failures: &BTreeMap<ModuleId, String>,
) -> Vec<ModuleStatus> {
    let seen: BTreeMap<&ModuleId, &ObservedModule> = observed.iter().map(|o| (&o.module, o)).collect();
    let mut names: Vec<&ModuleId> = desired.keys().chain(seen.keys().copied()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|module| {
            let spec = desired.get(module);
            let observed = seen.get(module);
            let restart_count = observed.map_or(0, |o| o.stats.restart_count);
            let (runtime_status, description, exit_code) = match (observed.map(|o| o.state), failures.get(module)) {
                (_, Some(reason)) => ("failed", format!("{reason}; retrying"), 0),
                (None, None) => ("unknown", "not created yet".to_owned(), 0),
                (Some(ObservedState::Running { .. }), None) => ("running", "running".to_owned(), 0),
                (Some(ObservedState::Created), None) => ("stopped", "created, not started".to_owned(), 0),
                (Some(ObservedState::Unknown), None) => {
                    ("unknown", "the runtime cannot tell; the container is replaced".to_owned(), 0)
                }
                (Some(ObservedState::Exited { code, .. }), None) => {
                    if let Some(due) = plan.backoff.get(module) {
                        (
                            "backoff",
                            format!(
                                "exited with {code}; restarting at {} (after {restart_count} restarts)",
                                outpost_core::time::rfc3339(*due as i64)
                            ),
                            code,
                        )
                    } else if plan.gave_up.contains(module) {
                        ("failed", format!("exited with {code}; gave up after {restart_count} restarts"), code)
                    } else if code == 0 {
                        ("stopped", "exited with 0".to_owned(), 0)
                    } else {
                        ("failed", format!("exited with {code}"), code)
                    }
                }
            };
            ModuleStatus {
                module: module.clone(),
                image: spec.map(|s| s.image.clone()).unwrap_or_default(),
                desired: spec.map(|s| s.status),
                runtime_status,
                description,
                exit_code,
                restart_count,
            }
        })
        .collect()
}
