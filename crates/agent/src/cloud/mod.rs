//! The agent's link to the control plane (outpost-upstream, the device's `agent` queue):
//! configuration twins arrive and are applied as one deployment ([`cache`]); the agent's
//! reported properties go up as merge patches with sequence numbers; the agent's own direct
//! methods are answered ([`methods`]). Every message is acknowledged after what it says is
//! on disk. Offline, the agent keeps running its last deployment; `outpost deploy -f` still
//! works and is replaced by the next deployment from the cloud.

pub mod cache;
pub mod methods;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use outpost_core::topology::{Component, DownKind, UpKind};
use outpost_upstream::{Downlink, LinkConfig, LinkState, TokenSource, UpMessage, Upstream};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::daemon::Agent;
use cache::{AGENT, CloudCache};

/// How long a publish may wait before the agent moves on (it retries on the next tick).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// How the agent reaches the cloud.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    /// The broker, `amqp://` or `amqps://host:port`.
    pub url: String,
    /// The virtual host.
    pub vhost: String,
    /// The device id (the broker user).
    pub device_id: String,
    /// Where the cache lives.
    pub cache_file: PathBuf,
    /// How often reported properties are compared and sent.
    pub report_interval: Duration,
    /// CA certificates (PEM) to trust for `amqps://`.
    pub ca_pem: Option<String>,
}

/// Why the link cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The link settings are unusable.
    #[error(transparent)]
    Config(#[from] outpost_upstream::ConfigError),
}

fn load(path: &Path) -> CloudCache {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "the cloud cache is unreadable; starting afresh");
            CloudCache::default()
        }),
        Err(_) => CloudCache::default(),
    }
}

fn save(path: &Path, cache: &CloudCache) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(cache).map_err(std::io::Error::other)?;
    outpost_daemon::atomic::write_atomic(path, &bytes, 0o600)
}

struct Link {
    agent: Arc<Agent>,
    upstream: Upstream,
    cache: CloudCache,
    cache_file: PathBuf,
}

impl Link {
    async fn publish(&self, message: UpMessage) -> bool {
        match tokio::time::timeout(PUBLISH_TIMEOUT, self.upstream.publish(message)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot send to the cloud");
                false
            }
            Err(_) => false,
        }
    }

    /// Applies a twin: cache on disk first, then the deployment the twins make.
    fn take_twin(&mut self, downlink: &Downlink) -> Result<(), String> {
        let module = downlink.module.clone().ok_or("a twin without x-outpost-module")?;
        let body: Value = serde_json::from_slice(&downlink.body).map_err(|e| format!("twin is not JSON: {e}"))?;
        let Some(Value::Object(desired)) = body.get("desired").cloned() else {
            return Err("twin has no desired properties".into());
        };
        if !self.cache.take(&module, desired) {
            return Ok(());
        }
        save(&self.cache_file, &self.cache).map_err(|e| format!("cannot save {}: {e}", self.cache_file.display()))?;
        if let Some(manifest) = self.cache.manifest()
            && manifest != self.agent.deployment_text()
        {
            match self.agent.apply(&manifest) {
                Ok(modules) => tracing::info!(twin = %module, modules, "deployment from the cloud applied"),
                // Refused (reported as lastDesiredStatus 400): the running deployment stays.
                Err(e) => tracing::warn!(twin = %module, error = %e, "deployment from the cloud refused"),
            }
        }
        Ok(())
    }

    async fn answer(&self, downlink: &Downlink) {
        let method = downlink.method.clone().unwrap_or_default();
        let payload: Value = serde_json::from_slice(&downlink.body).unwrap_or(Value::Null);
        let (status, body) = methods::handle(&self.agent, &method, &payload).await;
        tracing::info!(%method, status, "direct method answered");
        let message = UpMessage {
            module: Some(AGENT.into()),
            kind: UpKind::MethodResponse,
            body: Bytes::from(body.to_string()),
            correlation_id: downlink.correlation_id.clone(),
            status: Some(status),
            content_type: Some("application/json".into()),
            ..UpMessage::default()
        };
        self.publish(message).await;
    }

    async fn handle(&mut self, downlink: Downlink) {
        let outcome = match downlink.kind {
            DownKind::Twin => self.take_twin(&downlink),
            DownKind::MethodRequest => {
                self.answer(&downlink).await;
                Ok(())
            }
            other => Err(format!("the agent's queue does not carry {}", other.word())),
        };
        let result = match outcome {
            Ok(()) => downlink.ack().await,
            Err(reason) => {
                tracing::warn!(%reason, "refusing a message from the cloud");
                downlink.reject(&reason).await
            }
        };
        if let Err(e) = result {
            // Redelivered after the reconnection; taking it again changes nothing.
            tracing::debug!(error = %e, "acknowledgement lost");
        }
    }

    async fn report(&mut self) {
        let Value::Object(current) = self.agent.reported_properties() else { return };
        let Some(patch) = self.cache.reported.patch(AGENT, &current) else { return };
        let sequence = self.cache.reported.next_sequence(outpost_upstream::now_ms());
        if let Err(e) = save(&self.cache_file, &self.cache) {
            tracing::warn!(path = %self.cache_file.display(), error = %e, "cannot save the cloud cache");
            return;
        }
        let message = UpMessage {
            module: Some(AGENT.into()),
            kind: UpKind::Reported,
            body: Bytes::from(Value::Object(patch).to_string()),
            seq: Some(sequence),
            content_type: Some("application/json".into()),
            ..UpMessage::default()
        };
        if self.publish(message).await {
            self.cache.reported.confirmed(AGENT, current);
            if let Err(e) = save(&self.cache_file, &self.cache) {
                tracing::warn!(path = %self.cache_file.display(), error = %e, "cannot save the cloud cache");
            }
        }
    }

    /// Asks for every configuration twin (catching up after time offline or a lost cache).
    async fn catch_up(&self) {
        let message = UpMessage {
            module: None,
            kind: UpKind::TwinGet,
            headers: vec![(outpost_core::topology::COMPONENT_HEADER.into(), Component::Agent.word().into())],
            ..UpMessage::default()
        };
        self.publish(message).await;
    }
}

/// Runs the link until `shutdown`.
pub async fn run(
    settings: CloudSettings,
    agent: Arc<Agent>,
    tokens: Arc<dyn TokenSource>,
    shutdown: CancellationToken,
) -> Result<(), CloudError> {
    let config =
        LinkConfig::new(settings.url.clone(), settings.vhost.clone(), settings.device_id.clone(), Component::Agent);
    let link = Upstream::start(config, tokens, shutdown.child_token())?;
    let mut state = link.upstream.state();
    let mut downlinks = link.downlinks;
    let mut this =
        Link { agent, upstream: link.upstream, cache: load(&settings.cache_file), cache_file: settings.cache_file };
    let mut tick = tokio::time::interval(settings.report_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(url = %settings.url, device = %settings.device_id, "following the cloud");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            downlink = downlinks.recv() => match downlink {
                Some(downlink) => this.handle(downlink).await,
                None => break,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let connected = matches!(*state.borrow_and_update(), LinkState::Connected);
                if connected {
                    this.catch_up().await;
                    this.report().await;
                }
            }
            _ = tick.tick() => {
                if matches!(*state.borrow(), LinkState::Connected) {
                    this.report().await;
                }
            }
        }
    }
    let _ = link.task.await;
    Ok(())
}
