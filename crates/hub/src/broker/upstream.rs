//! The `$upstream` endpoint's queue: routed messages waiting for the uplink, highest priority
//! first (a batch never mixes priorities, so a flood of low-priority messages cannot delay a
//! high-priority one by more than a batch), expiring by their TTL, and kept in the store
//! until the uplink confirms them. Without an uplink the queue fills and expires as designed.

use std::collections::BTreeMap;

use super::Broker;
use crate::store::{Header, Queued, UPSTREAM, Waiting};

/// The queue (stored messages by header only) and the messages handed to the uplink and not
/// yet confirmed.
#[derive(Debug, Default)]
pub(super) struct Upstream {
    queue: BTreeMap<(u8, u64), Waiting>,
    inflight: BTreeMap<u64, Queued>,
}

impl Upstream {
    /// Puts back a message found in the store.
    pub(super) fn restore(&mut self, seq: u64, header: Header) {
        self.queue.insert((header.priority, seq), Waiting::Stored(header));
    }

    /// Removes the queued messages expired at `now`, returning their sequence numbers and
    /// weights.
    pub(super) fn expire(&mut self, now: u64) -> Vec<(u64, u64)> {
        let mut gone = Vec::new();
        self.queue.retain(|(_, seq), waiting| {
            let live = !waiting.expired(now);
            if !live {
                gone.push((*seq, waiting.weight()));
            }
            live
        });
        gone
    }
}

impl Broker {
    /// Queues `message` for the uplink; `false` when the store is full.
    pub(super) fn enqueue_upstream(&mut self, message: Queued) -> bool {
        if self.durable.full() {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.durable.put(UPSTREAM, seq, &message);
        let priority = message.priority;
        let waiting = self.waiting(message);
        self.upstream.queue.insert((priority, seq), waiting);
        true
    }

    /// Up to `max` messages of the highest priority waiting, handed to the uplink (they stay
    /// stored until [`Broker::upstream_done`]); expired ones are dropped on the way.
    pub fn upstream_take(&mut self, max: usize) -> Vec<(u64, Queued)> {
        let mut batch = Vec::new();
        let mut priority = None;
        while batch.len() < max {
            let Some(entry) = self.upstream.queue.first_entry() else { break };
            let (p, seq) = *entry.key();
            if priority.is_some_and(|first| first != p) {
                break;
            }
            let waiting = entry.remove();
            if waiting.expired(self.now) {
                self.counters.expired += 1;
                self.durable.remove(UPSTREAM, seq, waiting.weight());
                continue;
            }
            let message = match waiting {
                Waiting::Memory(message) => *message,
                Waiting::Stored(header) => match self.durable.get(UPSTREAM, seq) {
                    Some(message) => message,
                    None => {
                        self.durable.remove(UPSTREAM, seq, header.weight);
                        continue;
                    }
                },
            };
            priority = Some(p);
            self.upstream.inflight.insert(seq, message.clone());
            batch.push((seq, message));
        }
        batch
    }

    /// The uplink confirmed these messages: they are forgotten.
    pub fn upstream_done(&mut self, seqs: &[u64]) {
        for seq in seqs {
            if let Some(message) = self.upstream.inflight.remove(seq) {
                self.counters.upstream_sent += 1;
                self.durable.remove(UPSTREAM, *seq, message.weight());
            }
        }
    }

    /// The uplink could not send these messages: they wait again, in their place.
    pub fn upstream_failed(&mut self, seqs: &[u64]) {
        for seq in seqs {
            if let Some(message) = self.upstream.inflight.remove(seq) {
                let priority = message.priority;
                let waiting = self.waiting(message);
                self.upstream.queue.insert((priority, *seq), waiting);
            }
        }
    }

    /// Messages waiting for the uplink or in its hands, by priority.
    pub fn upstream_depths(&self) -> BTreeMap<u8, usize> {
        let mut depths = BTreeMap::new();
        let priorities = self.upstream.queue.keys().map(|(p, _)| *p);
        for priority in priorities.chain(self.upstream.inflight.values().map(|m| m.priority)) {
            *depths.entry(priority).or_insert(0) += 1;
        }
        depths
    }

    /// How the upstream queue holds `message`: by header when the store has it.
    fn waiting(&self, message: Queued) -> Waiting {
        if self.durable.enabled() {
            Waiting::Stored(Header {
                priority: message.priority,
                expires_at: message.expires_at,
                weight: message.weight(),
            })
        } else {
            Waiting::Memory(Box::new(message))
        }
    }

    /// Whether messages wait for the uplink.
    pub fn upstream_waiting(&self) -> bool {
        !self.upstream.queue.is_empty()
    }
}
