//! The sled backend: three trees — `sessions` (client id → JSON record), `messages`
//! (queue name — a client id or the upstream queue's —, 0x00, big-endian sequence → queued
//! message record, so a prefix scan yields a queue's messages in order) and `retained`
//! (topic → stored PUBLISH), plus `reported` (module → `{"properties", "version"}` JSON). Durability is
//! `flush()`, one fsync for everything written since the last.

use std::path::Path;

use super::{
    MessageStore, Queued, SessionRecord, Snapshot, StoreError, decode_header, decode_message, decode_queued,
    encode_message, encode_queued,
};
use crate::mqtt::Publish;

/// A store in a sled database.
#[derive(Debug)]
pub struct SledStore {
    path: String,
    db: ::sled::Db,
    sessions: ::sled::Tree,
    messages: ::sled::Tree,
    retained: ::sled::Tree,
    reported: ::sled::Tree,
}

fn message_key(client_id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(client_id.len() + 9);
    key.extend_from_slice(client_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// sled's page cache: it would otherwise keep up to 1 GiB of the store in memory.
const CACHE_BYTES: u64 = 32 << 20;

/// How long to wait for the store's file lock: sled's background flusher releases it a
/// moment after the previous owner in this process let go (a hub restarted in-process).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn open_waiting_for_the_lock(dir: &Path) -> Result<::sled::Db, ::sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match ::sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).open() {
            // sled reports a held lock as an `Other` I/O error; only its text tells.
            Err(::sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl SledStore {
    /// Opens (or creates) the store in `dir`; another process holding it is an error (after
    /// a few seconds' wait).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.display().to_string();
        let failed = |e: ::sled::Error| StoreError::Backend { path: path.clone(), reason: e.to_string() };
        let db = open_waiting_for_the_lock(dir).map_err(failed)?;
        let sessions = db.open_tree("sessions").map_err(failed)?;
        let messages = db.open_tree("messages").map_err(failed)?;
        let retained = db.open_tree("retained").map_err(failed)?;
        let reported = db.open_tree("reported").map_err(failed)?;
        Ok(Self { path, db, sessions, messages, retained, reported })
    }

    fn failed(&self) -> impl Fn(::sled::Error) -> StoreError + '_ {
        move |e| StoreError::Backend { path: self.path.clone(), reason: e.to_string() }
    }
}

impl MessageStore for SledStore {
    fn put_session(&mut self, client_id: &str, session: &SessionRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(session).unwrap_or_default();
        self.sessions.insert(client_id.as_bytes(), bytes).map_err(self.failed())?;
        Ok(())
    }

    fn remove_session(&mut self, client_id: &str) -> Result<(), StoreError> {
        self.sessions.remove(client_id.as_bytes()).map_err(self.failed())?;
        let mut prefix = client_id.as_bytes().to_vec();
        prefix.push(0);
        for key in self.messages.scan_prefix(&prefix).keys() {
            let key = key.map_err(self.failed())?;
            self.messages.remove(key).map_err(self.failed())?;
        }
        Ok(())
    }

    fn put_message(&mut self, queue: &str, seq: u64, message: &Queued) -> Result<(), StoreError> {
        self.messages.insert(message_key(queue, seq), encode_queued(message)).map_err(self.failed())?;
        Ok(())
    }

    fn get_message(&self, queue: &str, seq: u64) -> Result<Option<Queued>, StoreError> {
        match self.messages.get(message_key(queue, seq)).map_err(self.failed())? {
            Some(value) => Ok(Some(decode_queued(&format!("message {queue:?}#{seq}"), &value)?)),
            None => Ok(None),
        }
    }

    fn remove_message(&mut self, queue: &str, seq: u64) -> Result<(), StoreError> {
        self.messages.remove(message_key(queue, seq)).map_err(self.failed())?;
        Ok(())
    }

    fn put_reported(
        &mut self,
        module: &str,
        reported: &serde_json::Map<String, serde_json::Value>,
        version: i64,
    ) -> Result<(), StoreError> {
        let record = serde_json::json!({"properties": reported, "version": version});
        self.reported.insert(module.as_bytes(), record.to_string().into_bytes()).map_err(self.failed())?;
        Ok(())
    }

    fn put_retained(&mut self, topic: &str, message: Option<&Publish>) -> Result<(), StoreError> {
        match message {
            Some(message) => self.retained.insert(topic.as_bytes(), encode_message(message)).map(|_| ()),
            None => self.retained.remove(topic.as_bytes()).map(|_| ()),
        }
        .map_err(self.failed())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(self.failed())
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let mut snapshot = Snapshot::default();
        for entry in self.sessions.iter() {
            let (key, value) = entry.map_err(self.failed())?;
            let client_id = String::from_utf8_lossy(&key).into_owned();
            let record: SessionRecord = serde_json::from_slice(&value)
                .map_err(|e| StoreError::Corrupt { key: format!("session {client_id}"), reason: e.to_string() })?;
            snapshot.sessions.insert(client_id, record);
        }
        for entry in self.messages.iter() {
            let (key, value) = entry.map_err(self.failed())?;
            // client id, a 0 byte, eight bytes of sequence number (which may hold zeros too).
            let Some(split) = key.len().checked_sub(9).filter(|i| key[*i] == 0) else {
                return Err(StoreError::Corrupt { key: format!("{key:?}"), reason: "bad message key".into() });
            };
            let client_id = String::from_utf8_lossy(&key[..split]).into_owned();
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&key[split + 1..]);
            let seq = u64::from_be_bytes(seq);
            let message = decode_header(&format!("message {client_id:?}#{seq}"), &value)?;
            snapshot.messages.entry(client_id).or_default().push((seq, message));
        }
        for entry in self.reported.iter() {
            let (key, value) = entry.map_err(self.failed())?;
            let module = String::from_utf8_lossy(&key).into_owned();
            let corrupt = |reason: String| StoreError::Corrupt { key: format!("reported {module}"), reason };
            let record: serde_json::Value = serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))?;
            let (Some(properties), Some(version)) = (record["properties"].as_object(), record["version"].as_i64())
            else {
                return Err(corrupt("not {\"properties\": {…}, \"version\": n}".into()));
            };
            snapshot.reported.insert(module, (properties.clone(), version));
        }
        for entry in self.retained.iter() {
            let (key, value) = entry.map_err(self.failed())?;
            let topic = String::from_utf8_lossy(&key).into_owned();
            let message = decode_message(&format!("retained {topic}"), &value)?;
            snapshot.retained.insert(topic, message);
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::mqtt::{Properties, QoS, Version};

    fn message(n: u8) -> Queued {
        Queued { publish: publish(n), priority: n, expires_at: (n > 0).then_some(1_000 + u64::from(n)) }
    }

    fn publish(n: u8) -> Publish {
        Publish {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: format!("t/{n}"),
            packet_id: Some(9),
            payload: Bytes::from(vec![n; 3]),
            properties: Properties { content_type: Some("text/plain".into()), ..Default::default() },
        }
    }

    #[test]
    fn opening_waits_for_a_lock_that_is_about_to_go() {
        let dir = tempfile::tempdir().unwrap();
        let held = SledStore::open(dir.path()).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        let reopened = SledStore::open(dir.path());
        releaser.join().unwrap();
        assert!(reopened.is_ok(), "{reopened:?}");
    }

    #[test]
    fn what_is_flushed_is_there_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = SledStore::open(dir.path()).unwrap();
            let record = SessionRecord { level: 5, subscriptions: vec![("a/#".into(), 1, false, false, 0)] };
            store.put_session("c1", &record).unwrap();
            store.put_session("c2", &record).unwrap();
            for n in 0..3 {
                store.put_message("c1", u64::from(n), &message(n)).unwrap();
            }
            store.put_message("c2", 7, &message(7)).unwrap();
            store.remove_message("c1", 1).unwrap();
            store.remove_session("c2").unwrap();
            store.put_retained("status", Some(&publish(5))).unwrap();
            let reported = serde_json::json!({"seen": 3}).as_object().cloned().unwrap();
            store.put_reported("filter", &reported, 4).unwrap();
            // A record of the first format: a bare PUBLISH.
            store.messages.insert(message_key("c1", 9), encode_message(&publish(9))).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let snapshot = store.load().unwrap();
        assert_eq!(snapshot.sessions.keys().collect::<Vec<_>>(), ["c1"]);
        assert_eq!(snapshot.sessions["c1"].version(), Version::V5);
        let kept: Vec<(u64, u8, Option<u64>)> =
            snapshot.messages["c1"].iter().map(|(s, h)| (*s, h.priority, h.expires_at)).collect();
        assert_eq!(kept, [(0, 0, None), (2, 2, Some(1_002)), (9, crate::store::DEFAULT_PRIORITY, None)]);
        assert_eq!(snapshot.messages["c1"][0].1.weight, 3 + 3, "topic and payload");
        let topics: Vec<String> =
            [0, 2, 9].iter().map(|seq| store.get_message("c1", *seq).unwrap().unwrap().publish.topic).collect();
        assert_eq!(topics, ["t/0", "t/2", "t/9"]);
        assert!(store.get_message("c1", 1).unwrap().is_none(), "removed");
        let first = &store.get_message("c1", 0).unwrap().unwrap().publish;
        assert_eq!(
            (first.dup, first.packet_id, first.properties.content_type.as_deref()),
            (false, None, Some("text/plain"))
        );
        assert!(!snapshot.messages.contains_key("c2"));
        assert_eq!(snapshot.retained["status"].payload, Bytes::from(vec![5; 3]));
        assert_eq!(snapshot.reported["filter"].0["seen"], 3);
        assert_eq!(snapshot.reported["filter"].1, 4);
    }
}
