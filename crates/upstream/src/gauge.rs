//! A count of things in progress (unconfirmed publishes, unsettled downlinks) that a closing
//! connection can wait to see reach zero.

use std::sync::Arc;

use tokio::sync::watch;

/// The count; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Gauge(Arc<watch::Sender<usize>>);

/// One thing in progress: counted until dropped.
#[derive(Debug)]
pub(crate) struct GaugeGuard(Arc<watch::Sender<usize>>);

impl Gauge {
    /// A count of zero.
    pub(crate) fn new() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }

    /// Counts one more until the guard is dropped.
    pub(crate) fn enter(&self) -> GaugeGuard {
        self.0.send_modify(|n| *n += 1);
        GaugeGuard(self.0.clone())
    }

    /// The count now.
    pub(crate) fn get(&self) -> usize {
        *self.0.borrow()
    }

    /// Resolves when the count is zero.
    pub(crate) async fn zero(&self) {
        // The sender lives in `self`, so waiting cannot fail.
        let _ = self.0.subscribe().wait_for(|n| *n == 0).await;
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn zero_waits_for_every_guard() {
        let gauge = Gauge::new();
        gauge.zero().await;
        let (a, b) = (gauge.enter(), gauge.enter());
        assert_eq!(gauge.get(), 2);
        drop(a);
        let waiting = tokio::spawn({
            let gauge = gauge.clone();
            async move { gauge.zero().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(b);
        waiting.await.unwrap();
        assert_eq!(gauge.get(), 0);
    }
}
