//! Polling with a deadline instead of sleeping: for effects that land asynchronously.

use std::time::{Duration, Instant};

/// Polls `condition` every 10 ms until it holds; panics with `what` after `timeout`.
pub fn eventually(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
