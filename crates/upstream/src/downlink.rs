//! Cloud → device messages as the agent or hub receives them ([`Downlink`]), with their
//! acknowledgement: [`Downlink::ack`] once the message is durable on the device,
//! [`Downlink::reject`] for one it cannot use. Decoding the AMQP properties is sans-IO.
//!
//! Delivery is at least once: a downlink not acknowledged when its connection closes (broker
//! restart, network loss, token refresh with a slow consumer) is delivered again, flagged
//! [`Downlink::redelivered`]. Consumers must be idempotent (twin patches carry `$version`,
//! method calls an id).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use lapin::Acker;
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::{AMQPValue, ShortString};
use outpost_core::topology::DownKind;
use tokio::sync::mpsc;

use crate::gauge::GaugeGuard;
use crate::message::{METHOD_HEADER, MODULE_HEADER};

/// A message from the cloud, to be acknowledged or rejected.
#[derive(Debug)]
pub struct Downlink {
    /// What it is (its AMQP `type`).
    pub kind: DownKind,
    /// The module it is for (`x-outpost-module`); `None` for the device itself (or
    /// `$edgeAgent` on the agent's queue).
    pub module: Option<String>,
    /// The called method of a `method-request` (`x-outpost-method`).
    pub method: Option<String>,
    /// AMQP `correlation_id`: the call id, or the `twin-get` a twin answers.
    pub correlation_id: Option<String>,
    /// AMQP `message_id`.
    pub message_id: Option<String>,
    /// AMQP `content_type`.
    pub content_type: Option<String>,
    /// AMQP `content_encoding`.
    pub content_encoding: Option<String>,
    /// AMQP `expiration` in milliseconds (a method call's timeout, a message's TTL).
    pub expiration_ms: Option<u64>,
    /// The other headers, as text (strings, numbers and booleans; other types are left out).
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub body: Bytes,
    /// Whether the broker delivered it before (to a connection that closed without
    /// acknowledging it).
    pub redelivered: bool,
    settle: Settle,
}

#[derive(Debug)]
struct Settle {
    acker: Acker,
    /// Counts the downlink as unsettled on its connection until dropped.
    _unsettled: GaugeGuard,
}

/// Why an acknowledgement did not reach the broker. The message stays with the broker and
/// is delivered again after the link reconnects.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// The connection that delivered the message is closed.
    #[error("the connection that delivered the message is closed; it will be delivered again")]
    Closed,
    /// Sending the acknowledgement failed.
    #[error("cannot settle the message with the broker; it will be delivered again")]
    Lost {
        /// The cause.
        #[source]
        source: lapin::Error,
    },
}

impl Downlink {
    /// Tells the broker the message is taken care of: call it only once the message is
    /// durable on the device.
    pub async fn ack(self) -> Result<(), AckError> {
        settled(self.settle.acker.ack(BasicAckOptions::default()).await)
    }

    /// Refuses the message for good: the broker dead-letters it (the device queue's
    /// `x-dead-letter-exchange`, to `outpost.dead-letter` with RabbitMQ's `x-death` header).
    /// Devices may not publish to the dead-letter exchange, so `reason` is only logged here.
    pub async fn reject(self, reason: &str) -> Result<(), AckError> {
        tracing::warn!(kind = self.kind.word(), module = ?self.module, reason, "rejecting a message from the cloud");
        let nack = BasicNackOptions { multiple: false, requeue: false };
        settled(self.settle.acker.nack(nack).await)
    }
}

fn settled(result: Result<bool, lapin::Error>) -> Result<(), AckError> {
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(AckError::Closed),
        Err(source) => Err(AckError::Lost { source }),
    }
}

/// The downlinks of one link, in the order the broker delivered them; ends when the link
/// shuts down.
#[derive(Debug)]
pub struct Downlinks(pub(crate) mpsc::UnboundedReceiver<Downlink>);

impl Downlinks {
    /// The next downlink; `None` once the link has shut down.
    pub async fn recv(&mut self) -> Option<Downlink> {
        self.0.recv().await
    }
}

impl futures::Stream for Downlinks {
    type Item = Downlink;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Downlink>> {
        self.0.poll_recv(cx)
    }
}

/// Why a delivery is unusable: it is dead-lettered at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unusable {
    /// No AMQP `type`.
    #[error("the message has no type")]
    NoType,
    /// An AMQP `type` this version does not know.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A header this crate reads is not a string.
    #[error("header {0} is not a string")]
    NotText(&'static str),
}

