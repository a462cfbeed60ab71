//! The control plane's connection to RabbitMQ: one connection as the service user, the
//! topology declared on every (re)connection, device queues kept in step with the registry
//! (declared when a device is created and for every registered device after a reconnection,
//! deleted with the device), twins delivered from the outbox, and the inbound queues
//! consumed ([`inbound`]). Reconnects with jittered backoff.

pub mod inbound;
pub mod outbox;
pub mod presence;
pub mod topology;

use std::sync::Arc;
use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::topology::QueueType;
use crate::service::Cloud;

/// What the registry tells the broker link.
#[derive(Debug)]
pub enum RegistryEvent {
    /// A device was created: declare its queues.
    DeviceCreated(String),
    /// A device was deleted: delete its queues.
    DeviceDeleted(String),
    /// A twin's desired properties changed: deliver it (it waits in the outbox).
    TwinChanged(crate::store::TwinKey),
    /// Publish a message to a device; the outcome goes back on the channel.
    Send(Box<Outgoing>, tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// A message for a device component (method requests, cloud-to-device messages).
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    /// The device.
    pub device: String,
    /// The module it is for (selects the component queue); empty for the device.
    pub module: String,
    /// What it is.
    pub kind: Option<outpost_core::topology::DownKind>,
    /// The body.
    pub body: Vec<u8>,
    /// The correlation id.
    pub correlation_id: Option<String>,
    /// The message id.
    pub message_id: Option<String>,
    /// Headers (application properties and `x-outpost-*`).
    pub headers: Vec<(String, String)>,
    /// Dropped by the broker if not consumed within this many milliseconds.
    pub expiration_ms: Option<u64>,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// `amqp://host:port` (or `amqps://`), without credentials or virtual host.
    pub url: String,
    /// The virtual host.
    pub vhost: String,
    /// The service user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// Queue type of every declared queue.
    pub queue_type: QueueType,
    /// CA certificates (PEM) to trust for `amqps://`.
    pub ca_pem: Option<String>,
}

/// Devices declared per registry page on reconnection.
const PAGE: usize = 500;
/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl LinkConfig {
    /// The full AMQP URI with credentials and virtual host.
    pub fn uri(&self) -> String {
        let url = self.url.trim_end_matches('/');
        let (scheme, rest) = url.split_once("://").unwrap_or(("amqp", url));
        format!("{scheme}://{}:{}@{rest}/{}", encode(&self.user), encode(&self.password), encode(&self.vhost))
    }
}

/// A delay between `base` and twice `base`, so that many clients do not retry in step.
pub fn jittered(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

/// Why the link stopped working (it reconnects).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The broker connection or a channel failed.
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    /// The broker refused something.
    #[error("{0}")]
    Refused(String),
    /// The store failed.
    #[error(transparent)]
    Cloud(#[from] crate::error::CloudError),
    /// A blocking task failed.
    #[error("a store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

async fn connect(config: &LinkConfig) -> Result<(Connection, Channel), lapin::Error> {
    let properties = ConnectionProperties::default().with_connection_name("outpost-cloud".into());
    let connection = match &config.ca_pem {
        Some(pem) => {
            let tls = lapin::tcp::OwnedTLSConfig { identity: None, cert_chain: Some(pem.clone()) };
            Connection::connect_with_config(&config.uri(), properties, tls, async_rs::Runtime::tokio_current()).await?
        }
        None => Connection::connect(&config.uri(), properties).await?,
    };
    let channel = connection.create_channel().await?;
    channel.confirm_select(lapin::options::ConfirmSelectOptions::default()).await?;
    Ok((connection, channel))
}

async fn reconcile(channel: &Channel, cloud: &Arc<Cloud>, queue_type: QueueType) -> Result<usize, LinkError> {
    topology::declare(channel, queue_type).await?;
    let mut after = String::new();
    let mut count = 0;
    loop {
        let page = {
            let (cloud, after) = (cloud.clone(), after.clone());
            tokio::task::spawn_blocking(move || cloud.devices(&after, PAGE)).await??
        };
        for device in &page {
            topology::declare_device(channel, &device.id, queue_type).await?;
        }
        count += page.len();
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.id.clone(),
            _ => return Ok(count),
        }
    }
}

/// Applies registry events until the channel fails or `shutdown`.
async fn follow_registry(
    channel: &Channel,
    cloud: &Arc<Cloud>,
    queue_type: QueueType,
    events: &mut mpsc::UnboundedReceiver<RegistryEvent>,
    shutdown: &CancellationToken,
) -> Result<(), LinkError> {
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            event = events.recv() => match event {
                Some(event) => event,
                None => return Ok(()),
            },
        };
        match event {
            RegistryEvent::DeviceCreated(device) => topology::declare_device(channel, &device, queue_type).await?,
            RegistryEvent::DeviceDeleted(device) => topology::delete_device(channel, &device).await?,
            // The outbox holds the version; delivering reads the twin as it is now.
            RegistryEvent::TwinChanged(_) => {
                outbox::deliver_all(channel, cloud).await?;
            }
            RegistryEvent::Send(message, reply) => {
                let result = outbox::send_outgoing(channel, &message).await;
                let failed = result.as_ref().err().map(ToString::to_string);
                let _ = reply.send(result.map_err(|e| e.to_string()));
                if let Some(error) = failed {
                    tracing::warn!(device = %message.device, %error, "cannot send a message to a device");
                }
            }
        }
    }
}

