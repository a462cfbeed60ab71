//! The `$upstream` endpoint's queue: routed messages waiting for the uplink, highest priority
//! first (a batch never mixes priorities, so a flood of low-priority messages cannot delay a
//! high-priority one by more than a batch), expiring by their TTL, and kept in the store
//! until the uplink confirms them. Without an uplink the queue fills and expires as designed.

use std::collections::BTreeMap;

use super::Broker;
use crate::store::{Queued, UPSTREAM};

/// The queue and the messages handed to the uplink and not yet confirmed.
#[derive(Debug, Default)]
pub(super) struct Upstream {
    queue: BTreeMap<(u8, u64), Queued>,
    inflight: BTreeMap<u64, Queued>,
}

impl Upstream {
    /// Puts back a message read from the store.
    pub(super) fn restore(&mut self, seq: u64, message: Queued) {
        self.queue.insert((message.priority, seq), message);
    }

    /// Removes the queued messages expired at `now`, returning their sequence numbers and
    /// weights.
    pub(super) fn expire(&mut self, now: u64) -> Vec<(u64, u64)> {
        let mut gone = Vec::new();
        self.queue.retain(|(_, seq), m| {
            let live = m.expires_at.is_none_or(|at| at > now);
            if !live {
                gone.push((*seq, m.weight()));
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
        self.upstream.queue.insert((message.priority, seq), message);
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
            let message = entry.remove();
            if message.expires_at.is_some_and(|at| at <= self.now) {
                self.counters.expired += 1;
                self.durable.remove(UPSTREAM, seq, message.weight());
                continue;
            }
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
                self.upstream.queue.insert((message.priority, *seq), message);
            }
        }
    }

    /// Messages waiting for the uplink or in its hands, by priority.
    pub fn upstream_depths(&self) -> BTreeMap<u8, usize> {
        let mut depths = BTreeMap::new();
        for message in self.upstream.queue.values().chain(self.upstream.inflight.values()) {
            *depths.entry(message.priority).or_insert(0) += 1;
        }
        depths
    }

    /// Whether messages wait for the uplink.
    pub fn upstream_waiting(&self) -> bool {
        !self.upstream.queue.is_empty()
    }
}
