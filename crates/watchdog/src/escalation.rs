//! What to do about one service, from its health checks: nothing while it is healthy; after
//! `failures` consecutive failed checks a restart; after as many again, a recreate; then
//! recreates, each at least a cool-off after the last, the cool-off doubling from one check
//! interval up to `max_backoff`. A healthy check forgets everything. Pure: the caller feeds
//! checks with their times and carries out the actions.

use std::time::{Duration, Instant};

/// What the watchdog asks outpostd to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop and start the service.
    Restart,
    /// Make its container (process) anew.
    Recreate,
}

impl Action {
    /// The action's name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Recreate => "recreate",
        }
    }
}

/// One service's escalation state.
#[derive(Debug, Clone)]
pub struct Escalation {
    failures_needed: u32,
    interval: Duration,
    max_backoff: Duration,
    consecutive: u32,
    actions: u32,
    quiet_until: Option<Instant>,
}

impl Escalation {
    /// Acts after `failures_needed` failed checks, `interval` apart.
    pub fn new(failures_needed: u32, interval: Duration, max_backoff: Duration) -> Self {
        Self {
            failures_needed: failures_needed.max(1),
            interval,
            max_backoff,
            consecutive: 0,
            actions: 0,
            quiet_until: None,
        }
    }

    /// Consecutive failed checks so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    /// Records a check at `now`; the action due, if any.
    pub fn observe(&mut self, healthy: bool, now: Instant) -> Option<Action> {
        if healthy {
            self.consecutive = 0;
            self.actions = 0;
            self.quiet_until = None;
            return None;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        if self.consecutive < self.failures_needed || self.quiet_until.is_some_and(|t| now < t) {
            return None;
        }
        let action = if self.actions == 0 { Action::Restart } else { Action::Recreate };
        let cool_off = self.interval.saturating_mul(1u32 << self.actions.min(16)).min(self.max_backoff);
        self.actions = self.actions.saturating_add(1);
        self.consecutive = 0;
        self.quiet_until = Some(now + cool_off);
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `checks` (true = healthy) one interval apart; the actions with their check index.
    fn run(e: &mut Escalation, start: Instant, checks: &[bool]) -> Vec<(usize, Action)> {
        checks
            .iter()
            .enumerate()
            .filter_map(|(i, healthy)| e.observe(*healthy, start + Duration::from_secs(10 * i as u64)).map(|a| (i, a)))
            .collect()
    }

    #[test]
    fn restart_then_recreate_then_recreates_further_apart() {
        let mut e = Escalation::new(3, Duration::from_secs(10), Duration::from_secs(40));
        let actions = run(&mut e, Instant::now(), &[false; 20]);
        // Restart after 3 failures (check 2); recreate after 3 more (5: its 10 s cool-off
        // has passed); then 3 more (8: 20 s passed); then the 40 s cool-offs, not the count,
        // hold the next ones back by a check each (12, 16).
        assert_eq!(
            actions,
            vec![
                (2, Action::Restart),
                (5, Action::Recreate),
                (8, Action::Recreate),
                (12, Action::Recreate),
                (16, Action::Recreate)
            ]
        );
    }

    #[test]
    fn a_healthy_check_forgets_the_failures() {
        let mut e = Escalation::new(3, Duration::from_secs(10), Duration::from_secs(300));
        let actions = run(&mut e, Instant::now(), &[false, false, true, false, false, true, false, false, false]);
        assert_eq!(actions, vec![(8, Action::Restart)]);
        let later = Instant::now() + Duration::from_secs(1000);
        assert_eq!(e.observe(true, later), None);
        assert_eq!(e.consecutive_failures(), 0);
        let again = run(&mut e, later, &[false, false, false]);
        assert_eq!(again, vec![(2, Action::Restart)], "after recovering, escalation starts over");
    }
}