/// One connection's life: declare, catch up, then follow the registry and consume.
async fn session(
    config: &LinkConfig,
    connection: &Connection,
    channel: &Channel,
    cloud: &Arc<Cloud>,
    events: &mut mpsc::UnboundedReceiver<RegistryEvent>,
    shutdown: &CancellationToken,
) -> Result<(), LinkError> {
    let devices = reconcile(channel, cloud, config.queue_type).await?;
    let delivered = outbox::deliver_all(channel, cloud).await?;
    tracing::info!(url = %config.url, devices, delivered, "connected to the message broker; topology declared");
    let stop = shutdown.child_token();
    let _stop_others = stop.clone().drop_guard();
    tokio::select! {
        result = follow_registry(channel, cloud, config.queue_type, events, &stop) => result,
        result = inbound::twins(connection, cloud.clone(), stop.clone()) => result,
        result = inbound::telemetry(connection, cloud.clone(), stop.clone()) => result,
        result = inbound::method_responses(connection, cloud.clone(), stop.clone()) => result,
        result = presence::follow(connection, cloud.clone(), config.user.clone(), stop.clone()) => result,
    }
}

/// Keeps the link up until `shutdown`, applying registry events and delivering twins.
pub async fn run(
    config: LinkConfig,
    cloud: Arc<Cloud>,
    mut events: mpsc::UnboundedReceiver<RegistryEvent>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        match connect(&config).await {
            Ok((connection, channel)) => {
                let result = session(&config, &connection, &channel, &cloud, &mut events, &shutdown).await;
                let _ = connection.close(200, "closing".into()).await;
                match result {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(url = %config.url, error = %e, "lost the message broker; reconnecting"),
                }
                backoff = Duration::from_millis(500);
            }
            Err(e) => {
                tracing::warn!(url = %config.url, error = %e, retry_in = ?backoff, "cannot connect to the message broker");
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(jittered(backoff)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_carries_encoded_credentials_and_vhost() {
        let config = LinkConfig {
            url: "amqp://127.0.0.1:5672/".into(),
            vhost: "outpost".into(),
            user: "outpost-cloud".into(),
            password: "a/b@c".into(),
            queue_type: QueueType::Classic,
            ca_pem: None,
        };
        assert_eq!(config.uri(), "amqp://outpost%2Dcloud:a%2Fb%40c@127.0.0.1:5672/outpost");
    }

    #[test]
    fn jitter_stays_within_twice_the_base() {
        let base = Duration::from_millis(100);
        let d = jittered(base);
        assert!(d >= base && d < base * 2);
    }
}
