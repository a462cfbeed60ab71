//! Delivering twins: a twin whose desired properties changed waits in the store's outbox
//! until the broker confirms a copy in the device's agent queue. Every configuration twin
//! (`$edgeAgent`, `$edgeHub`, modules') goes to the agent, which assembles the device's
//! deployment from them and applies it as one (the hub follows the applied deployment for
//! routes and module twins). The whole twin goes, so a device that missed changes catches up
//! with one message per twin and applying one twice changes nothing.

use std::sync::Arc;

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel};
use outpost_core::topology::{self, C2D_EXCHANGE, Component, DownKind};
use serde_json::json;

use super::{LinkError, Outgoing};
use crate::service::Cloud;
use crate::store::TwinKey;
use crate::twin::TwinDoc;

/// The agent's own twin.
pub const AGENT_MODULE: &str = "$edgeAgent";

/// Which queue of the device a module's method calls and messages go to: the agent answers
/// for itself, the hub for every module and for the device.
pub fn component_of(module: &str) -> Component {
    if module == AGENT_MODULE { Component::Agent } else { Component::Hub }
}

/// The `twin` message body: desired and reported with their versions.
pub fn twin_body(twin: &TwinDoc) -> Vec<u8> {
    json!({"desired": twin.desired_with_version(), "reported": twin.reported_with_version()}).to_string().into_bytes()
}

/// Publishes `body` of `kind` for `module` to the device's `component` queue and waits for
/// the broker's confirmation.
pub async fn send(
    channel: &Channel,
    device: &str,
    (component, module): (Component, &str),
    kind: DownKind,
    body: &[u8],
    correlation_id: Option<&str>,
) -> Result<(), LinkError> {
    let mut headers = FieldTable::default();
    if !module.is_empty() {
        headers.insert("x-outpost-module".into(), AMQPValue::LongString(LongString::from(module)));
    }
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_type(kind.word().into())
        .with_content_type("application/json".into())
        .with_headers(headers);
    if let Some(id) = correlation_id {
        properties = properties.with_correlation_id(id.into());
    }
    let routing_key = topology::down_key(device, component);
    let confirm = channel
        .basic_publish(
            C2D_EXCHANGE.into(),
            routing_key.as_str().into(),
            BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
            body,
            properties,
        )
        .await?
        .await?;
    if !confirm.is_ack() {
        return Err(LinkError::Refused(format!("the broker refused a {} for {device}/{module}", kind.word())));
    }
    if confirm.take_message().is_some() {
        return Err(LinkError::Refused(format!("no queue for {routing_key}: is {device} registered?")));
    }
    Ok(())
}

/// Publishes an [`Outgoing`] message and waits for the broker's confirmation.
pub async fn send_outgoing(channel: &Channel, message: &Outgoing) -> Result<(), LinkError> {
    let mut headers = FieldTable::default();
    if !message.module.is_empty() {
        headers.insert("x-outpost-module".into(), AMQPValue::LongString(LongString::from(message.module.as_str())));
    }
    for (name, value) in &message.headers {
        headers.insert(name.as_str().into(), AMQPValue::LongString(LongString::from(value.as_str())));
    }
    let kind = message.kind.unwrap_or(DownKind::Message);
    let mut properties =
        BasicProperties::default().with_delivery_mode(2).with_type(kind.word().into()).with_headers(headers);
    if let Some(id) = &message.correlation_id {
        properties = properties.with_correlation_id(id.as_str().into());
    }
    if let Some(id) = &message.message_id {
        properties = properties.with_message_id(id.as_str().into());
    }
    if let Some(ms) = message.expiration_ms {
        properties = properties.with_expiration(ms.to_string().into());
    }
    let routing_key = topology::down_key(&message.device, component_of(&message.module));
    let confirm = channel
        .basic_publish(
            C2D_EXCHANGE.into(),
            routing_key.as_str().into(),
            BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
            &message.body,
            properties,
        )
        .await?
        .await?;
    if !confirm.is_ack() {
        return Err(LinkError::Refused(format!("the broker refused a message for {}", message.device)));
    }
    if confirm.take_message().is_some() {
        return Err(LinkError::Refused(format!("no queue for device {:?}: is it registered?", message.device)));
    }
    Ok(())
}

/// Delivers one outbox entry; the entry is cleared only after the confirmation.
pub async fn deliver(channel: &Channel, cloud: &Arc<Cloud>, key: TwinKey, version: u64) -> Result<(), LinkError> {
    let twin = {
        let (cloud, key) = (cloud.clone(), key.clone());
        tokio::task::spawn_blocking(move || cloud.stored_twin(&key)).await??
    };
    let Some(twin) = twin else {
        // The twin went with its device: nothing to deliver.
        let (cloud, key) = (cloud.clone(), key.clone());
        tokio::task::spawn_blocking(move || cloud.delivered(&key, version)).await??;
        return Ok(());
    };
    send(channel, &key.device, (Component::Agent, &key.module), DownKind::Twin, &twin_body(&twin), None).await?;
    let cloud = cloud.clone();
    let sent = twin.desired_version;
    tokio::task::spawn_blocking(move || cloud.delivered(&key, version.max(sent))).await??;
    Ok(())
}

/// Delivers everything waiting in the outbox.
pub async fn deliver_all(channel: &Channel, cloud: &Arc<Cloud>) -> Result<usize, LinkError> {
    let waiting = {
        let cloud = cloud.clone();
        tokio::task::spawn_blocking(move || cloud.outbox()).await??
    };
    let count = waiting.len();
    for (key, version) in waiting {
        deliver(channel, cloud, key, version).await?;
    }
    Ok(count)
}
