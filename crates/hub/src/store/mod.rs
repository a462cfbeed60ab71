//! Store-and-forward: what the broker must not lose — persistent sessions with their
//! subscriptions, the QoS 1/2 messages queued or in flight for them, the upstream queue,
//! retained messages and module twins' reported properties —
//! behind the [`MessageStore`] trait, with [`sled`] as the default backend.
//!
//! The broker writes as it decides and calls [`MessageStore::flush`] once per batch of
//! events, before any acknowledgement of that batch leaves (group commit): a PUBACK means the
//! message is on disk for every persistent session it was routed to.

pub mod sled;

use std::collections::BTreeMap;

use bytes::BytesMut;

use crate::mqtt::{Packet, Publish, QoS, SubscriptionOptions, Version, decode, encode};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error("message store {path}: {reason}")]
    Backend {
        /// Where the store lives.
        path: String,
        /// Why.
        reason: String,
    },
    /// A record cannot be read back.
    #[error("message store record {key} is unreadable: {reason}")]
    Corrupt {
        /// Which record.
        key: String,
        /// Why.
        reason: String,
    },
}

/// A persistent session as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    /// Protocol level of its last connection (4 or 5).
    pub level: u8,
    /// Subscriptions: filter, QoS, no-local, retain-as-published, retain handling.
    pub subscriptions: Vec<(String, u8, bool, bool, u8)>,
}

impl SessionRecord {
    /// The record of a session with these subscriptions.
    pub fn new(version: Version, subscriptions: &std::collections::HashMap<String, SubscriptionOptions>) -> Self {
        let mut subscriptions: Vec<_> = subscriptions
            .iter()
            .map(|(f, o)| (f.clone(), o.qos as u8, o.no_local, o.retain_as_published, o.retain_handling))
            .collect();
        subscriptions.sort();
        Self { level: version.level(), subscriptions }
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        if self.level == 5 { Version::V5 } else { Version::V311 }
    }

    /// The subscriptions as options.
    pub fn options(&self) -> impl Iterator<Item = (String, SubscriptionOptions)> + '_ {
        self.subscriptions.iter().map(|(f, qos, no_local, rap, rh)| {
            let qos = QoS::from_bits(*qos).unwrap_or(QoS::AtLeastOnce);
            (
                f.clone(),
                SubscriptionOptions { qos, no_local: *no_local, retain_as_published: *rap, retain_handling: *rh },
            )
        })
    }
}

/// The queue of the `$upstream` endpoint; MQTT strings cannot hold U+0000, so no client id
/// can name it.
pub const UPSTREAM: &str = "\0upstream";

/// The priority of messages no route ranked (MQTT subscriptions): below routes' 0–9.
pub const DEFAULT_PRIORITY: u8 = 10;

/// A message waiting in a queue, with what orders and ends its wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The message.
    pub publish: Publish,
    /// 0 (first) to 9 from routes, [`DEFAULT_PRIORITY`] otherwise.
    pub priority: u8,
    /// When it expires (seconds since the epoch), if it does.
    pub expires_at: Option<u64>,
}

impl Queued {
    /// Bytes it counts against the store limit: topic and payload.
    pub fn weight(&self) -> u64 {
        weight(&self.publish)
    }
}

/// Bytes a message counts against the store limit: topic and payload.
pub fn weight(publish: &Publish) -> u64 {
    (publish.topic.len() + publish.payload.len()) as u64
}

/// What the broker keeps in memory of a stored message: enough to order, expire and count it;
/// the message itself is read back from the store when it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Its priority.
    pub priority: u8,
    /// When it expires, if it does.
    pub expires_at: Option<u64>,
    /// Its weight ([`weight`]).
    pub weight: u64,
}

/// A queued message as the broker holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// In memory (no store, or a session that ends with its connection).
    Memory(Box<Queued>),
    /// In the store under its sequence number, read back when it is sent.
    Stored(Header),
}

impl Waiting {
    /// When it expires, if it does.
    pub fn expires_at(&self) -> Option<u64> {
        match self {
            Self::Memory(m) => m.expires_at,
            Self::Stored(h) => h.expires_at,
        }
    }

    /// Its weight.
    pub fn weight(&self) -> u64 {
        match self {
            Self::Memory(m) => m.weight(),
            Self::Stored(h) => h.weight,
        }
    }

    /// Whether it is in the store.
    pub fn is_stored(&self) -> bool {
        matches!(self, Self::Stored(_))
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at().is_some_and(|at| at <= now)
    }
}

/// What a store holds, read at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Sessions by client id.
    pub sessions: BTreeMap<String, SessionRecord>,
    /// Messages by queue (client id, or [`UPSTREAM`]), in the order they were stored
    /// (sequence number, header): the messages themselves stay in the store until sent.
    pub messages: BTreeMap<String, Vec<(u64, Header)>>,
    /// Retained messages by topic.
    pub retained: BTreeMap<String, Publish>,
    /// Module twins' reported properties by module: the properties and their `$version`.
    pub reported: BTreeMap<String, (serde_json::Map<String, serde_json::Value>, i64)>,
}

