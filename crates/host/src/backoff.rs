//! How long a service waits before it is started again after it exited or could not be
//! started: 1 s, doubling to 60 s, back to 1 s once an instance has run for a minute. A
//! crash-looping service costs one start a minute, never a fork bomb.

use std::time::Duration;

/// The first cool-off.
const FIRST: Duration = Duration::from_secs(1);
/// The longest cool-off.
pub const MAX: Duration = Duration::from_secs(60);
/// Running this long clears the count of consecutive failures.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Consecutive failures of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    consecutive: u32,
}

impl Backoff {
    /// The instance exited after running for `ran_for`: the cool-off before the next start.
    pub fn after_exit(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= STABLE_AFTER {
            self.consecutive = 0;
        }
        self.after_failure()
    }

    /// A start failed: the cool-off before the next attempt.
    pub fn after_failure(&mut self) -> Duration {
        let delay = FIRST.saturating_mul(1u32 << self.consecutive.min(16)).min(MAX);
        self.consecutive = self.consecutive.saturating_add(1);
        delay
    }

    /// An operator or the watchdog asked for a start: no cool-off.
    pub fn reset(&mut self) {
        self.consecutive = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_a_minute_and_resets_after_a_stable_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(10);
        let delays: Vec<u64> = (0..9).map(|_| b.after_exit(quick).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.after_exit(STABLE_AFTER).as_secs(), 1);
        assert_eq!(b.after_failure().as_secs(), 2);
        b.reset();
        assert_eq!(b.after_failure().as_secs(), 1);
        for _ in 0..100 {
            b.after_failure();
        }
        assert_eq!(b.after_failure(), MAX);
    }
}
