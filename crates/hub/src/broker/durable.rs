//! The broker's durable side: persistent sessions, their QoS 1/2 messages, the upstream queue
//! and retained messages written to the [`MessageStore`] as the broker decides, restored at
//! start, and made durable once per batch of events by [`Broker::commit`] (ADR 0009). The
//! bytes of queued messages are counted against the store limit.

use super::Broker;
use super::session::Session;
use crate::mqtt::topic::parse_filter;
use crate::store::{MessageStore, Queued, SessionRecord, StoreError, UPSTREAM, Waiting};

/// The store, what was written since the last flush, and how full it is.
#[derive(Debug, Default)]
pub(super) struct Durable {
    store: Option<Box<dyn MessageStore>>,
    dirty: bool,
    /// Bytes (topics and payloads) of the queued messages stored.
    pub(super) bytes: u64,
    /// The most `bytes` may reach before new messages are refused; 0: no limit.
    pub(super) limit: u64,
}

impl Durable {
    /// Whether there is a store at all.
    pub(super) fn enabled(&self) -> bool {
        self.store.is_some()
    }

    /// Whether new messages must be refused.
    pub(super) fn full(&self) -> bool {
        self.limit > 0 && self.bytes >= self.limit
    }

    /// Applies `what` to the store, if there is one; failures are logged (the next flush
    /// fails too, and withholds the batch's acknowledgements).
    pub(super) fn write(&mut self, what: impl FnOnce(&mut dyn MessageStore) -> Result<(), StoreError>) {
        if let Some(store) = self.store.as_deref_mut() {
            self.dirty = true;
            if let Err(e) = what(store) {
                tracing::error!(error = %e, "message store write failed");
            }
        }
    }

    /// Stores `message` in `queue` under `seq`.
    pub(super) fn put(&mut self, queue: &str, seq: u64, message: &Queued) {
        self.bytes += message.weight();
        self.write(|store| store.put_message(queue, seq, message));
    }

    /// Reads back message `seq` of `queue`; `None` (logged) if the store lost it.
    pub(super) fn get(&self, queue: &str, seq: u64) -> Option<Queued> {
        let store = self.store.as_deref()?;
        match store.get_message(queue, seq) {
            Ok(Some(message)) => Some(message),
            Ok(None) => {
                tracing::error!(queue, seq, "a queued message is missing from the store");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "message store read failed");
                None
            }
        }
    }

    /// Forgets message `seq` of `queue`, of `weight` bytes.
    pub(super) fn remove(&mut self, queue: &str, seq: u64, weight: u64) {
        self.bytes = self.bytes.saturating_sub(weight);
        self.write(|store| store.remove_message(queue, seq));
    }
}

impl Broker {
    /// Keeps persistent sessions, their QoS 1/2 messages, the upstream queue and retained
    /// messages in `store`, starting from what it holds.
    pub fn attach_store(&mut self, store: Box<dyn MessageStore>) -> Result<(), StoreError> {
        let snapshot = store.load()?;
        for (client_id, record) in snapshot.sessions {
            let mut session = Session::new(client_id.clone(), record.version(), false);
            for (filter, options) in record.options() {
                if let Ok(parsed) = parse_filter(&filter) {
                    self.subscriptions.add(&parsed, &client_id, options);
                }
                session.subscriptions.insert(filter, options);
            }
            self.sessions.insert(client_id, session);
        }
        for (queue, messages) in snapshot.messages {
            for (seq, header) in messages {
                self.next_seq = self.next_seq.max(seq + 1);
                self.durable.bytes += header.weight;
                if queue == UPSTREAM {
                    self.upstream.restore(seq, header);
                } else if let Some(session) = self.sessions.get_mut(&queue) {
                    session.queue.insert((header.priority, seq), Waiting::Stored(header));
                }
            }
        }
        self.retained = snapshot.retained;
        for (module, (reported, version)) in snapshot.reported {
            self.twins.restore_reported(&module, reported, version);
        }
        self.durable.store = Some(store);
        Ok(())
    }

    /// Makes what the last events changed durable; call before sending their
    /// acknowledgements (group commit: one flush for a batch of events).
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if !std::mem::take(&mut self.durable.dirty) {
            return Ok(());
        }
        match &mut self.durable.store {
            Some(store) => store.flush(),
            None => Ok(()),
        }
    }

    /// Records `client_id`'s session (if it is persistent) with its subscriptions.
    pub(super) fn save_session(&mut self, client_id: &str) {
        let Some(session) = self.sessions.get(client_id) else { return };
        if session.ends_with_connection {
            return;
        }
        let record = SessionRecord::new(session.version, &session.subscriptions);
        self.durable.write(|store| store.put_session(client_id, &record));
    }

    /// Bytes of queued messages in the store, and the limit (0: none).
    pub fn store_usage(&self) -> (u64, u64) {
        (self.durable.bytes, self.durable.limit)
    }
}
