//! What the broker can tell about itself, for the admin API and metrics: sessions with their
//! subscriptions and queues, queue depths by endpoint and priority, the store's use and the
//! message counters.

use std::collections::BTreeMap;

use super::{Broker, Counters};
use crate::mqtt::{QoS, Version};

/// One session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStatus {
    /// Its client id.
    pub client_id: String,
    /// Whether a connection is attached.
    pub connected: bool,
    /// Whether it outlives its connection.
    pub persistent: bool,
    /// The protocol of its last connection.
    pub version: Version,
    /// Filters and their QoS, sorted.
    pub subscriptions: Vec<(String, QoS)>,
    /// Messages queued.
    pub queued: usize,
    /// Deliveries in flight.
    pub inflight: usize,
}

/// The broker at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Sessions by client id.
    pub clients: Vec<ClientStatus>,
    /// Queued messages by endpoint (`$upstream` or a client id) and priority.
    pub queues: BTreeMap<(String, u8), usize>,
    /// Whether there is a store.
    pub durable: bool,
    /// Bytes of queued messages stored, and the limit (0: none).
    pub store_bytes: (u64, u64),
    /// The counters.
    pub counters: Counters,
    /// Calls waiting for an answer.
    pub pending_calls: usize,
}

impl Broker {
    /// A snapshot of the broker.
    pub fn status(&self) -> Status {
        let mut queues = BTreeMap::new();
        let mut clients: Vec<ClientStatus> = self
            .sessions
            .values()
            .map(|session| {
                for (priority, _) in session.queue.keys() {
                    *queues.entry((session.client_id.clone(), *priority)).or_insert(0) += 1;
                }
                let mut subscriptions: Vec<(String, QoS)> =
                    session.subscriptions.iter().map(|(f, o)| (f.clone(), o.qos)).collect();
                subscriptions.sort();
                ClientStatus {
                    client_id: session.client_id.clone(),
                    connected: session.connection.is_some(),
                    persistent: !session.ends_with_connection,
                    version: session.version,
                    subscriptions,
                    queued: session.queue.len(),
                    inflight: session.inflight.len(),
                }
            })
            .collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        for (priority, count) in self.upstream_depths() {
            queues.insert((UPSTREAM_NAME.to_owned(), priority), count);
        }
        Status {
            clients,
            queues,
            durable: self.durable.enabled(),
            store_bytes: (self.durable.bytes, self.durable.limit),
            counters: self.counters,
            pending_calls: self.calls.len(),
        }
    }
}

/// How the upstream queue is named to people (its store name is `store::UPSTREAM`).
pub const UPSTREAM_NAME: &str = "$upstream";
