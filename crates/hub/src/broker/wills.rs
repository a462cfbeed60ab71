//! Wills: published when a connection ends without a normal DISCONNECT. An MQTT 5 will with a
//! Will Delay Interval waits that long (or until its session ends, if sooner) and is dropped
//! if the client connects again first.

use super::{Action, Broker};
use crate::mqtt::{Publish, Will};

impl Broker {
    /// `client_id`'s connection ended with `will` pending; `session_ends`: its session ends
    /// with the connection.
    pub(super) fn will_of(&mut self, client_id: &str, will: Will, session_ends: bool, out: &mut Vec<Action>) {
        match will.properties.will_delay_interval.filter(|delay| *delay > 0 && !session_ends) {
            Some(delay) => {
                self.pending_wills.insert(client_id.to_owned(), (self.now + u64::from(delay), will));
            }
            None => self.publish_will(client_id, will, out),
        }
    }

    /// `client_id` is back: its delayed will is not sent.
    pub(super) fn cancel_will(&mut self, client_id: &str) {
        self.pending_wills.remove(client_id);
    }

    /// Publishes the delayed wills that are due.
    pub fn fire_wills(&mut self, out: &mut Vec<Action>) {
        if self.pending_wills.is_empty() {
            return;
        }
        let now = self.now;
        let due: Vec<String> =
            self.pending_wills.iter().filter(|(_, (at, _))| *at <= now).map(|(client, _)| client.clone()).collect();
        for client_id in due {
            if let Some((_, will)) = self.pending_wills.remove(&client_id) {
                self.publish_will(&client_id, will, out);
            }
        }
    }

    fn publish_will(&mut self, client_id: &str, will: Will, out: &mut Vec<Action>) {
        let mut properties = will.properties;
        // A will property, not a PUBLISH one.
        properties.will_delay_interval = None;
        let publish = Publish {
            dup: false,
            qos: will.qos,
            retain: will.retain,
            topic: will.topic,
            packet_id: None,
            payload: will.payload,
            properties,
        };
        self.route(client_id, publish, out);
    }
}
