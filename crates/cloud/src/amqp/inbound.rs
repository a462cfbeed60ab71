//! What devices send the cloud: reported patches and twin requests (`outpost.cloud.twin`) and
//! telemetry (`outpost.cloud.telemetry`). Each message is acknowledged only after it is
//! handled (a reported patch durable in the store, a twin answer confirmed by the broker); a
//! message that can never be handled goes to the dead-letter exchange with the reason.

use std::sync::Arc;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection};
use outpost_core::topology::{
    self, COMPONENT_HEADER, Component, DEAD_LETTER_EXCHANGE, DownKind, REASON_HEADER, UpKind,
};
use serde_json::Value;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::LinkError;
use super::outbox::{send, twin_body};
use super::topology::{METHODS_QUEUE, TELEMETRY_QUEUE, TWIN_QUEUE};
use crate::calls::MethodAnswer;
use crate::error::CloudError;
use crate::service::{Cloud, TelemetryEvent, now_ms};
use crate::store::TwinKey;
use crate::twin::TwinDoc;

/// Unacknowledged deliveries per consumer.
const PREFETCH: u16 = 200;

/// A header as text.
pub fn header(delivery: &Delivery, name: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        AMQPValue::LongLongInt(n) => Some(n.to_string()),
        AMQPValue::LongInt(n) => Some(n.to_string()),
        AMQPValue::LongUInt(n) => Some(n.to_string()),
        AMQPValue::ShortInt(n) => Some(n.to_string()),
        AMQPValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Moves a message that can never be handled to the dead-letter exchange with `reason`,
/// then acknowledges it.
async fn dead_letter(channel: &Channel, delivery: &Delivery, reason: &str) -> Result<(), LinkError> {
    tracing::warn!(routing_key = %delivery.routing_key, %reason, "dead-lettering a message");
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(REASON_HEADER.into(), AMQPValue::LongString(LongString::from(reason)));
    headers
        .insert("x-outpost-routing-key".into(), AMQPValue::LongString(LongString::from(delivery.routing_key.as_str())));
    let properties = delivery.properties.clone().with_headers(headers).with_delivery_mode(2);
    let confirm = channel
        .basic_publish(
            DEAD_LETTER_EXCHANGE.into(),
            "".into(),
            BasicPublishOptions::default(),
            &delivery.data,
            properties,
        )
        .await?
        .await?;
    if !confirm.is_ack() {
        return Err(LinkError::Refused("the broker refused a dead letter".into()));
    }
    delivery.acker.ack(BasicAckOptions::default()).await?;
    Ok(())
}

/// What became of one message.
enum Outcome {
    /// Handled: acknowledge.
    Done,
    /// Never usable: dead-letter with this reason.
    Poison(String),
}

fn poison_or_fail(error: CloudError) -> Result<Outcome, LinkError> {
    match error {
        CloudError::Store(e) => Err(LinkError::Cloud(CloudError::Store(e))),
        other => Ok(Outcome::Poison(other.to_string())),
    }
}

async fn handle_twin(channel: &Channel, cloud: &Arc<Cloud>, delivery: &Delivery) -> Result<Outcome, LinkError> {
    let Some(key) = topology::parse_up_key(delivery.routing_key.as_str()) else {
        return Ok(Outcome::Poison(format!("routing key {:?} names no device, module and kind", delivery.routing_key)));
    };
    let module = key.module.clone().unwrap_or_default();
    match key.kind {
        UpKind::Reported => {
            let patch = match serde_json::from_slice::<Value>(&delivery.data) {
                Ok(Value::Object(patch)) => patch,
                Ok(_) => return Ok(Outcome::Poison("a reported patch must be a JSON object".into())),
                Err(e) => return Ok(Outcome::Poison(format!("a reported patch is not JSON: {e}"))),
            };
            let sequence = match header(delivery, "x-outpost-seq").map(|s| s.parse::<u64>()) {
                None => None,
                Some(Ok(n)) => Some(n),
                Some(Err(_)) => return Ok(Outcome::Poison("x-outpost-seq is not a number".into())),
            };
            let cloud = cloud.clone();
            let result =
                tokio::task::spawn_blocking(move || cloud.report(&key.device, &module, &patch, sequence)).await?;
            match result {
                Ok(_) => Ok(Outcome::Done),
                Err(e) => poison_or_fail(e),
            }
        }
        UpKind::TwinGet => {
            // The answer goes to the component that asked; a request for the device itself
            // ($device) is answered with every module twin (an agent starting afresh).
            let component = match header(delivery, COMPONENT_HEADER).as_deref() {
                None | Some("agent") => Component::Agent,
                Some("hub") => Component::Hub,
                Some(other) => return Ok(Outcome::Poison(format!("{COMPONENT_HEADER} {other:?} is not agent or hub"))),
            };
            let twins = {
                let (cloud, device, module) = (cloud.clone(), key.device.clone(), module.clone());
                tokio::task::spawn_blocking(move || -> Result<Vec<(String, TwinDoc)>, CloudError> {
                    if module.is_empty() {
                        Ok(cloud.module_twins(&device)?.into_iter().collect())
                    } else {
                        let twin = cloud.stored_twin(&TwinKey::module(&device, &module))?.unwrap_or_default();
                        Ok(vec![(module, twin)])
                    }
                })
                .await?
            };
            let twins = match twins {
                Ok(twins) => twins,
                Err(e) => return poison_or_fail(e),
            };
            let correlation = delivery.properties.correlation_id().as_ref().map(|c| c.to_string());
            for (module, twin) in twins {
                let body = twin_body(&twin);
                send(channel, &key.device, (component, &module), DownKind::Twin, &body, correlation.as_deref()).await?;
            }
            Ok(Outcome::Done)
        }
        other => Ok(Outcome::Poison(format!("{} does not belong in the twin queue", other.word()))),
    }
}

async fn consumer(connection: &Connection, queue: &str, tag: &str) -> Result<(Channel, lapin::Consumer), LinkError> {
    let channel = connection.create_channel().await?;
    channel.confirm_select(lapin::options::ConfirmSelectOptions::default()).await?;
    channel.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
    let consumer =
        channel.basic_consume(queue.into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default()).await?;
    Ok((channel, consumer))
}

/// Consumes the twin queue until the connection fails or `shutdown`.
pub async fn twins(connection: &Connection, cloud: Arc<Cloud>, shutdown: CancellationToken) -> Result<(), LinkError> {
    let (channel, mut consumer) = consumer(connection, TWIN_QUEUE, "outpost-cloud-twins").await?;
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = consumer.next() => match next {
                Some(delivery) => delivery?,
                None => return Err(LinkError::Refused("the twin consumer was cancelled".into())),
            },
        };
        match handle_twin(&channel, &cloud, &delivery).await {
            Ok(Outcome::Done) => {
                delivery.acker.ack(BasicAckOptions::default()).await?;
            }
            Ok(Outcome::Poison(reason)) => dead_letter(&channel, &delivery, &reason).await?,
            Err(e) => {
                // Transient (the store or the broker): give it back and let the link restart.
                let _ = delivery.acker.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await;
                return Err(e);
            }
        }
    }
}

