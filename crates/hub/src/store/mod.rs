//! Store-and-forward: what the broker must not lose — persistent sessions with their
//! subscriptions, the QoS 1/2 messages queued or in flight for them, and retained messages —
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

/// What a store holds, read at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Sessions by client id.
    pub sessions: BTreeMap<String, SessionRecord>,
    /// Messages by client id, in the order they were stored (sequence number, message).
    pub messages: BTreeMap<String, Vec<(u64, Publish)>>,
    /// Retained messages by topic.
    pub retained: BTreeMap<String, Publish>,
}

/// Durable broker state.
pub trait MessageStore: Send + std::fmt::Debug {
    /// Records (or replaces) a persistent session.
    fn put_session(&mut self, client_id: &str, session: &SessionRecord) -> Result<(), StoreError>;
    /// Forgets a session and its messages.
    fn remove_session(&mut self, client_id: &str) -> Result<(), StoreError>;
    /// Keeps `message` for `client_id` under sequence number `seq`.
    fn put_message(&mut self, client_id: &str, seq: u64, message: &Publish) -> Result<(), StoreError>;
    /// Forgets a delivered message.
    fn remove_message(&mut self, client_id: &str, seq: u64) -> Result<(), StoreError>;
    /// Keeps (or, with `None`, forgets) the retained message of `topic`.
    fn put_retained(&mut self, topic: &str, message: Option<&Publish>) -> Result<(), StoreError>;
    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<(), StoreError>;
    /// Everything stored.
    fn load(&self) -> Result<Snapshot, StoreError>;
}

/// A message as stored: an MQTT 5 PUBLISH (so properties survive), QoS kept, no packet id.
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
