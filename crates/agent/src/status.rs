//! Module statuses as Azure reports them: running, stopped, failed, backoff, unknown.

use std::collections::BTreeMap;

use outpost_core::ModuleId;
use outpost_core::manifest::{DesiredStatus, ModuleSpec};

use crate::planner::{ObservedModule, ObservedState};
use crate::reconcile::{Blocked, PassReport};

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
    /// When it last started (seconds since the epoch), if known.
    pub start_time: Option<u64>,
    /// When it last exited, if it has.
    pub exit_time: Option<u64>,
    /// The manifest digest of its image, once the image is present.
    pub image_digest: String,
}

/// Statuses of every desired module and every observed container after the pass `report`.
pub fn statuses(
    desired: &BTreeMap<ModuleId, ModuleSpec>,
    observed: &[ObservedModule],
    report: &PassReport,
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
            let state = observed.map(|o| o.state);
            let restart_count = observed.map_or(0, |o| o.stats.restart_count);
            let running = matches!(state, Some(ObservedState::Running { .. }));
            let (runtime_status, description, exit_code) = match (state, report.blocked.get(module)) {
                // A module waiting for its new image keeps running on the old one.
                (_, Some(Blocked::Pulling(progress))) if running => ("running", format!("running; {progress}"), 0),
                (_, Some(Blocked::Pulling(progress))) => ("unknown", progress.clone(), 0),
                (_, Some(Blocked::PullFailed { reason, retry_at })) => (
                    if running { "running" } else { "backoff" },
                    format!("{reason}; retrying at {}", outpost_core::time::rfc3339(*retry_at as i64)),
                    0,
                ),
                (_, Some(Blocked::Failed(reason))) => ("failed", format!("{reason}; retrying"), 0),
                (None, None) => ("unknown", "not created yet".to_owned(), 0),
                (Some(ObservedState::Running { .. }), None) => ("running", "running".to_owned(), 0),
                (Some(ObservedState::Created), None) => ("stopped", "created, not started".to_owned(), 0),
                (Some(ObservedState::Unknown), None) => {
                    ("unknown", "the runtime cannot tell; the container is replaced".to_owned(), 0)
                }
                (Some(ObservedState::Exited { code, .. }), None) => {
                    if let Some(due) = report.plan.backoff.get(module) {
                        (
                            "backoff",
                            format!(
                                "exited with {code}; restarting at {} (after {restart_count} restarts)",
                                outpost_core::time::rfc3339(*due as i64)
                            ),
                            code,
                        )
                    } else if report.plan.gave_up.contains(module) {
                        ("failed", format!("exited with {code}; gave up after {restart_count} restarts"), code)
                    } else if code == 0 {
                        ("stopped", "exited with 0".to_owned(), 0)
                    } else {
                        ("failed", format!("exited with {code}"), code)
                    }
                }
            };
            let image = spec.map(|s| s.image.clone()).unwrap_or_default();
            ModuleStatus {
                module: module.clone(),
                image_digest: report.image_digests.get(&image).cloned().unwrap_or_default(),
                image,
                desired: spec.map(|s| s.status),
                runtime_status,
                description,
                exit_code,
                restart_count,
                start_time: report.started.get(module).copied(),
                exit_time: match state {
                    Some(ObservedState::Exited { at, .. }) => Some(at),
                    _ => None,
                },
            }
        })
        .collect()
}
