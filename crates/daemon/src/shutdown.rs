//! One shutdown tree per process: SIGTERM or SIGINT cancels the root token; subsystems take
//! child tokens and spawn their long-lived tasks on the shared tracker, which is drained
//! with a bounded grace period at exit.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The root of a process's cancellation tree and the tracker of its tasks.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    /// A fresh tree, not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// The root token: cancelled on SIGTERM/SIGINT or by [`Shutdown::trigger`].
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// A child token for one subsystem.
    pub fn child(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// Starts cancelling everything.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Spawns a tracked task, awaited by [`Shutdown::drain`].
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Cancels the tree when SIGTERM or SIGINT arrives. Fails only if the signal handlers
    /// cannot be installed.
    pub fn on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let token = self.token.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
                _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
                () = token.cancelled() => return,
            }
            token.cancel();
        });
        Ok(())
    }

    /// Cancels the tree and waits up to `grace` for every tracked task; `false` if some were
    /// still running when the time ran out.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_tasks_that_stop_on_cancel() {
        let shutdown = Shutdown::new();
        let child = shutdown.child();
        let done = shutdown.spawn(async move {
            child.cancelled().await;
            7
        });
        assert!(shutdown.drain(Duration::from_secs(5)).await);
        assert_eq!(done.await.unwrap(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_after_the_grace_period() {
        let shutdown = Shutdown::new();
        shutdown.spawn(std::future::pending::<()>());
        assert!(!shutdown.drain(Duration::from_secs(1)).await);
    }
}
