//! Restart policies and the cool-off schedule, as Azure's edgeAgent applies them.
//!
//! A module that stopped is restarted when its policy says so, after a cool-off of
//! `unit × 2^restarts` capped at `max_cool_off` (10 s, 20 s, 40 s … 300 s by default). After
//! `max_restarts` restarts it is `Failed` and left alone until its stats are reset, which
//! happens after it has run for `healthy_after` (10 minutes) or on a new deployment.

use std::time::Duration;

use outpost_core::manifest::RestartPolicy;

/// Tunables of the restart schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartSettings {
    /// The cool-off unit (Azure's `CoolOffTimeUnitInSeconds`, 10 s).
    pub cool_off_unit: Duration,
    /// The longest cool-off (300 s).
    pub max_cool_off: Duration,
    /// Restarts before a module is reported failed (20).
    pub max_restarts: u32,
    /// Running this long clears the restart stats (Azure's intensive care time, 10 min).
    pub healthy_after: Duration,
}

impl Default for RestartSettings {
    fn default() -> Self {
        Self {
            cool_off_unit: Duration::from_secs(10),
            max_cool_off: Duration::from_secs(300),
            max_restarts: 20,
            healthy_after: Duration::from_secs(600),
        }
    }
}

impl RestartSettings {
    /// The cool-off before restart number `restarts + 1`.
    pub fn cool_off(&self, restarts: u32) -> Duration {
        let factor = 1u32.checked_shl(restarts).unwrap_or(u32::MAX);
        self.cool_off_unit.saturating_mul(factor).min(self.max_cool_off)
    }
}

/// How a module's last run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit code 0.
    Clean,
    /// A non-zero exit code or a signal.
    Failed,
    /// Still running but reported unhealthy.
    Unhealthy,
}

/// Whether `policy` restarts a module whose run ended as `exit`.
pub fn wants_restart(policy: RestartPolicy, exit: Exit) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => exit == Exit::Failed,
        RestartPolicy::OnUnhealthy => matches!(exit, Exit::Failed | Exit::Unhealthy),
        RestartPolicy::Always => true,
    }
}

/// What to do about a module that is not running although it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Start it now.
    RestartNow,
    /// Wait: reported `backoff` until `at` (seconds since the epoch).
    BackoffUntil(u64),
    /// Its policy does not restart it: reported `stopped` or `failed` by exit.
    Leave,
    /// It used up its restarts: reported `failed`.
    GaveUp,
}

/// The restart statistics of one module, persisted by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RestartStats {
    /// Restarts since the stats were last cleared.
    pub restart_count: u32,
    /// When it was last restarted, seconds since the epoch.
    pub last_restart: Option<u64>,
}

impl RestartStats {
    /// Decides about a module that stopped at `exited_at` with `exit`, at time `now`.
    pub fn decide(
        &self,
        settings: &RestartSettings,
        policy: RestartPolicy,
        exit: Exit,
        exited_at: u64,
        now: u64,
    ) -> RestartDecision {
        if !wants_restart(policy, exit) {
            return RestartDecision::Leave;
        }
        if self.restart_count >= settings.max_restarts {
            return RestartDecision::GaveUp;
        }
        let ready = exited_at.saturating_add(settings.cool_off(self.restart_count).as_secs());
        if now >= ready { RestartDecision::RestartNow } else { RestartDecision::BackoffUntil(ready) }
    }

    /// Records a restart at `now`.
    pub fn restarted(&mut self, now: u64) {
        self.restart_count = self.restart_count.saturating_add(1);
        self.last_restart = Some(now);
    }

    /// Clears the stats if the module has been running since `running_since` for long enough.
    pub fn observe_running(&mut self, settings: &RestartSettings, running_since: u64, now: u64) {
        if now.saturating_sub(running_since) >= settings.healthy_after.as_secs() {
            *self = Self::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cool_off_doubles_from_ten_seconds_and_caps_at_five_minutes() {
        let s = RestartSettings::default();
        let schedule: Vec<u64> = (0..8).map(|n| s.cool_off(n).as_secs()).collect();
        assert_eq!(schedule, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(s.cool_off(200).as_secs(), 300, "no overflow for large counts");
    }

    #[test]
    fn policies_restart_what_azure_restarts() {
        use RestartPolicy::*;
        let table = [
            (Never, Exit::Clean, false),
            (Never, Exit::Failed, false),
            (OnFailure, Exit::Clean, false),
            (OnFailure, Exit::Failed, true),
            (OnFailure, Exit::Unhealthy, false),
            (OnUnhealthy, Exit::Clean, false),
            (OnUnhealthy, Exit::Failed, true),
            (OnUnhealthy, Exit::Unhealthy, true),
            (Always, Exit::Clean, true),
            (Always, Exit::Failed, true),
            (Always, Exit::Unhealthy, true),
        ];
        for (policy, exit, expected) in table {
            assert_eq!(wants_restart(policy, exit), expected, "{policy:?} {exit:?}");
        }
    }

    #[test]
    fn a_crashing_module_backs_off_then_gives_up_after_twenty_restarts() {
        let s = RestartSettings::default();
        let mut stats = RestartStats::default();
        let mut now = 1_000;
        for n in 0..20 {
            let exited_at = now;
            let wait = s.cool_off(n).as_secs();
            assert_eq!(
                stats.decide(&s, RestartPolicy::Always, Exit::Failed, exited_at, now),
                RestartDecision::BackoffUntil(exited_at + wait)
            );
            now += wait;
            assert_eq!(
                stats.decide(&s, RestartPolicy::Always, Exit::Failed, exited_at, now),
                RestartDecision::RestartNow
            );
            stats.restarted(now);
        }
        assert_eq!(stats.restart_count, 20);
        assert_eq!(stats.decide(&s, RestartPolicy::Always, Exit::Failed, now, now + 10_000), RestartDecision::GaveUp);
    }

    #[test]
    fn ten_minutes_of_running_clears_the_stats() {
        let s = RestartSettings::default();
        let mut stats = RestartStats { restart_count: 5, last_restart: Some(100) };
        stats.observe_running(&s, 100, 100 + 599);
        assert_eq!(stats.restart_count, 5);
        stats.observe_running(&s, 100, 100 + 600);
        assert_eq!(stats, RestartStats::default());
    }

    #[test]
    fn modules_their_policy_does_not_restart_are_left_alone() {
        let stats = RestartStats::default();
        let s = RestartSettings::default();
        assert_eq!(stats.decide(&s, RestartPolicy::OnFailure, Exit::Clean, 0, 100), RestartDecision::Leave);
        assert_eq!(stats.decide(&s, RestartPolicy::Never, Exit::Failed, 0, 100), RestartDecision::Leave);
    }
}
