//! MQTT 3.1.1 and 5.0 without I/O: packets as plain values, a strict decoder (every
//! violation a server must act on is an error with its kind, the packet and what was wrong)
//! and an exact encoder; topic names and filters.
//!
//! The decoder is deliberately stricter than most client libraries: reserved flag bits,
//! overlong or trailing bytes, wildcards in topic names, QoS 3, duplicate or misplaced v5
//! properties and the like are refused, because a broker that accepts them forwards garbage
//! to every subscriber.

mod decode;
mod encode;
pub mod properties;
pub mod topic;
pub mod wire;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use decode::decode;
pub use encode::{EncodeError, encode};
pub use properties::Properties;

/// The protocol version a connection speaks, from its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl Version {
    /// The protocol level byte.
    pub fn level(self) -> u8 {
        match self {
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }
}

/// Quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// At most once.
    AtMostOnce = 0,
    /// At least once.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// From the two QoS bits; 3 is not a QoS.
    pub fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }
}

/// What kind of violation a decode error is; it decides the reason code and that the
/// connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bytes do not form a valid packet (v5 reason 0x81).
    Malformed,
    /// A valid packet where the protocol does not allow it (v5 reason 0x82).
    Protocol,
    /// Larger than the maximum packet size (v5 reason 0x95).
    TooLarge,
    /// A CONNECT for a protocol this broker does not speak (v5 0x84, 3.1.1 return code 1).
    UnsupportedVersion,
    /// A topic name that is not valid (v5 reason 0x90).
    TopicName,
}

/// A packet the decoder refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{packet}: {detail}")]
pub struct DecodeError {
    /// The kind of violation.
    pub kind: ErrorKind,
    /// The packet type (or "packet" before it is known).
    pub packet: &'static str,
    /// What was wrong, for logs.
    pub detail: String,
}

impl DecodeError {
    /// An error of `kind` in `packet`.
    pub fn new(kind: ErrorKind, packet: &'static str, detail: impl Into<String>) -> Self {
        Self { kind, packet, detail: detail.into() }
    }

    /// The MQTT 5 reason code to close the connection with.
    pub fn reason_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Malformed => reason::MALFORMED_PACKET,
            ErrorKind::Protocol => reason::PROTOCOL_ERROR,
            ErrorKind::TooLarge => reason::PACKET_TOO_LARGE,
            ErrorKind::UnsupportedVersion => reason::UNSUPPORTED_PROTOCOL_VERSION,
            ErrorKind::TopicName => reason::TOPIC_NAME_INVALID,
        }
    }
}

/// MQTT 5 reason codes (and 3.1.1 CONNACK return codes, which share the low values).
pub mod reason {
    /// Success / granted QoS 0 / normal disconnection.
    pub const SUCCESS: u8 = 0x00;
    /// Granted QoS 1.
    pub const GRANTED_QOS_1: u8 = 0x01;
    /// Granted QoS 2.
    pub const GRANTED_QOS_2: u8 = 0x02;
    /// Disconnect with will message.
    pub const DISCONNECT_WITH_WILL: u8 = 0x04;
    /// No matching subscribers.
    pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
    /// No subscription existed.
    pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
    /// Unspecified error.
    pub const UNSPECIFIED_ERROR: u8 = 0x80;
    /// Malformed packet.
    pub const MALFORMED_PACKET: u8 = 0x81;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u8 = 0x82;
    /// Implementation specific error.
    pub const IMPLEMENTATION_SPECIFIC_ERROR: u8 = 0x83;
    /// Unsupported protocol version.
    pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
    /// Client identifier not valid.
    pub const CLIENT_IDENTIFIER_NOT_VALID: u8 = 0x85;
    /// Bad user name or password.
    pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
    /// Not authorized.
    pub const NOT_AUTHORIZED: u8 = 0x87;
    /// Server unavailable.
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    /// Server busy.
    pub const SERVER_BUSY: u8 = 0x89;
    /// Server shutting down.
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    /// Keep alive timeout.
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    /// Session taken over.
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    /// Topic filter invalid.
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    /// Topic name invalid.
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    /// Packet identifier in use.
    pub const PACKET_IDENTIFIER_IN_USE: u8 = 0x91;
    /// Packet identifier not found.
    pub const PACKET_IDENTIFIER_NOT_FOUND: u8 = 0x92;
    /// Receive maximum exceeded.
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    /// Topic alias invalid.
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    /// Packet too large.
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    /// Quota exceeded.
    pub const QUOTA_EXCEEDED: u8 = 0x97;
    /// Payload format invalid.
    pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
    /// Retain not supported.
    pub const RETAIN_NOT_SUPPORTED: u8 = 0x9A;
    /// QoS not supported.
    pub const QOS_NOT_SUPPORTED: u8 = 0x9B;
    /// Shared subscriptions not supported.
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0x9E;
    /// Subscription identifiers not supported.
    pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: u8 = 0xA1;
    /// Wildcard subscriptions not supported.
    pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0xA2;
    /// 3.1.1 CONNACK: unacceptable protocol version.
    pub const V311_UNACCEPTABLE_PROTOCOL: u8 = 0x01;
    /// 3.1.1 CONNACK: identifier rejected.
    pub const V311_IDENTIFIER_REJECTED: u8 = 0x02;
    /// 3.1.1 CONNACK: server unavailable.
    pub const V311_SERVER_UNAVAILABLE: u8 = 0x03;
    /// 3.1.1 CONNACK: bad user name or password.
    pub const V311_BAD_CREDENTIALS: u8 = 0x04;
    /// 3.1.1 CONNACK: not authorized.
    pub const V311_NOT_AUTHORIZED: u8 = 0x05;
    /// 3.1.1 SUBACK: failure.
    pub const V311_SUBACK_FAILURE: u8 = 0x80;
}

