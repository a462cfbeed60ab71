//! Jittered exponential backoff between connection attempts, sans-IO: the caller supplies
//! the randomness and sleeps; this only says how long.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

/// The first delay after a failure.
pub const INITIAL_DELAY: Duration = Duration::from_millis(500);
/// The longest delay between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// How far a delay may stray from its nominal value either way (±20 %), so that a fleet
/// cut off together does not come back in step.
const JITTER_SPREAD: f64 = 0.2;

/// Delays doubling from `initial` up to `max`, each jittered by ±20 % (and never above
/// `max`).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(INITIAL_DELAY, MAX_DELAY)
    }
}

impl Backoff {
    /// Delays from `initial` to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max: max.max(initial), failures: 0 }
    }

    /// Failures since the last [`reset`](Self::reset).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure and returns how long to wait before the next attempt; `jitter` in
    /// `[0, 1)` picks the point in the ±20 % band (0.5 is the nominal delay).
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        // 2^failures overflows nothing: past the cap the exponent stops growing.
        let nominal = self.initial.saturating_mul(1u32 << self.failures.min(20)).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let factor = 1.0 - JITTER_SPREAD + 2.0 * JITTER_SPREAD * jitter.clamp(0.0, 1.0);
        nominal.mul_f64(factor).min(self.max)
    }

    /// Forgets past failures: the next delay is the initial one again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A random number in `[0, 1)` for [`Backoff::next_delay`]; not cryptographic, only
/// different per process and per call (std's randomly keyed hasher).
pub fn jitter() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    // 53 random bits make an exact f64 fraction.
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_half_a_second_up_to_a_minute() {
        let mut backoff = Backoff::default();
        let nominal: Vec<Duration> = (0..10).map(|_| backoff.next_delay(0.5)).collect();
        let ms: Vec<u128> = nominal.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
        assert_eq!(backoff.failures(), 10);
    }

    #[test]
    fn jitter_stays_within_a_fifth_either_way_and_under_the_cap() {
        let mut low = Backoff::default();
        let mut high = Backoff::default();
        for _ in 0..3 {
            low.next_delay(0.0);
            high.next_delay(0.999_999);
        }
        assert_eq!(low.next_delay(0.0), Duration::from_millis(3200));
        assert!(high.next_delay(0.999_999) > Duration::from_millis(4799));
        let mut capped = Backoff::default();
        for _ in 0..40 {
            assert!(capped.next_delay(0.999_999) <= MAX_DELAY);
        }
        assert!(capped.next_delay(0.0) >= MAX_DELAY.mul_f64(0.8));
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next_delay(0.5);
        }
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.next_delay(0.5), INITIAL_DELAY);
    }

    #[test]
    fn random_jitter_is_a_fraction_and_varies() {
        let samples: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(samples.windows(2).any(|w| w[0] != w[1]));
    }
}
