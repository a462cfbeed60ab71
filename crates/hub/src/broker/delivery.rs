//! Getting messages to sessions: sent at once when the client is connected and its window
//! allows, else queued in priority order (stored for persistent sessions, counted against
//! the store limit); queues drain as acknowledgements come; messages past their expiry
//! (route TTL, MQTT 5 message expiry) are dropped instead of delivered, and the remaining
//! expiry interval is what a subscriber sees.

use super::session::{ConnId, Outgoing, Session};
use super::{Action, Broker};
use crate::mqtt::{Packet, Publish, QoS};
use crate::store::{DEFAULT_PRIORITY, Header, Queued, Waiting};

/// Messages dropped, expired and forwarded, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// PUBLISHes received from clients.
    pub received: u64,
    /// Messages handed to client connections.
    pub delivered: u64,
    /// QoS 1/2 messages for a session whose queue was full (`max_queued`).
    pub dropped_queue_full: u64,
    /// QoS 0 messages for a subscriber whose connection could not take more.
    pub dropped_slow_subscriber: u64,
    /// Messages that would have been stored (routed, or for a persistent session) when the
    /// store was full.
    pub dropped_store_full: u64,
    /// QoS 1/2 publishes refused because the store was full (the publisher keeps them).
    pub refused_store_full: u64,
    /// Messages that expired before delivery.
    pub expired: u64,
    /// Messages routed to `$upstream`.
    pub routed_upstream: u64,
    /// Messages the uplink confirmed.
    pub upstream_sent: u64,
}

/// Puts `publish` in flight to `session` on `conn` as packet `id`; `stored`: its store
/// sequence number, forgotten when the delivery completes.
fn start(
    session: &mut Session,
    conn: ConnId,
    id: u16,
    mut publish: Publish,
    stored: Option<u64>,
    out: &mut Vec<Action>,
) {
    publish.packet_id = Some(id);
    if let Some(seq) = stored {
        session.stored.insert(id, (seq, crate::store::weight(&publish)));
    }
    session.inflight.insert(id, Outgoing::Sent(publish.clone()));
    out.push(Action::Send(conn, Packet::Publish(publish)));
}

impl Broker {
    /// Sets the broker's clock (seconds since the epoch); the I/O layer calls it before each
    /// batch of events.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// Sends `publish` to `client_id` (a plain subscription: default priority, MQTT 5 message
    /// expiry).
    pub(super) fn deliver(&mut self, client_id: &str, publish: Publish, out: &mut Vec<Action>) {
        let expires_at = publish.properties.message_expiry_interval.map(|s| self.now + u64::from(s));
        self.deliver_queued(client_id, Queued { publish, priority: DEFAULT_PRIORITY, expires_at }, out);
    }

    /// Sends `message` to `client_id` now if it is connected and its window allows, else
    /// queues it (QoS 1/2) or drops it (QoS 0 while offline).
    pub(super) fn deliver_queued(&mut self, client_id: &str, mut message: Queued, out: &mut Vec<Action>) {
        let limits = self.limits;
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        let connected = session.connection;
        if message.publish.qos == QoS::AtMostOnce {
            if let Some(conn) = connected {
                message.publish.properties.topic_alias = None;
                self.counters.delivered += 1;
                out.push(Action::Send(conn, Packet::Publish(message.publish)));
            }
            return;
        }
        if session.queue.len() >= limits.max_queued {
            self.counters.dropped_queue_full += 1;
            return;
        }
        // QoS 1/2 for a persistent session: on disk before the sender's acknowledgement.
        let stored = !session.ends_with_connection && self.durable.enabled();
        if stored && self.durable.full() {
            self.counters.dropped_store_full += 1;
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if stored {
            self.durable.put(client_id, seq, &message);
        }
        // At once when nothing waits before it and the window has room; else in the queue.
        let at_once = connected.filter(|_| session.queue.is_empty() && session.inflight.len() < session.window);
        match at_once.and_then(|conn| session.next_packet_id().map(|id| (conn, id))) {
            Some((conn, id)) => {
                start(session, conn, id, message.publish, stored.then_some(seq), out);
                self.counters.delivered += 1;
            }
            None if stored => {
                // The store has it: memory keeps only what orders, expires and counts it.
                let header =
                    Header { priority: message.priority, expires_at: message.expires_at, weight: message.weight() };
                session.queue.insert((message.priority, seq), Waiting::Stored(header));
            }
            None => {
                session.queue.insert((message.priority, seq), Waiting::Memory(Box::new(message)));
            }
        }
    }

    /// Sends queued messages while the window allows, dropping expired ones.
    pub(super) fn flush(&mut self, client_id: &str, out: &mut Vec<Action>) {
        let now = self.now;
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        let Some(conn) = session.connection else { return };
        while session.inflight.len() < session.window {
            let Some(((priority, seq), waiting)) = session.queue.pop_first() else { break };
            let stored = waiting.is_stored();
            if waiting.expired(now) {
                self.counters.expired += 1;
                if stored {
                    self.durable.remove(client_id, seq, waiting.weight());
                }
                continue;
            }
            let Some(id) = session.next_packet_id() else {
                session.queue.insert((priority, seq), waiting);
                break;
            };
            let message = match waiting {
                Waiting::Memory(message) => *message,
                Waiting::Stored(header) => match self.durable.get(client_id, seq) {
                    Some(message) => message,
                    None => {
                        // Lost by the store (logged): nothing to send; stop counting it.
                        self.durable.remove(client_id, seq, header.weight);
                        continue;
                    }
                },
            };
            let mut publish = message.publish;
            if let (Some(at), Some(_)) = (message.expires_at, publish.properties.message_expiry_interval) {
                // What a subscriber sees is what is left of the interval.
                publish.properties.message_expiry_interval = Some(u32::try_from(at - now).unwrap_or(u32::MAX));
            }
            start(session, conn, id, publish, stored.then_some(seq), out);
            self.counters.delivered += 1;
        }
    }

    /// A delivery to `client_id` with `packet_id` is complete (PUBACK, PUBCOMP).
    pub(super) fn delivered(&mut self, client_id: &str, packet_id: u16, out: &mut Vec<Action>) {
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        session.inflight.remove(&packet_id);
        if let Some((seq, weight)) = session.stored.remove(&packet_id) {
            self.durable.remove(client_id, seq, weight);
        }
        self.flush(client_id, out);
    }

    /// Drops every queued message whose expiry has passed (sessions and the upstream queue),
    /// so that a queue nobody drains does not keep them in the store.
    pub fn expire(&mut self) {
        let now = self.now;
        for (client_id, session) in &mut self.sessions {
            session.queue.retain(|(_, seq), waiting| {
                if !waiting.expired(now) {
                    return true;
                }
                self.counters.expired += 1;
                if waiting.is_stored() {
                    self.durable.remove(client_id, *seq, waiting.weight());
                }
                false
            });
        }
        for (seq, weight) in self.upstream.expire(now) {
            self.counters.expired += 1;
            self.durable.remove(crate::store::UPSTREAM, seq, weight);
        }
    }

    /// A QoS 0 message was dropped because its subscriber's connection was full.
    pub fn dropped_for_slow_subscriber(&mut self) {
        self.counters.dropped_slow_subscriber += 1;
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}
