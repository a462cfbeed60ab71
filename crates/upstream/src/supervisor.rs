//! The task that keeps the link up: signs in with a fresh token, reconnects with jittered
//! exponential backoff after any failure, and signs in again before the token expires.
//!
//! A token refresh opens the new connection first and moves publishing to it at once; then
//! it cancels the old consumer, waits for the deliveries already received from it to be
//! queued (so downlinks stay in order), starts consuming on the new connection, and closes
//! the old one once its confirms and acknowledgements are in (bounded by `drain_timeout`).
//! Publishes still unconfirmed then fail back to their callers, who retry; unacknowledged
//! downlinks return to the queue and are delivered again.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use lapin::Event;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::backoff::{Backoff, jitter};
use crate::config::LinkConfig;
use crate::downlink::Downlink;
use crate::error::ConnectError;
use crate::session::{Events, Session};
use crate::state::LinkState;
use crate::token::{TokenSource, refresh_delay};

/// A connection that stayed up this long resets the backoff: a link that drops right after
/// signing in keeps backing off instead of reconnecting at once every time.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// The supervisor's wiring.
pub(crate) struct Supervisor {
    pub(crate) config: LinkConfig,
    pub(crate) tokens: Arc<dyn TokenSource>,
    pub(crate) sessions: watch::Sender<Option<Arc<Session>>>,
    pub(crate) state: watch::Sender<LinkState>,
    pub(crate) downlinks: mpsc::UnboundedSender<Downlink>,
    pub(crate) shutdown: CancellationToken,
}

/// The session in use.
struct Live {
    session: Arc<Session>,
    events: Events,
    /// The task forwarding its deliveries; `None` if consuming failed (the session is broken).
    forwarder: Option<JoinHandle<()>>,
    refresh_at: Instant,
    since: Instant,
}

/// How serving a session ended.
enum Ended {
    Lost(ConnectError),
    Shutdown,
}

impl Supervisor {
    /// Runs until shutdown; then closes the connection and waits for its tasks.
    pub(crate) async fn run(self) {
        let tracker = TaskTracker::new();
        let mut runner = Runner { supervisor: &self, tracker: &tracker, generation: 0 };
        runner.run().await;
        self.sessions.send_replace(None);
        self.state.send_replace(LinkState::Stopped);
        tracker.close();
        tracker.wait().await;
        tracing::info!("upstream link stopped");
    }
}

struct Runner<'a> {
    supervisor: &'a Supervisor,
    tracker: &'a TaskTracker,
    generation: u64,
}

