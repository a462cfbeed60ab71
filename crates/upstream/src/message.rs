//! Device → cloud messages ([`UpMessage`]) and their AMQP form (ADR 0012), sans-IO: routing
//! key `{device}.{module|$device}.{kind}` on `outpost.d2c`, persistent, `user_id` = the device
//! (so RabbitMQ itself refuses a forged sender), application properties as string headers,
//! `x-outpost-seq` and `x-outpost-created` as signed 64-bit integers (AMQP 0.9.1 as RabbitMQ
//! speaks it has no unsigned 64-bit field), `x-outpost-status` as a signed 32-bit integer.

use bytes::Bytes;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use outpost_core::topology::{self, UpKind};

/// Header: the sequence number of a reported-properties patch (per device and module).
pub const SEQ_HEADER: &str = "x-outpost-seq";
/// Header: the status of a direct-method response.
pub const STATUS_HEADER: &str = "x-outpost-status";
/// Header: when the hub received a telemetry message, in Unix milliseconds.
pub const CREATED_HEADER: &str = "x-outpost-created";
/// Header (cloud → device): the module a message is for.
pub const MODULE_HEADER: &str = "x-outpost-module";
/// Header (cloud → device): the name of the called direct method.
pub const METHOD_HEADER: &str = "x-outpost-method";

/// AMQP's `delivery_mode` of a message written to disk by the broker.
const PERSISTENT: u8 = 2;

/// A message for the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpMessage {
    /// The sending module; `None` for the device itself.
    pub module: Option<String>,
    /// What it is (the routing key's last word).
    pub kind: UpKind,
    /// The payload.
    pub body: Bytes,
    /// AMQP `message_id`.
    pub message_id: Option<String>,
    /// AMQP `correlation_id`: the request a `twin-get` or `method-response` answers to.
    pub correlation_id: Option<String>,
    /// AMQP `content_type`.
    pub content_type: Option<String>,
    /// AMQP `content_encoding`.
    pub content_encoding: Option<String>,
    /// Application properties, sent as string headers.
    pub headers: Vec<(String, String)>,
    /// `x-outpost-seq` of a reported patch (must fit a signed 64-bit integer).
    pub seq: Option<u64>,
    /// `x-outpost-status` of a method response.
    pub status: Option<i32>,
    /// `x-outpost-created`: when the hub received the message, Unix milliseconds.
    pub created_ms: Option<u64>,
}

impl Default for UpMessage {
    /// An empty telemetry message from the device itself.
    fn default() -> Self {
        Self {
            module: None,
            kind: UpKind::Telemetry,
            body: Bytes::new(),
            message_id: None,
            correlation_id: None,
            content_type: None,
            content_encoding: None,
            headers: Vec::new(),
            seq: None,
            status: None,
            created_ms: None,
        }
    }
}

/// A message that cannot be put on the wire; sending it again will not help.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidMessage {
    /// A field AMQP carries as a short string is longer than 255 bytes.
    #[error("{field} is {len} bytes, longer than the 255 an amqp short string holds")]
    TooLong {
        /// The field (`routing key`, `message_id`, a header name…).
        field: String,
        /// Its length.
        len: usize,
    },
    /// A number does not fit its AMQP field.
    #[error("{field} {value} does not fit a signed 64-bit integer")]
    OutOfRange {
        /// The header.
        field: &'static str,
        /// The value.
        value: u64,
    },
}

/// A message's routing key and AMQP properties.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoded {
    /// Its routing key on `outpost.d2c`.
    pub(crate) routing_key: ShortString,
    /// Its properties.
    pub(crate) properties: BasicProperties,
}

fn short(field: &str, value: &str) -> Result<ShortString, InvalidMessage> {
    ShortString::try_new(value).map_err(|_| InvalidMessage::TooLong { field: field.to_owned(), len: value.len() })
}

fn signed(field: &'static str, value: u64) -> Result<AMQPValue, InvalidMessage> {
    i64::try_from(value).map(AMQPValue::LongLongInt).map_err(|_| InvalidMessage::OutOfRange { field, value })
}