/// Durable broker state.
pub trait MessageStore: Send + std::fmt::Debug {
    /// Records (or replaces) a persistent session.
    fn put_session(&mut self, client_id: &str, session: &SessionRecord) -> Result<(), StoreError>;
    /// Forgets a session and its messages.
    fn remove_session(&mut self, client_id: &str) -> Result<(), StoreError>;
    /// Keeps `message` in queue `queue` (a client id, or [`UPSTREAM`]) under sequence
    /// number `seq`.
    fn put_message(&mut self, queue: &str, seq: u64, message: &Queued) -> Result<(), StoreError>;
    /// Reads back message `seq` of `queue`.
    fn get_message(&self, queue: &str, seq: u64) -> Result<Option<Queued>, StoreError>;
    /// Forgets a delivered (or expired) message.
    fn remove_message(&mut self, queue: &str, seq: u64) -> Result<(), StoreError>;
    /// Keeps (or, with `None`, forgets) the retained message of `topic`.
    fn put_retained(&mut self, topic: &str, message: Option<&Publish>) -> Result<(), StoreError>;
    /// Keeps `module`'s reported properties at `version`.
    fn put_reported(
        &mut self,
        module: &str,
        reported: &serde_json::Map<String, serde_json::Value>,
        version: i64,
    ) -> Result<(), StoreError>;
    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<(), StoreError>;
    /// Everything stored.
    fn load(&self) -> Result<Snapshot, StoreError>;
}

/// The first byte of a queued-message record: a format tag (stored PUBLISHes of the first
/// format start with 0x3_, their packet type; 0x01 had no weight).
const RECORD_V2: u8 = 0x01;
const RECORD_V3: u8 = 0x02;
/// Tag, priority, expiry, weight.
const HEADER_LEN: usize = 1 + 1 + 8 + 8;

/// A message as stored: the MQTT 5 PUBLISH (so properties survive; QoS kept, no packet id).
pub fn encode_message(message: &Publish) -> Vec<u8> {
    let mut record = message.clone();
    record.dup = false;
    record.packet_id = (record.qos != QoS::AtMostOnce).then_some(1);
    let mut out = BytesMut::new();
    // Encoding a message that was decoded or built by the broker cannot fail; an empty
    // record would be refused on load, naming its key.
    let _ = encode(&Packet::Publish(record), Version::V5, &mut out);
    out.to_vec()
}

/// Reads a stored message back.
pub fn decode_message(key: &str, bytes: &[u8]) -> Result<Publish, StoreError> {
    match decode(bytes, Some(Version::V5), usize::MAX) {
        Ok(Some((Packet::Publish(mut p), _))) => {
            p.packet_id = None;
            Ok(p)
        }
        Ok(_) => Err(StoreError::Corrupt { key: key.to_owned(), reason: "not a whole PUBLISH".into() }),
        Err(e) => Err(StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() }),
    }
}

/// A queued message as stored: tag, priority, expiry (0: none), weight, then the PUBLISH.
pub fn encode_queued(message: &Queued) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + message.weight() as usize + 16);
    out.push(RECORD_V3);
    out.push(message.priority);
    out.extend_from_slice(&message.expires_at.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&message.weight().to_be_bytes());
    out.extend_from_slice(&encode_message(&message.publish));
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// Reads a stored queued message back (records of the first format, a bare PUBLISH, get the
/// default priority and no expiry).
pub fn decode_queued(key: &str, bytes: &[u8]) -> Result<Queued, StoreError> {
    let truncated = || StoreError::Corrupt { key: key.to_owned(), reason: "truncated header".into() };
    let expiry = |at: u64| Some(at).filter(|e| *e != 0);
    match bytes.first() {
        Some(&RECORD_V3) if bytes.len() >= HEADER_LEN => Ok(Queued {
            publish: decode_message(key, &bytes[HEADER_LEN..])?,
            priority: bytes[1],
            expires_at: expiry(u64_at(bytes, 2)),
        }),
        Some(&RECORD_V2) if bytes.len() >= 10 => Ok(Queued {
            publish: decode_message(key, &bytes[10..])?,
            priority: bytes[1],
            expires_at: expiry(u64_at(bytes, 2)),
        }),
        Some(&RECORD_V3 | &RECORD_V2) => Err(truncated()),
        _ => Ok(Queued { publish: decode_message(key, bytes)?, priority: DEFAULT_PRIORITY, expires_at: None }),
    }
}

/// Reads only the header of a stored queued message (older records are decoded whole).
pub fn decode_header(key: &str, bytes: &[u8]) -> Result<Header, StoreError> {
    if bytes.first() == Some(&RECORD_V3) && bytes.len() >= HEADER_LEN {
        let expires_at = Some(u64_at(bytes, 2)).filter(|e| *e != 0);
        return Ok(Header { priority: bytes[1], expires_at, weight: u64_at(bytes, 10) });
    }
    let message = decode_queued(key, bytes)?;
    Ok(Header { priority: message.priority, expires_at: message.expires_at, weight: message.weight() })
}