/// Consumes the telemetry queue: each message goes to the operators' streams and counts as
/// its device's activity.
pub async fn telemetry(
    connection: &Connection,
    cloud: Arc<Cloud>,
    shutdown: CancellationToken,
) -> Result<(), LinkError> {
    let (channel, mut consumer) = consumer(connection, TELEMETRY_QUEUE, "outpost-cloud-telemetry").await?;
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = consumer.next() => match next {
                Some(delivery) => delivery?,
                None => return Err(LinkError::Refused("the telemetry consumer was cancelled".into())),
            },
        };
        let Some(key) = topology::parse_up_key(delivery.routing_key.as_str()) else {
            dead_letter(&channel, &delivery, "routing key names no device, module and kind").await?;
            continue;
        };
        let properties = delivery
            .properties
            .headers()
            .as_ref()
            .map(|headers| {
                headers
                    .inner()
                    .keys()
                    .filter(|name| !name.as_str().starts_with("x-"))
                    .filter_map(|name| header(&delivery, name.as_str()).map(|value| (name.to_string(), value)))
                    .collect()
            })
            .unwrap_or_default();
        let event = TelemetryEvent {
            device: key.device.clone(),
            module: key.module.unwrap_or_default(),
            body: delivery.data.clone(),
            properties,
            received_ms: now_ms(),
        };
        // Nobody watching is not an error: the events exchange is the durable path.
        let _ = cloud.telemetry().send(event);
        cloud.touch(&key.device, None);
        delivery.acker.ack(BasicAckOptions::default()).await?;
    }
}

/// Consumes method answers and hands each to the call waiting for it (late answers, whose
/// caller gave up, are dropped).
pub async fn method_responses(
    connection: &Connection,
    cloud: Arc<Cloud>,
    shutdown: CancellationToken,
) -> Result<(), LinkError> {
    let (channel, mut consumer) = consumer(connection, METHODS_QUEUE, "outpost-cloud-methods").await?;
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = consumer.next() => match next {
                Some(delivery) => delivery?,
                None => return Err(LinkError::Refused("the method consumer was cancelled".into())),
            },
        };
        let id = delivery.properties.correlation_id().as_ref().map(|c| c.to_string());
        let status = header(&delivery, "x-outpost-status").and_then(|s| s.parse::<i32>().ok());
        match (id, status) {
            (Some(id), Some(status)) => {
                if !cloud.calls().complete(&id, MethodAnswer { status, payload: delivery.data.clone() }) {
                    tracing::debug!(call = %id, "method answer after its caller stopped waiting");
                }
                delivery.acker.ack(BasicAckOptions::default()).await?;
            }
            _ => {
                dead_letter(&channel, &delivery, "a method answer needs a correlation id and x-outpost-status").await?
            }
        }
    }
}
