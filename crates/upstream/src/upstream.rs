//! The handle the agent and the hub hold: publish with broker confirms, watch the link's state.

use std::sync::Arc;

use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::{ConfigError, LinkConfig};
use crate::downlink::Downlinks;
use crate::error::PublishError;
use crate::message::{UpMessage, encode};
use crate::session::Session;
use crate::state::LinkState;
use crate::supervisor::Supervisor;
use crate::token::TokenSource;

/// A started link: the publishing handle, the downlinks, and the supervising task.
#[derive(Debug)]
pub struct Link {
    /// Publishes to the cloud; cheap to clone.
    pub upstream: Upstream,
    /// The cloud's messages for this device component.
    pub downlinks: Downlinks,
    /// The supervising task: ends after shutdown once its connection is closed (within
    /// about [`LinkConfig::drain_timeout`]). Await it to shut down cleanly.
    pub task: JoinHandle<()>,
}

/// Publishes to the cloud over the current connection.
#[derive(Debug, Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    device: String,
    confirm_window: usize,
    sessions: watch::Receiver<Option<Arc<Session>>>,
    state: watch::Receiver<LinkState>,
    shutdown: CancellationToken,
}

impl Upstream {
    /// Starts the link (on the current tokio runtime) with tokens from `tokens`; it stops when
    /// `shutdown` is cancelled.
    pub fn start(
        config: LinkConfig,
        tokens: Arc<dyn TokenSource>,
        shutdown: CancellationToken,
    ) -> Result<Link, ConfigError> {
        config.validate()?;
        let (sessions, sessions_rx) = watch::channel(None);
        let (state, state_rx) = watch::channel(LinkState::Connecting { attempt: 1, last_error: None });
        // Unbounded, yet bounded in practice: the broker hands each connection at most
        // `prefetch` unacknowledged messages, and at most two connections overlap (refresh).
        let (downlinks, downlinks_rx) = mpsc::unbounded_channel();
        let upstream = Upstream {
            inner: Arc::new(Inner {
                device: config.device_id.clone(),
                confirm_window: config.confirm_window,
                sessions: sessions_rx,
                state: state_rx,
                shutdown: shutdown.clone(),
            }),
        };
        let span = tracing::info_span!("upstream", device = %config.device_id, component = %config.component);
        let supervisor = Supervisor { config, tokens, sessions, state, downlinks, shutdown };
        let task = tokio::spawn(supervisor.run().instrument(span));
        Ok(Link { upstream, downlinks: Downlinks(downlinks_rx), task })
    }

    /// The link's state, to watch.
    pub fn state(&self) -> watch::Receiver<LinkState> {
        self.inner.state.clone()
    }

    /// Publishes `message` and resolves once the broker has confirmed it (it is then on the
    /// broker's disk and routed to at least one queue). Waits for a connection while there is
    /// none: wrap it in a timeout where that matters. See [`PublishError`] for what is worth
    /// retrying.
    pub async fn publish(&self, message: UpMessage) -> Result<(), PublishError> {
        let encoded = encode(&self.inner.device, &message)?;
        let session = self.session().await?;
        session.send(encoded, &message.body).await?.confirmed().await
    }

    /// Publishes `messages` in order over one connection, keeping up to
    /// [`LinkConfig::confirm_window`] of them unconfirmed at a time, and returns each one's
    /// result, in order: some may be confirmed while others failed, and only the failed ones
    /// need sending again. Once the connection is lost the rest of the batch is not sent
    /// ([`PublishError::NotSent`]). Waits for a connection while there is none.
    pub async fn publish_batch(&self, messages: Vec<UpMessage>) -> Vec<Result<(), PublishError>> {
        let mut results: Vec<Result<(), PublishError>> = messages.iter().map(|_| Err(PublishError::Shutdown)).collect();
        let session = match self.session().await {
            Ok(session) => session,
            Err(error) => return results.into_iter().map(|_| Err(error.clone())).collect(),
        };
        let mut pending = FuturesOrdered::new();
        for (index, message) in messages.into_iter().enumerate() {
            while pending.len() >= self.inner.confirm_window {
                if let Some((done, result)) = pending.next().await {
                    results[done] = result;
                }
            }
            let encoded = match encode(&self.inner.device, &message) {
                Ok(encoded) => encoded,
                Err(invalid) => {
                    results[index] = Err(invalid.into());
                    continue;
                }
            };
            if session.is_broken() {
                results[index] = Err(PublishError::NotSent { routing_key: encoded.routing_key.to_string() });
                continue;
            }
            match session.send(encoded, &message.body).await {
                Ok(sent) => pending.push_back(async move { (index, sent.confirmed().await) }),
                Err(error) => results[index] = Err(error),
            }
        }
        while let Some((done, result)) = pending.next().await {
            results[done] = result;
        }
        results
    }

    /// The current session, waiting for one while the link is (re)connecting.
    async fn session(&self) -> Result<Arc<Session>, PublishError> {
        let mut sessions = self.inner.sessions.clone();
        loop {
            if self.inner.shutdown.is_cancelled() {
                return Err(PublishError::Shutdown);
            }
            if let Some(session) = sessions.borrow_and_update().as_ref().filter(|s| !s.is_broken()) {
                return Ok(session.clone());
            }
            tokio::select! {
                changed = sessions.changed() => changed.map_err(|_| PublishError::Shutdown)?,
                () = self.inner.shutdown.cancelled() => return Err(PublishError::Shutdown),
            }
        }
    }
}
