//! The broker's durable side: persistent sessions, their QoS 1/2 messages and retained
//! messages written to the [`MessageStore`] as the broker decides, restored at start, and
//! made durable once per batch of events by [`Broker::commit`] (ADR 0009).

use super::Broker;
use super::session::Session;
use crate::mqtt::topic::parse_filter;
use crate::store::{MessageStore, SessionRecord, StoreError};

impl Broker {
    /// Keeps persistent sessions, their QoS 1/2 messages and retained messages in `store`,
    /// starting from what it holds.
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
        for (client_id, messages) in snapshot.messages {
            for (seq, message) in messages {
                self.next_seq = self.next_seq.max(seq + 1);
                if let Some(session) = self.sessions.get_mut(&client_id) {
                    session.queue.push_back((Some(seq), message));
                }
            }
        }
        self.retained = snapshot.retained;
        self.store = Some(store);
        Ok(())
    }

    /// Makes what the last events changed durable; call before sending their
    /// acknowledgements (group commit: one flush for a batch of events).
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if !std::mem::take(&mut self.dirty) {
            return Ok(());
        }
        match &mut self.store {
            Some(store) => store.flush(),
            None => Ok(()),
        }
    }

    pub(super) fn write(&mut self, what: impl FnOnce(&mut dyn MessageStore) -> Result<(), StoreError>) {
        if let Some(store) = self.store.as_deref_mut() {
            self.dirty = true;
            if let Err(e) = what(store) {
                tracing::error!(error = %e, "message store write failed");
            }
        }
    }

    /// Records `client_id`'s session (if it is persistent) with its subscriptions.
    pub(super) fn save_session(&mut self, client_id: &str) {
        let Some(session) = self.sessions.get(client_id) else { return };
        if session.ends_with_connection {
            return;
        }
        let record = SessionRecord::new(session.version, &session.subscriptions);
        self.write(|store| store.put_session(client_id, &record));
    }
}
