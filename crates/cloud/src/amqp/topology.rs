//! Declares the control plane's topology on RabbitMQ, idempotently: the exchanges, the
//! built-in events endpoint, the dead-letter queue, the cloud's inbound queues and every
//! device's queues. Names come from [`outpost_core::topology`].

use lapin::options::{
    ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};
use outpost_core::topology::{
    self, C2D_EXCHANGE, Component, D2C_EXCHANGE, DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, UpKind,
};
use serde::Deserialize;

/// The cloud's queue of telemetry (the operators' event stream).
pub const TELEMETRY_QUEUE: &str = "outpost.cloud.telemetry";
/// The cloud's queue of twin traffic: reported patches and twin requests.
pub const TWIN_QUEUE: &str = "outpost.cloud.twin";
/// The cloud's queue of direct-method answers.
pub const METHODS_QUEUE: &str = "outpost.cloud.methods";

/// RabbitMQ's queue types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Classic durable queues: a single node.
    #[default]
    Classic,
    /// Raft-replicated queues for a cluster.
    Quorum,
}

impl QueueType {
    fn word(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Quorum => "quorum",
        }
    }
}

fn queue_arguments(queue_type: QueueType) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from(queue_type.word())));
    args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(LongString::from(DEAD_LETTER_EXCHANGE)));
    args
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() }
}

async fn durable_queue(channel: &Channel, name: &str, args: FieldTable) -> Result<(), lapin::Error> {
    channel.queue_declare(name.into(), QueueDeclareOptions::durable(), args).await.map(|_| ())
}

/// The routing-key pattern of one kind from every device and module.
fn every(kind: UpKind) -> String {
    format!("*.*.{}", kind.word())
}

/// Declares the exchanges and the cloud's queues.
pub async fn declare(channel: &Channel, queue_type: QueueType) -> Result<(), lapin::Error> {
    let none = FieldTable::default;
    channel.exchange_declare(D2C_EXCHANGE.into(), ExchangeKind::Topic, durable_exchange(), none()).await?;
    channel.exchange_declare(C2D_EXCHANGE.into(), ExchangeKind::Direct, durable_exchange(), none()).await?;
    channel.exchange_declare(EVENTS_EXCHANGE.into(), ExchangeKind::Topic, durable_exchange(), none()).await?;
    channel.exchange_declare(DEAD_LETTER_EXCHANGE.into(), ExchangeKind::Fanout, durable_exchange(), none()).await?;
    // The built-in endpoint: telemetry reaches it inside the broker, whether or not the cloud runs.
    channel
        .exchange_bind(
            EVENTS_EXCHANGE.into(),
            D2C_EXCHANGE.into(),
            every(UpKind::Telemetry).into(),
            ExchangeBindOptions::default(),
            none(),
        )
        .await?;
    let mut dead_args = FieldTable::default();
    dead_args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from(queue_type.word())));
    durable_queue(channel, DEAD_LETTER_QUEUE, dead_args).await?;
    channel
        .queue_bind(
            DEAD_LETTER_QUEUE.into(),
            DEAD_LETTER_EXCHANGE.into(),
            "".into(),
            QueueBindOptions::default(),
            none(),
        )
        .await?;
    let inbound: [(&str, &[UpKind]); 3] = [
        (TELEMETRY_QUEUE, &[UpKind::Telemetry]),
        (TWIN_QUEUE, &[UpKind::Reported, UpKind::TwinGet]),
        (METHODS_QUEUE, &[UpKind::MethodResponse]),
    ];
    for (queue, kinds) in inbound {
        durable_queue(channel, queue, queue_arguments(queue_type)).await?;
        for kind in kinds {
            channel
                .queue_bind(queue.into(), D2C_EXCHANGE.into(), every(*kind).into(), QueueBindOptions::default(), none())
                .await?;
        }
    }
    Ok(())
}

/// Declares a device's queues, bound to the cloud → device exchange.
pub async fn declare_device(channel: &Channel, device: &str, queue_type: QueueType) -> Result<(), lapin::Error> {
    for component in Component::ALL {
        let queue = topology::device_queue(device, component);
        durable_queue(channel, &queue, queue_arguments(queue_type)).await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                C2D_EXCHANGE.into(),
                topology::down_key(device, component).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Deletes a device's queues with whatever waits in them.
pub async fn delete_device(channel: &Channel, device: &str) -> Result<(), lapin::Error> {
    for component in Component::ALL {
        let queue = topology::device_queue(device, component);
        channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await?;
    }
    Ok(())
}