/// A will message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// Its QoS.
    pub qos: QoS,
    /// Whether it is retained.
    pub retain: bool,
    /// v5 will properties.
    pub properties: Properties,
}

/// CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version.
    pub version: Version,
    /// Client identifier (may be empty).
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5).
    pub clean_start: bool,
    /// Keep alive, seconds.
    pub keep_alive: u16,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// Will message.
    pub will: Option<Will>,
    /// v5 properties.
    pub properties: Properties,
}

/// CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server had a session for the client.
    pub session_present: bool,
    /// Return code (3.1.1) or reason code (5).
    pub code: u8,
    /// v5 properties.
    pub properties: Properties,
}

/// PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Redelivery flag.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name (empty in v5 when a topic alias stands for it).
    pub topic: String,
    /// Packet identifier: present exactly for QoS 1 and 2.
    pub packet_id: Option<u16>,
    /// Payload.
    pub payload: Bytes,
    /// v5 properties.
    pub properties: Properties,
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Packet identifier.
    pub packet_id: u16,
    /// v5 reason code (0 in 3.1.1).
    pub code: u8,
    /// v5 properties.
    pub properties: Properties,
}

impl Ack {
    /// A successful acknowledgement of `packet_id`.
    pub fn ok(packet_id: u16) -> Self {
        Self { packet_id, code: reason::SUCCESS, properties: Properties::default() }
    }
}

/// Subscription options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// v5: do not send the subscriber's own publications back.
    pub no_local: bool,
    /// v5: keep the retain flag as published.
    pub retain_as_published: bool,
    /// v5: 0 send retained on subscribe, 1 only for new subscriptions, 2 never.
    pub retain_handling: u8,
}

impl SubscriptionOptions {
    /// Plain options with `qos`.
    pub fn qos(qos: QoS) -> Self {
        Self { qos, no_local: false, retain_as_published: false, retain_handling: 0 }
    }
}

/// SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: u16,
    /// Topic filters with their options.
    pub filters: Vec<(String, SubscriptionOptions)>,
    /// v5 properties.
    pub properties: Properties,
}

/// SUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier.
    pub packet_id: u16,
    /// One return/reason code per filter.
    pub codes: Vec<u8>,
    /// v5 properties.
    pub properties: Properties,
}

/// UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: u16,
    /// Topic filters.
    pub filters: Vec<String>,
    /// v5 properties.
    pub properties: Properties,
}

/// UNSUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier.
    pub packet_id: u16,
    /// v5: one reason code per filter (empty in 3.1.1).
    pub codes: Vec<u8>,
    /// v5 properties.
    pub properties: Properties,
}

/// DISCONNECT (v5 carries a reason code and properties).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Reason code.
    pub code: u8,
    /// v5 properties.
    pub properties: Properties,
}

/// AUTH (v5 only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// Reason code.
    pub code: u8,
    /// Properties.
    pub properties: Properties,
}

/// Every MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(Ack),
    /// PUBREC.
    PubRec(Ack),
    /// PUBREL.
    PubRel(Ack),
    /// PUBCOMP.
    PubComp(Ack),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH.
    Auth(Auth),
}

impl Packet {
    /// The packet type's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connect(_) => "CONNECT",
            Self::ConnAck(_) => "CONNACK",
            Self::Publish(_) => "PUBLISH",
            Self::PubAck(_) => "PUBACK",
            Self::PubRec(_) => "PUBREC",
            Self::PubRel(_) => "PUBREL",
            Self::PubComp(_) => "PUBCOMP",
            Self::Subscribe(_) => "SUBSCRIBE",
            Self::SubAck(_) => "SUBACK",
            Self::Unsubscribe(_) => "UNSUBSCRIBE",
            Self::UnsubAck(_) => "UNSUBACK",
            Self::PingReq => "PINGREQ",
            Self::PingResp => "PINGRESP",
            Self::Disconnect(_) => "DISCONNECT",
            Self::Auth(_) => "AUTH",
        }
    }
}