/// The AMQP form of `message` sent by `device`.
pub(crate) fn encode(device: &str, message: &UpMessage) -> Result<Encoded, InvalidMessage> {
    let routing_key = short("routing key", &topology::up_key(device, message.module.as_deref(), message.kind))?;
    let mut properties =
        BasicProperties::default().with_delivery_mode(PERSISTENT).with_user_id(short("user_id", device)?);
    if let Some(id) = &message.message_id {
        properties = properties.with_message_id(short("message_id", id)?);
    }
    if let Some(id) = &message.correlation_id {
        properties = properties.with_correlation_id(short("correlation_id", id)?);
    }
    if let Some(kind) = &message.content_type {
        properties = properties.with_content_type(short("content_type", kind)?);
    }
    if let Some(encoding) = &message.content_encoding {
        properties = properties.with_content_encoding(short("content_encoding", encoding)?);
    }
    let mut headers = FieldTable::default();
    for (name, value) in &message.headers {
        headers
            .insert(short(&format!("header {name:?}"), name)?, AMQPValue::LongString(LongString::from(value.as_str())));
    }
    // Typed headers last: an application property of the same name cannot forge them.
    if let Some(seq) = message.seq {
        headers.insert(SEQ_HEADER.into(), signed(SEQ_HEADER, seq)?);
    }
    if let Some(status) = message.status {
        headers.insert(STATUS_HEADER.into(), AMQPValue::LongInt(status));
    }
    if let Some(created) = message.created_ms {
        headers.insert(CREATED_HEADER.into(), signed(CREATED_HEADER, created)?);
    }
    if !headers.inner().is_empty() {
        properties = properties.with_headers(headers);
    }
    Ok(Encoded { routing_key, properties })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telemetry() -> UpMessage {
        UpMessage {
            module: Some("sensor".into()),
            kind: UpKind::Telemetry,
            body: Bytes::from_static(b"{}"),
            message_id: Some("m1".into()),
            correlation_id: Some("c1".into()),
            content_type: Some("application/json".into()),
            content_encoding: Some("utf-8".into()),
            headers: vec![("color".into(), "red".into()), (SEQ_HEADER.into(), "forged".into())],
            seq: Some(7),
            status: Some(-200),
            created_ms: Some(1_700_000_000_000),
        }
    }

    #[test]
    fn messages_are_persistent_signed_by_the_device_and_keyed_by_module_and_kind() {
        let encoded = encode("dev.1", &telemetry()).unwrap();
        assert_eq!(encoded.routing_key.as_str(), "dev%2E1.sensor.telemetry");
        let p = &encoded.properties;
        assert_eq!(*p.delivery_mode(), Some(2));
        assert_eq!(p.user_id().as_ref().map(ShortString::as_str), Some("dev.1"));
        assert_eq!(p.message_id().as_ref().map(ShortString::as_str), Some("m1"));
        assert_eq!(p.correlation_id().as_ref().map(ShortString::as_str), Some("c1"));
        assert_eq!(p.content_type().as_ref().map(ShortString::as_str), Some("application/json"));
        assert_eq!(p.content_encoding().as_ref().map(ShortString::as_str), Some("utf-8"));
        let headers = p.headers().as_ref().unwrap().inner();
        assert_eq!(headers.get("color"), Some(&AMQPValue::LongString("red".into())));
        assert_eq!(headers.get(SEQ_HEADER), Some(&AMQPValue::LongLongInt(7)));
        assert_eq!(headers.get(STATUS_HEADER), Some(&AMQPValue::LongInt(-200)));
        assert_eq!(headers.get(CREATED_HEADER), Some(&AMQPValue::LongLongInt(1_700_000_000_000)));
    }

    #[test]
    fn a_bare_message_from_the_device_has_no_headers() {
        let message = UpMessage { kind: UpKind::TwinGet, ..UpMessage::default() };
        let encoded = encode("d", &message).unwrap();
        assert_eq!(encoded.routing_key.as_str(), "d.$device.twin-get");
        assert_eq!(*encoded.properties.headers(), None);
        assert_eq!(*encoded.properties.message_id(), None);
    }

    #[test]
    fn fields_too_long_for_amqp_are_refused_not_truncated() {
        let long = "x".repeat(256);
        let message = UpMessage { message_id: Some(long.clone()), ..telemetry() };
        assert_eq!(encode("d", &message), Err(InvalidMessage::TooLong { field: "message_id".into(), len: 256 }));
        let message = UpMessage { module: Some(long.clone()), ..telemetry() };
        assert!(matches!(encode("d", &message), Err(InvalidMessage::TooLong { field, .. }) if field == "routing key"));
        let message = UpMessage { headers: vec![(long, "v".into())], ..telemetry() };
        assert!(matches!(encode("d", &message), Err(InvalidMessage::TooLong { .. })));
        let message = UpMessage { seq: Some(u64::MAX), ..telemetry() };
        assert_eq!(encode("d", &message), Err(InvalidMessage::OutOfRange { field: SEQ_HEADER, value: u64::MAX }));
    }
}
