//! One signed-in connection: a confirm-mode channel publishing to `outpost.d2c` and a channel
//! consuming the device component's queue with manual acknowledgements. A session never
//! recovers: the first failure marks it broken and the supervisor replaces it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Confirmation, Connection, ConnectionProperties, Consumer, Event, PublisherConfirm};
use outpost_core::topology::{D2C_EXCHANGE, device_queue};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::config::LinkConfig;
use crate::downlink::{Downlink, decode};
use crate::error::{ConnectError, PublishError, refuses_sign_in};
use crate::gauge::{Gauge, GaugeGuard};
use crate::message::Encoded;

/// The longest a sign-in with its channel setup may take (an unreachable host can otherwise
/// hold a TCP connect for minutes).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection's events (errors of the connection and its channels).
pub(crate) type Events = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// A live connection and its two channels.
#[derive(Debug)]
pub(crate) struct Session {
    url: String,
    queue: String,
    consumer_tag: String,
    connection: Connection,
    publisher: Channel,
    /// Held from a publish's delivery-tag assignment until its frames are queued: lapin takes
    /// the two steps under different locks, and confirms are matched by tag.
    publish_order: tokio::sync::Mutex<()>,
    consumer: Channel,
    /// Set when we cancel the consumer ourselves, so that its end is no failure.
    stopping: AtomicBool,
    broken: CancellationToken,
    failure: Mutex<Option<lapin::Error>>,
    in_flight: Gauge,
    unsettled: Gauge,
}

/// A message handed to the broker, awaiting its confirm.
pub(crate) struct Pending {
    session: Arc<Session>,
    routing_key: ShortString,
    confirm: PublisherConfirm,
    _in_flight: GaugeGuard,
}