/// The metadata of a downlink, read from its AMQP properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub(crate) kind: DownKind,
    pub(crate) module: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) message_id: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) content_encoding: Option<String>,
    pub(crate) expiration_ms: Option<u64>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Metadata {
    /// The downlink of this metadata with `body`, settled through `acker`.
    pub(crate) fn into_downlink(self, body: Bytes, redelivered: bool, acker: Acker, unsettled: GaugeGuard) -> Downlink {
        Downlink {
            kind: self.kind,
            module: self.module,
            method: self.method,
            correlation_id: self.correlation_id,
            message_id: self.message_id,
            content_type: self.content_type,
            content_encoding: self.content_encoding,
            expiration_ms: self.expiration_ms,
            headers: self.headers,
            body,
            redelivered,
            settle: Settle { acker, _unsettled: unsettled },
        }
    }
}

fn text(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        _ => return None,
    })
}

fn string(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => String::from_utf8(s.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn owned(value: &Option<ShortString>) -> Option<String> {
    value.as_ref().map(|s| s.as_str().to_owned())
}

/// Reads a delivery's properties.
pub(crate) fn decode(properties: &BasicProperties) -> Result<Metadata, Unusable> {
    let word = properties.kind().as_ref().ok_or(Unusable::NoType)?.as_str();
    let kind = DownKind::from_word(word).ok_or_else(|| Unusable::UnknownType(word.to_owned()))?;
    let (mut module, mut method, mut headers) = (None, None, Vec::new());
    for (name, value) in properties.headers().iter().flat_map(|table| table.inner()) {
        match name.as_str() {
            MODULE_HEADER => module = Some(string(value).ok_or(Unusable::NotText(MODULE_HEADER))?),
            METHOD_HEADER => method = Some(string(value).ok_or(Unusable::NotText(METHOD_HEADER))?),
            other => headers.extend(text(value).map(|value| (other.to_owned(), value))),
        }
    }
    Ok(Metadata {
        kind,
        module,
        method,
        correlation_id: owned(properties.correlation_id()),
        message_id: owned(properties.message_id()),
        content_type: owned(properties.content_type()),
        content_encoding: owned(properties.content_encoding()),
        expiration_ms: properties.expiration().as_ref().and_then(|e| e.as_str().parse().ok()),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use lapin::types::{FieldTable, LongString};

    use super::*;

    fn with_headers(kind: &str, headers: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut table = FieldTable::default();
        for (name, value) in headers {
            table.insert((*name).into(), value.clone());
        }
        BasicProperties::default().with_type(kind.into()).with_headers(table)
    }

    #[test]
    fn a_method_request_names_its_module_method_call_and_timeout() {
        let properties = with_headers(
            "method-request",
            &[
                (MODULE_HEADER, AMQPValue::LongString(LongString::from("sensor"))),
                (METHOD_HEADER, AMQPValue::LongString(LongString::from("reboot"))),
                ("x-trace", AMQPValue::LongLongInt(42)),
                ("blob", AMQPValue::FieldTable(FieldTable::default())),
            ],
        )
        .with_correlation_id("call-1".into())
        .with_expiration("30000".into());
        let decoded = decode(&properties).unwrap();
        assert_eq!(decoded.kind, DownKind::MethodRequest);
        assert_eq!(decoded.module.as_deref(), Some("sensor"));
        assert_eq!(decoded.method.as_deref(), Some("reboot"));
        assert_eq!(decoded.correlation_id.as_deref(), Some("call-1"));
        assert_eq!(decoded.expiration_ms, Some(30_000));
        assert_eq!(decoded.headers, [("x-trace".to_owned(), "42".to_owned())]);
    }

    #[test]
    fn a_patch_for_the_device_itself_has_no_module() {
        let decoded = decode(&BasicProperties::default().with_type("desired-patch".into())).unwrap();
        assert_eq!((decoded.kind, decoded.module, decoded.headers), (DownKind::DesiredPatch, None, vec![]));
    }

    #[test]
    fn messages_without_a_known_type_or_with_odd_headers_are_unusable() {
        assert_eq!(decode(&BasicProperties::default()), Err(Unusable::NoType));
        let properties = BasicProperties::default().with_type("firmware".into());
        assert_eq!(decode(&properties), Err(Unusable::UnknownType("firmware".into())));
        let properties = with_headers("twin", &[(MODULE_HEADER, AMQPValue::LongInt(3))]);
        assert_eq!(decode(&properties), Err(Unusable::NotText(MODULE_HEADER)));
    }
}
