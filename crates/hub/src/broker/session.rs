//! One client's session: its subscriptions, the messages queued for it while it is away
//! (in priority order, then arrival), the QoS 1/2 deliveries in flight, and QoS 2
//! receptions awaiting PUBREL.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::mqtt::{Publish, SubscriptionOptions, Version};
use crate::store::Waiting;

/// A connection's id, assigned by the I/O layer.
pub type ConnId = u64;

/// Where an outgoing QoS 1/2 delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
// A `Publish` carries its v5 properties inline (~400 bytes); deliveries in flight are few
// (bounded by the window), queued ones wait as headers (`store::Waiting`).
#[allow(clippy::large_enum_variant)]
pub enum Outgoing {
    /// Sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Sent(Publish),
    /// PUBREC received, PUBREL sent; waiting for PUBCOMP.
    Released,
}

/// A client's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client identifier.
    pub client_id: String,
    /// The protocol version of its last connection.
    pub version: Version,
    /// Filter → options.
    pub subscriptions: HashMap<String, SubscriptionOptions>,
    /// Messages waiting to be sent (offline, or beyond the in-flight window) by priority and
    /// sequence number: stored ones by their header only.
    pub queue: BTreeMap<(u8, u64), Waiting>,
    /// Store sequence numbers and weights of the stored deliveries in flight, by packet id.
    pub stored: BTreeMap<u16, (u64, u64)>,
    /// Deliveries in flight by packet id.
    pub inflight: BTreeMap<u16, Outgoing>,
    /// QoS 2 packet ids received and not yet released.
    pub awaiting_release: BTreeSet<u16>,
    /// The connection it is attached to.
    pub connection: Option<ConnId>,
    /// Whether it ends with its connection (clean session / session expiry 0).
    pub ends_with_connection: bool,
    /// QoS 1/2 deliveries it may have in flight: the broker's limit, or less if the client's
    /// MQTT 5 Receive Maximum says so.
    pub window: usize,
    next_packet_id: u16,
}

impl Session {
    /// A new, empty session.
    pub fn new(client_id: String, version: Version, ends_with_connection: bool) -> Self {
        Self {
            client_id,
            version,
            subscriptions: HashMap::new(),
            queue: BTreeMap::new(),
            stored: BTreeMap::new(),
            inflight: BTreeMap::new(),
            awaiting_release: BTreeSet::new(),
            connection: None,
            ends_with_connection,
            window: usize::from(u16::MAX),
            next_packet_id: 0,
        }
    }

    /// A packet id not in flight (ids wrap around and skip 0).
    pub fn next_packet_id(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
            if !self.inflight.contains_key(&self.next_packet_id) {
                return Some(self.next_packet_id);
            }
        }
        None
    }
}