impl Session {
    /// Signs in and sets up both channels (not yet consuming: see [`consume`](Self::consume)),
    /// within [`CONNECT_TIMEOUT`].
    pub(crate) async fn open(
        config: &LinkConfig,
        uri: &str,
        generation: u64,
    ) -> Result<(Arc<Session>, Events), ConnectError> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::open_now(config, uri, generation))
            .await
            .unwrap_or_else(|_| Err(ConnectError::TimedOut { url: config.url.clone(), timeout: CONNECT_TIMEOUT }))
    }

    async fn open_now(config: &LinkConfig, uri: &str, generation: u64) -> Result<(Arc<Session>, Events), ConnectError> {
        let url = config.url.clone();
        let name = format!("outpost-{} {} #{generation}", config.component, config.device_id);
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let connected = match &config.ca_pem {
            Some(pem) => {
                let tls = lapin::tcp::OwnedTLSConfig { identity: None, cert_chain: Some(pem.clone()) };
                Connection::connect_with_config(uri, properties, tls, async_rs::Runtime::tokio_current()).await
            }
            None => Connection::connect(uri, properties).await,
        };
        let connection = connected.map_err(|source| {
            if refuses_sign_in(&source) {
                ConnectError::SignIn { device: config.device_id.clone(), source }
            } else {
                ConnectError::Connect { url: url.clone(), source }
            }
        })?;
        let events: Events = Box::pin(connection.events_listener());
        match channels(&connection, config.prefetch).await {
            Ok((publisher, consumer)) => {
                let session = Session {
                    queue: device_queue(&config.device_id, config.component),
                    consumer_tag: format!("outpost-{}-{generation}", config.component),
                    url,
                    connection,
                    publisher,
                    publish_order: tokio::sync::Mutex::new(()),
                    consumer,
                    stopping: AtomicBool::new(false),
                    broken: CancellationToken::new(),
                    failure: Mutex::new(None),
                    in_flight: Gauge::new(),
                    unsettled: Gauge::new(),
                };
                Ok((Arc::new(session), events))
            }
            Err((step, source)) => {
                let _ = connection.close(200, "setup failed".into()).await;
                Err(ConnectError::Channel { step, url, source })
            }
        }
    }

    /// Starts consuming the queue; the forwarding task (on `tracker`) hands each delivery to
    /// `downlinks` and dead-letters the unusable ones.
    pub(crate) async fn consume(
        self: &Arc<Self>,
        downlinks: mpsc::UnboundedSender<Downlink>,
        tracker: &TaskTracker,
    ) -> Result<tokio::task::JoinHandle<()>, ConnectError> {
        let options = BasicConsumeOptions { no_ack: false, ..BasicConsumeOptions::default() };
        let consumer = self
            .consumer
            .basic_consume(
                self.queue.as_str().into(),
                self.consumer_tag.as_str().into(),
                options,
                FieldTable::default(),
            )
            .await
            .map_err(|source| {
                self.fail(Some(source.clone()));
                ConnectError::Consume { queue: self.queue.clone(), source }
            })?;
        Ok(tracker.spawn(self.clone().forward(consumer, downlinks).in_current_span()))
    }

    async fn forward(self: Arc<Self>, mut consumer: Consumer, downlinks: mpsc::UnboundedSender<Downlink>) {
        loop {
            let delivery = match consumer.next().await {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => {
                    self.fail(Some(error));
                    return;
                }
                // Cancelled: by us (token refresh, shutdown) or by the broker (queue deleted).
                None => {
                    if !self.stopping.load(Ordering::Acquire) {
                        self.fail(None);
                    }
                    return;
                }
            };
            match decode(&delivery.properties) {
                Ok(metadata) => {
                    let downlink = metadata.into_downlink(
                        Bytes::from(delivery.data),
                        delivery.redelivered,
                        delivery.acker,
                        self.unsettled.enter(),
                    );
                    if downlinks.send(downlink).is_err() {
                        // Nobody receives any more: what is unacknowledged waits in the queue.
                        return;
                    }
                }
                Err(reason) => {
                    tracing::warn!(queue = %self.queue, %reason, "dead-lettering an unusable message from the cloud");
                    let nack = BasicNackOptions { multiple: false, requeue: false };
                    if let Err(error) = delivery.acker.nack(nack).await {
                        self.fail(Some(error));
                        return;
                    }
                }
            }
        }
    }

    /// Stops consuming; deliveries already received stay to be settled.
    pub(crate) async fn stop_consuming(&self) {
        self.stopping.store(true, Ordering::Release);
        let cancelled = self.consumer.basic_cancel(self.consumer_tag.as_str().into(), BasicCancelOptions::default());
        if let Err(error) = cancelled.await {
            self.fail(Some(error));
        }
    }

    /// Hands a message to the broker; await [`Pending::confirmed`] for the broker's answer.
    pub(crate) async fn send(self: &Arc<Self>, encoded: Encoded, body: &[u8]) -> Result<Pending, PublishError> {
        let in_flight = self.in_flight.enter();
        let options = BasicPublishOptions { mandatory: true, immediate: false };
        let sent = {
            let _order = self.publish_order.lock().await;
            self.publisher
                .basic_publish(D2C_EXCHANGE.into(), encoded.routing_key.clone(), options, body, encoded.properties)
                .await
        };
        match sent {
            Ok(confirm) => {
                Ok(Pending { session: self.clone(), routing_key: encoded.routing_key, confirm, _in_flight: in_flight })
            }
            Err(source) => {
                self.fail(Some(source.clone()));
                Err(PublishError::Unconfirmed { routing_key: encoded.routing_key.to_string(), source })
            }
        }
    }

    /// Marks the session broken (keeping the first cause).
    pub(crate) fn fail(&self, error: Option<lapin::Error>) {
        if let Ok(mut failure) = self.failure.lock()
            && failure.is_none()
        {
            *failure = error;
        }
        self.broken.cancel();
    }

    /// Whether the session has failed.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.is_cancelled()
    }

    /// Resolves when the session fails.
    pub(crate) async fn failed(&self) {
        self.broken.cancelled().await;
    }

    /// What the failure of the session was.
    pub(crate) fn lost(&self) -> ConnectError {
        let source = self.failure.lock().ok().and_then(|failure| failure.clone());
        ConnectError::Lost { url: self.url.clone(), source }
    }

    /// Waits (at most `timeout`, and not past a failure) for the confirms and the
    /// acknowledgements still due on this connection.
    pub(crate) async fn drain(&self, timeout: Duration) {
        let settled = async {
            self.in_flight.zero().await;
            self.unsettled.zero().await;
        };
        tokio::select! {
            () = settled => {}
            () = self.failed() => {}
            () = tokio::time::sleep(timeout) => {
                tracing::debug!(
                    unconfirmed = self.in_flight.get(),
                    unsettled = self.unsettled.get(),
                    "closing a connection with work still due; it fails back or is redelivered"
                );
            }
        }
    }

    /// Closes the connection: unconfirmed publishes fail, unacknowledged deliveries return to
    /// the queue.
    pub(crate) async fn close(&self, reason: &str) {
        if self.connection.status().connected() {
            let _ = self.connection.close(200, reason.into()).await;
        }
        self.broken.cancel();
    }
}

async fn channels(connection: &Connection, prefetch: u16) -> Result<(Channel, Channel), (&'static str, lapin::Error)> {
    let publisher = connection.create_channel().await.map_err(|e| ("open the publishing channel", e))?;
    publisher.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| ("enable publisher confirms", e))?;
    let consumer = connection.create_channel().await.map_err(|e| ("open the consuming channel", e))?;
    consumer.basic_qos(prefetch, BasicQosOptions::default()).await.map_err(|e| ("set the prefetch", e))?;
    Ok((publisher, consumer))
}

impl Pending {
    /// The broker's answer: acknowledged, refused, returned unroutable, or never (the
    /// connection closed).
    pub(crate) async fn confirmed(self) -> Result<(), PublishError> {
        let Pending { session, routing_key, confirm, _in_flight } = self;
        match confirm.await {
            Ok(Confirmation::Ack(None)) => Ok(()),
            Ok(Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned))) => {
                Err(PublishError::Unroutable {
                    routing_key: routing_key.to_string(),
                    reply_code: returned.reply_code,
                    reply_text: returned.reply_text.to_string(),
                })
            }
            // `NotRequested` cannot happen on a confirm-mode channel; it is no confirm either.
            Ok(Confirmation::Nack(None) | Confirmation::NotRequested) => {
                Err(PublishError::Nacked { routing_key: routing_key.to_string() })
            }
            Err(source) => {
                session.fail(Some(source.clone()));
                Err(PublishError::Unconfirmed { routing_key: routing_key.to_string(), source })
            }
        }
    }
}