impl Runner<'_> {
    async fn run(&mut self) {
        let sup = self.supervisor;
        let mut backoff = Backoff::default();
        let mut last_error: Option<Arc<ConnectError>> = None;
        loop {
            sup.state.send_replace(LinkState::Connecting {
                attempt: backoff.failures() + 1,
                last_error: last_error.clone(),
            });
            let opened = tokio::select! {
                () = sup.shutdown.cancelled() => return,
                opened = self.connect() => opened,
            };
            let error = match opened {
                Ok(live) => {
                    tracing::info!(url = %sup.config.url, "connected to the control plane");
                    sup.sessions.send_replace(Some(live.session.clone()));
                    sup.state.send_replace(LinkState::Connected);
                    match self.serve(live, &mut backoff).await {
                        Ended::Shutdown => return,
                        Ended::Lost(error) => error,
                    }
                }
                Err(error) => error,
            };
            let delay = backoff.next_delay(jitter());
            tracing::warn!(error = %DisplayChain(&error), retry_in = ?delay, "upstream link down");
            last_error = Some(Arc::new(error));
            sup.state.send_replace(LinkState::Connecting {
                attempt: backoff.failures() + 1,
                last_error: last_error.clone(),
            });
            tokio::select! {
                () = sup.shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Signs in with a new token; the session is not consuming yet.
    async fn open(&mut self) -> Result<(Arc<Session>, Events, Instant), ConnectError> {
        let config = &self.supervisor.config;
        let token = self
            .supervisor
            .tokens
            .token(config.token_ttl_secs)
            .await
            .map_err(|source| ConnectError::Token { device: config.device_id.clone(), source })?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let refresh_at = Instant::now() + refresh_delay(now, token.expiry_unix_secs);
        let uri = config.uri(&token.secret).expect("the url was validated when the link started");
        self.generation += 1;
        let (session, events) = Session::open(config, &uri, self.generation).await?;
        Ok((session, events, refresh_at))
    }

    /// Signs in and starts consuming.
    async fn connect(&mut self) -> Result<Live, ConnectError> {
        let (session, events, refresh_at) = self.open().await?;
        match session.consume(self.supervisor.downlinks.clone(), self.tracker).await {
            Ok(forwarder) => {
                Ok(Live { session, events, forwarder: Some(forwarder), refresh_at, since: Instant::now() })
            }
            Err(error) => {
                session.close("cannot consume").await;
                Err(error)
            }
        }
    }

    /// Serves `live` until it fails or the link shuts down, refreshing the token on time.
    async fn serve(&mut self, mut live: Live, backoff: &mut Backoff) -> Ended {
        let sup = self.supervisor;
        let mut refresh_backoff = Backoff::default();
        loop {
            tokio::select! {
                () = sup.shutdown.cancelled() => {
                    sup.sessions.send_replace(None);
                    self.retire(live.session, live.forwarder, "shutting down").await;
                    return Ended::Shutdown;
                }
                () = live.session.failed() => {
                    sup.sessions.send_replace(None);
                    live.session.close("failed").await;
                    if live.since.elapsed() >= STABLE_AFTER {
                        backoff.reset();
                    }
                    return Ended::Lost(live.session.lost());
                }
                event = live.events.next() => match event {
                    Some(Event::Error(error)) => live.session.fail(Some(error)),
                    Some(Event::ConnectionBlocked(reason)) => tracing::warn!(%reason, "the broker blocks publishing"),
                    Some(Event::ConnectionUnblocked) => tracing::info!("the broker unblocks publishing"),
                    Some(_) => {}
                    None => live.session.fail(None),
                },
                () = tokio::time::sleep_until(live.refresh_at) => {
                    let opened = tokio::select! {
                        () = sup.shutdown.cancelled() => continue,
                        () = live.session.failed() => continue,
                        opened = self.open() => opened,
                    };
                    match opened {
                        Ok((session, events, refresh_at)) => {
                            refresh_backoff.reset();
                            live = self.replace(live, session, events, refresh_at).await;
                        }
                        Err(error) => {
                            // The old connection stays usable: the broker checks tokens only at sign-in.
                            let delay = refresh_backoff.next_delay(jitter());
                            let error = DisplayChain(&error);
                            tracing::warn!(%error, retry_in = ?delay, "cannot refresh the upstream link's token");
                            live.refresh_at = Instant::now() + delay;
                        }
                    }
                }
            }
        }
    }

    /// Moves the link to `session` (signed in with a fresh token) and retires the old one.
    async fn replace(&mut self, old: Live, session: Arc<Session>, events: Events, refresh_at: Instant) -> Live {
        let sup = self.supervisor;
        sup.sessions.send_replace(Some(session.clone()));
        old.session.stop_consuming().await;
        // Everything the old consumer received is queued before the new one's first delivery.
        if let Some(old_forwarder) = old.forwarder
            && tokio::time::timeout(sup.config.drain_timeout, old_forwarder).await.is_err()
        {
            tracing::warn!("the old consumer did not stop in time; downlinks may arrive out of order");
        }
        let forwarder = match session.consume(sup.downlinks.clone(), self.tracker).await {
            Ok(forwarder) => Some(forwarder),
            // The session is marked broken: `serve` reconnects.
            Err(error) => {
                tracing::warn!(error = %DisplayChain(&error), "cannot consume on the refreshed connection");
                None
            }
        };
        let (retiring, drain) = (old.session, sup.config.drain_timeout);
        self.tracker.spawn(
            async move {
                retiring.drain(drain).await;
                retiring.close("token refresh").await;
            }
            .in_current_span(),
        );
        tracing::debug!(generation = self.generation, "upstream link signed in again with a fresh token");
        Live { session, events, forwarder, refresh_at, since: old.since }
    }

    /// Stops consuming, waits for what is due on the session, then closes it.
    async fn retire(&self, session: Arc<Session>, forwarder: Option<JoinHandle<()>>, reason: &str) {
        session.stop_consuming().await;
        session.drain(self.supervisor.config.drain_timeout).await;
        session.close(reason).await;
        if let Some(forwarder) = forwarder {
            let _ = forwarder.await;
        }
    }
}

/// An error with its sources, for logs: `a: b: c`.
struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
