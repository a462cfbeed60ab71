//! Image pulls in the background, one task per image. A slow download never holds up a
//! reconcile pass (other modules keep being restarted and reported, and a module whose new
//! image is still downloading keeps running on its old one), progress shows in statuses,
//! and a failed pull waits out a cool-off (10 s × 2ⁿ up to 5 min, as restarts) before it is
//! tried again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_core::manifest::RegistryCredential;
use outpost_runtime::ContainerRuntime;
use outpost_runtime::containerd::PullProgress;
use outpost_runtime::registry::{RegistryClient, RegistrySettings};
use tokio::sync::{Notify, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

/// How a pull ended.
pub type Outcome = Result<String, String>;

/// A pull in flight or failed, with what subscribers need.
#[derive(Debug, Clone)]
enum Entry {
    Pulling { progress: watch::Receiver<PullProgress>, outcome: watch::Receiver<Option<Outcome>> },
    Failed { reason: String, retry_at: u64, attempts: u32 },
}

/// Where a pull stands, for statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullState {
    /// Downloading; the text says how far.
    Pulling(String),
    /// The last attempt failed; retried at the given time (seconds since the epoch).
    Failed {
        /// Why, for people.
        reason: String,
        /// When the next attempt starts.
        retry_at: u64,
    },
}

/// Watches one pull: progress as it goes and, at the end, the manifest digest or the
/// reason it failed.
#[derive(Debug, Clone)]
pub struct PullWatch {
    /// Progress.
    pub progress: watch::Receiver<PullProgress>,
    /// `None` until the pull ends.
    pub outcome: watch::Receiver<Option<Outcome>>,
}

/// The agent's pulls.
#[derive(Debug)]
pub struct Pulls {
    runtime: Arc<dyn ContainerRuntime>,
    settings: RegistrySettings,
    cool_off_unit: Duration,
    max_cool_off: Duration,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl Pulls {
    /// Pulls into `runtime`; `wake` is notified whenever a pull ends.
    pub fn new(
        runtime: Arc<dyn ContainerRuntime>,
        settings: RegistrySettings,
        cool_off_unit: Duration,
        max_cool_off: Duration,
        wake: Arc<Notify>,
    ) -> Self {
        let cancel = CancellationToken::new();
        Self {
            runtime,
            settings,
            cool_off_unit,
            max_cool_off,
            entries: Arc::default(),
            wake,
            _stop_on_drop: cancel.clone().drop_guard(),
            cancel,
        }
    }

    /// The notifier woken when a pull ends.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes sure `image` is being pulled, unless its last attempt failed less than a
    /// cool-off ago (or `force`), and says where it stands.
    pub fn ensure(&self, image: &str, credentials: &[RegistryCredential], now: u64, force: bool) -> PullState {
        let previous = self.lock().get(image).cloned();
        let attempts = match previous {
            Some(Entry::Pulling { progress, .. }) => {
                return PullState::Pulling(format!("pulling image {image}: {}", *progress.borrow()));
            }
            Some(Entry::Failed { reason, retry_at, .. }) if now < retry_at && !force => {
                return PullState::Failed { reason, retry_at };
            }
            Some(Entry::Failed { attempts, .. }) => attempts,
            None => 0,
        };
        match self.start(image, credentials, attempts + 1) {
            Ok(()) => PullState::Pulling(format!("pulling image {image}")),
            Err(reason) => {
                let retry_at = now + cool_off_secs(self.cool_off_unit, self.max_cool_off, attempts + 1);
                let entry = Entry::Failed { reason: reason.clone(), retry_at, attempts: attempts + 1 };
                self.lock().insert(image.to_owned(), entry);
                PullState::Failed { reason, retry_at }
            }
        }
    }

    /// Forgets failed pulls, so that they are tried again at once (a new deployment may
    /// carry new credentials).
    pub fn forget_failures(&self) {
        self.lock().retain(|_, entry| matches!(entry, Entry::Pulling { .. }));
    }

    /// Follows the pull of `image`, if one is in flight.
    pub fn watch(&self, image: &str) -> Option<PullWatch> {
        match self.lock().get(image) {
            Some(Entry::Pulling { progress, outcome }) => {
                Some(PullWatch { progress: progress.clone(), outcome: outcome.clone() })
            }
            _ => None,
        }
    }

    fn start(&self, image: &str, credentials: &[RegistryCredential], attempts: u32) -> Result<(), String> {
        let registry = RegistryClient::new(image, &self.settings, credentials).map_err(|e| e.to_string())?;
        let (progress_tx, progress) = watch::channel(PullProgress::default());
        let (outcome_tx, outcome) = watch::channel(None);
        self.lock().insert(image.to_owned(), Entry::Pulling { progress, outcome });
        let (runtime, entries, wake, cancel) =
            (self.runtime.clone(), self.entries.clone(), self.wake.clone(), self.cancel.clone());
        let (unit, max) = (self.cool_off_unit, self.max_cool_off);
        let image = image.to_owned();
        tokio::spawn(async move {
            tracing::info!(image, attempt = attempts, "pulling image");
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                result = runtime.pull(&registry, &image, Arc::new(progress_tx)) => result,
            };
            let mut entries = entries.lock().unwrap_or_else(|p| p.into_inner());
            let outcome = match result {
                Ok(pulled) => {
                    tracing::info!(image, digest = pulled.manifest_digest, "image pulled");
                    entries.remove(&image);
                    Ok(pulled.manifest_digest)
                }
                Err(error) => {
                    let reason = error.to_string();
                    let retry_at = crate::daemon::now() + cool_off_secs(unit, max, attempts);
                    tracing::warn!(image, reason, retry_at, "image pull failed");
                    entries.insert(image.clone(), Entry::Failed { reason: reason.clone(), retry_at, attempts });
                    Err(reason)
                }
            };
            drop(entries);
            outcome_tx.send_replace(Some(outcome));
            wake.notify_one();
        });
        Ok(())
    }
}

/// The wait after the `attempts`-th failure: `unit` × 2^(attempts−1), at most `max`.
fn cool_off_secs(unit: Duration, max: Duration, attempts: u32) -> u64 {
    let factor = 1u32.checked_shl(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
    unit.saturating_mul(factor).min(max).as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_pulls_cool_off_like_restarts() {
        let (unit, max) = (Duration::from_secs(10), Duration::from_secs(300));
        let waits: Vec<u64> = (1..=7).map(|n| cool_off_secs(unit, max, n)).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(cool_off_secs(unit, max, 100), 300);
    }
}
