//! The broker without I/O: connections' packets in, packets to send and connections to close
//! out. Sessions (with subscriptions, queued and in-flight messages), retained messages,
//! wills, QoS 0/1/2 in both directions, shared subscriptions and MQTT 5 topic aliases,
//! session expiry and reason codes.

mod delivery;
mod durable;
mod iothub;
pub mod methods;
pub mod session;
pub mod status;
pub mod subscriptions;
mod upstream;
mod wills;

#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use crate::auth::Access;
use crate::mqtt::topic::{matches, parse_filter};
use crate::mqtt::{
    Ack, ConnAck, Connect, Disconnect, Packet, Properties, Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe,
    Version, Will, reason,
};
use crate::routes::HubRoute;
use crate::store::Waiting;
use crate::twins::Twins;
pub use delivery::Counters;
use session::{ConnId, Outgoing, Session};
use subscriptions::Subscriptions;

/// What the I/O layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // transient: consumed as soon as the handler returns
pub enum Action {
    /// Send a packet on a connection.
    Send(ConnId, Packet),
    /// Close a connection (after what was sent before).
    Close(ConnId),
    /// A direct method call was answered by its target.
    MethodAnswer {
        /// The call.
        call: methods::CallId,
        /// The status the target gave.
        status: i32,
        /// Its payload (JSON, possibly empty).
        payload: bytes::Bytes,
    },
}

/// The broker's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest packet accepted, bytes (IoT Hub's 256 KB by default).
    pub max_packet_size: usize,
    /// QoS 1/2 deliveries in flight per session.
    pub max_inflight: usize,
    /// Messages queued per session beyond the in-flight window or while offline.
    pub max_queued: usize,
    /// Topic aliases a v5 client may use.
    pub topic_alias_maximum: u16,
    /// Bytes (topics and payloads) of queued messages the store may hold; 0: no limit.
    pub max_store_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_packet_size: 256 * 1024,
            max_inflight: 100,
            max_queued: 10_000,
            topic_alias_maximum: 64,
            max_store_bytes: 1 << 30,
        }
    }
}

#[derive(Debug)]
struct Connection {
    client_id: String,
    access: Access,
    version: Version,
    /// Boxed: most connections have none, and a will's properties are large.
    will: Option<Box<Will>>,
    /// MQTT 5 topic aliases the client set (a `BTreeMap`: nothing allocated until it uses one).
    aliases: BTreeMap<u16, String>,
}

/// The broker's state.
#[derive(Debug, Default)]
pub struct Broker {
    limits: Limits,
    sessions: HashMap<String, Session>,
    connections: HashMap<ConnId, Connection>,
    subscriptions: Subscriptions,
    retained: BTreeMap<String, Publish>,
    next_client: u64,
    routes: Vec<HubRoute>,
    /// The deployment's message time-to-live, seconds (`None`: forever).
    ttl: Option<u64>,
    twins: Twins,
    device: Option<String>,
    durable: durable::Durable,
    upstream: upstream::Upstream,
    /// The next sequence number of a queued message (stored or not).
    next_seq: u64,
    /// The clock, seconds since the epoch.
    now: u64,
    calls: HashMap<String, methods::Pending>,
    counters: Counters,
    /// Delayed wills by client id: when they are due, and the will.
    pending_wills: HashMap<String, (u64, Will)>,
}

fn protocol_close(conn: ConnId, version: Version, code: u8, why: &str, out: &mut Vec<Action>) {
    if version == Version::V5 {
        let properties = Properties { reason_string: Some(why.to_owned()), ..Default::default() };
        out.push(Action::Send(conn, Packet::Disconnect(Disconnect { code, properties })));
    }
    out.push(Action::Close(conn));
}

impl Broker {
    /// A broker with `limits`.
    pub fn new(limits: Limits) -> Self {
        let mut broker = Self { limits, ttl: Some(7200), ..Self::default() };
        broker.durable.limit = limits.max_store_bytes;
        broker
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connected clients.
    pub fn connected(&self) -> usize {
        self.connections.len()
    }

    /// Handles a packet from `conn`, appending what to do to `out`.
    pub fn handle(&mut self, conn: ConnId, packet: Packet, out: &mut Vec<Action>) {
        let Some(version) = self.connections.get(&conn).map(|c| c.version) else {
            match packet {
                Packet::Connect(connect) => self.connect(conn, *connect, Access::Full, out),
                _ => out.push(Action::Close(conn)),
            }
            return;
        };
        match packet {
            Packet::Publish(publish) => self.publish_in(conn, version, publish, out),
            Packet::PubAck(ack) | Packet::PubComp(ack) => self.acknowledged(conn, ack.packet_id, out),
            Packet::PubRec(ack) => self.received(conn, ack.packet_id, out),
            Packet::PubRel(ack) => {
                if let Some(session) = self.session_of(conn) {
                    let known = session.awaiting_release.remove(&ack.packet_id);
                    let code = if known || version == Version::V311 {
                        reason::SUCCESS
                    } else {
                        reason::PACKET_IDENTIFIER_NOT_FOUND
                    };
                    let comp = Ack { packet_id: ack.packet_id, code, properties: Properties::default() };
                    out.push(Action::Send(conn, Packet::PubComp(comp)));
                }
            }
            Packet::Subscribe(subscribe) => self.subscribe(conn, version, subscribe, out),
            Packet::Unsubscribe(unsubscribe) => self.unsubscribe(conn, version, unsubscribe, out),
            Packet::PingReq => out.push(Action::Send(conn, Packet::PingResp)),
            Packet::Disconnect(disconnect) => {
                if disconnect.code != reason::DISCONNECT_WITH_WILL
                    && let Some(c) = self.connections.get_mut(&conn)
                {
                    c.will = None;
                }
                // The client closes the connection after DISCONNECT (the I/O layer waits a
                // moment for it): closing first races some clients into reporting an
                // unexpected disconnection.
                self.closed(conn, out);
            }
            Packet::Connect(_) => protocol_close(conn, version, reason::PROTOCOL_ERROR, "a second CONNECT", out),
            other => {
                let why = format!("{} is not sent by clients", other.name());
                protocol_close(conn, version, reason::PROTOCOL_ERROR, &why, out);
            }
        }
    }

    /// `conn` is gone (closed by either side, or timed out): its will is published unless
    /// it disconnected normally, and a session that ends with its connection is removed.
    pub fn closed(&mut self, conn: ConnId, out: &mut Vec<Action>) {
        let Some(connection) = self.connections.remove(&conn) else { return };
        let ends = match self.sessions.get_mut(&connection.client_id) {
            Some(session) if session.connection == Some(conn) => {
                session.connection = None;
                session.ends_with_connection
            }
            _ => false,
        };
        if let Some(will) = connection.will {
            self.will_of(&connection.client_id, *will, ends, out);
        }
        if ends {
            self.end_session(&connection.client_id);
        }
    }

    fn end_session(&mut self, client_id: &str) {
        if let Some(session) = self.sessions.remove(client_id) {
            // Whatever it was, nothing of it may come back after a restart.
            let queued = session.queue.values().filter(|w| w.is_stored()).map(Waiting::weight);
            let inflight = session.stored.values().map(|(_, weight)| *weight);
            self.durable.bytes = self.durable.bytes.saturating_sub(queued.chain(inflight).sum());
            self.durable.write(|store| store.remove_session(client_id));
            for filter in session.subscriptions.keys() {
                if let Ok(filter) = parse_filter(filter) {
                    self.subscriptions.remove(&filter, client_id);
                }
            }
        }
    }

    fn session_of(&mut self, conn: ConnId) -> Option<&mut Session> {
        let client_id = &self.connections.get(&conn)?.client_id;
        self.sessions.get_mut(client_id)
    }

    /// Handles the CONNECT of `conn`, already authenticated with rights `access`.
    pub fn connect(&mut self, conn: ConnId, connect: Connect, access: Access, out: &mut Vec<Action>) {
        let version = connect.version;
        let refuse = |code_v311: u8, code_v5: u8, out: &mut Vec<Action>| {
            let code = if version == Version::V5 { code_v5 } else { code_v311 };
            let ack = ConnAck { session_present: false, code, properties: Properties::default() };
            out.push(Action::Send(conn, Packet::ConnAck(ack)));
            out.push(Action::Close(conn));
        };
        let mut assigned = None;
        let client_id = if connect.client_id.is_empty() {
            if version == Version::V311 && !connect.clean_start {
                return refuse(reason::V311_IDENTIFIER_REJECTED, reason::CLIENT_IDENTIFIER_NOT_VALID, out);
            }
            self.next_client += 1;
            let id = format!("outpost-auto-{}", self.next_client);
            assigned = Some(id.clone());
            id
        } else {
            connect.client_id.clone()
        };
        // Session takeover: the older connection goes.
        if let Some(old) = self.sessions.get(&client_id).and_then(|s| s.connection) {
            if let Some(old_version) = self.connections.get(&old).map(|c| c.version) {
                protocol_close(
                    old,
                    old_version,
                    reason::SESSION_TAKEN_OVER,
                    "another connection took the session",
                    out,
                );
            }
            // The old connection's will is published, as for any end without DISCONNECT
            // (an MQTT 5 will with a delay is dropped just below: the client is back).
            self.closed(old, out);
        }
        self.cancel_will(&client_id);
        let ends_with_connection = match version {
            Version::V311 => connect.clean_start,
            Version::V5 => connect.properties.session_expiry_interval.unwrap_or(0) == 0,
        };
        if connect.clean_start {
            self.end_session(&client_id);
        }
        let session_present = self.sessions.contains_key(&client_id);
        let session = self
            .sessions
            .entry(client_id.clone())
            .or_insert_with(|| Session::new(client_id.clone(), version, ends_with_connection));
        session.connection = Some(conn);
        session.version = version;
        session.ends_with_connection = ends_with_connection;
        let receive_maximum = connect.properties.receive_maximum.map_or(usize::from(u16::MAX), usize::from);
        session.window = self.limits.max_inflight.min(receive_maximum);
        self.connections.insert(
            conn,
            Connection {
                client_id: client_id.clone(),
                access,
                version,
                will: connect.will.map(Box::new),
                aliases: BTreeMap::new(),
            },
        );
        let mut properties = Properties::default();
        if version == Version::V5 {
            properties.assigned_client_identifier = assigned;
            properties.topic_alias_maximum = Some(self.limits.topic_alias_maximum);
            properties.maximum_packet_size = Some(self.limits.max_packet_size as u32);
            properties.receive_maximum = Some(self.limits.max_inflight.min(u16::MAX as usize) as u16);
        }
        self.save_session(&client_id);
        let ack = ConnAck { session_present, code: reason::SUCCESS, properties };
        out.push(Action::Send(conn, Packet::ConnAck(ack)));
        // Resume: in-flight deliveries again (DUP), then the queue.
        if let Some(session) = self.sessions.get_mut(&client_id) {
            for (id, outgoing) in &session.inflight {
                match outgoing {
                    Outgoing::Sent(p) => {
                        let mut p = p.clone();
                        p.dup = true;
                        p.packet_id = Some(*id);
                        out.push(Action::Send(conn, Packet::Publish(p)));
                    }
                    Outgoing::Released => out.push(Action::Send(conn, Packet::PubRel(Ack::ok(*id)))),
                }
            }
        }
        self.flush(&client_id, out);
    }

    fn publish_in(&mut self, conn: ConnId, version: Version, mut publish: Publish, out: &mut Vec<Action>) {
        let Some(connection) = self.connections.get_mut(&conn) else { return };
        self.counters.received += 1;
        if let Some(alias) = publish.properties.topic_alias.take() {
            if alias > self.limits.topic_alias_maximum {
                return protocol_close(
                    conn,
                    version,
                    reason::TOPIC_ALIAS_INVALID,
                    "topic alias above the maximum",
                    out,
                );
            }
            if publish.topic.is_empty() {
                match connection.aliases.get(&alias) {
                    Some(topic) => publish.topic = topic.clone(),
                    None => return protocol_close(conn, version, reason::PROTOCOL_ERROR, "unknown topic alias", out),
                }
            } else {
                connection.aliases.insert(alias, publish.topic.clone());
            }
        }
        let packet_id = publish.packet_id;
        if !connection.access.may_publish(&publish.topic) {
            if version == Version::V311 {
                // 3.1.1 cannot refuse a publish: the connection goes, as with IoT Hub.
                return protocol_close(conn, version, reason::NOT_AUTHORIZED, "not authorized", out);
            }
            let refusal = Ack {
                packet_id: packet_id.unwrap_or(0),
                code: reason::NOT_AUTHORIZED,
                properties: Properties::default(),
            };
            match publish.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => out.push(Action::Send(conn, Packet::PubAck(refusal))),
                QoS::ExactlyOnce => out.push(Action::Send(conn, Packet::PubRec(refusal))),
            }
            return;
        }
        if publish.topic.starts_with('$') {
            // IoT Hub's twin requests and method responses are answered here, never forwarded.
            // Other $ topics are the broker's.
            if !publish.topic.starts_with("$iothub/") {
                let why = "topics starting with $ are reserved";
                return protocol_close(conn, version, reason::TOPIC_NAME_INVALID, why, out);
            }
            let client_id = connection.client_id.clone();
            if publish.topic.starts_with("$iothub/methods/res/") {
                self.method_response(&client_id, &publish.topic, &publish.payload, out);
            } else if let (Access::Module { module, .. }, Some(_)) = (&connection.access, &self.device)
                && let Some(response) = self.twins.request(module, &publish.topic, &publish.payload)
            {
                if publish.topic.starts_with("$iothub/twin/PATCH/properties/reported/") {
                    // Kept across restarts; the 204 leaves after the batch's commit.
                    let module = module.clone();
                    if let Some((reported, version)) = self.twins.reported_record(&module) {
                        let reported = reported.clone();
                        self.durable.write(|store| store.put_reported(&module, &reported, version));
                    }
                }
                self.deliver_private(&client_id, response.topic, response.body.into(), QoS::AtLeastOnce, out);
            }
            match (publish.qos, packet_id) {
                (QoS::AtLeastOnce, Some(id)) => out.push(Action::Send(conn, Packet::PubAck(Ack::ok(id)))),
                (QoS::ExactlyOnce, Some(id)) => out.push(Action::Send(conn, Packet::PubRec(Ack::ok(id)))),
                _ => {}
            }
            return;
        }
        let client_id = connection.client_id.clone();
        let access = connection.access.clone();
        if publish.qos != QoS::AtMostOnce && self.durable.full() && self.would_store(&access, &publish) {
            // Refused, not dropped: the publisher keeps the message and tries again later.
            self.counters.refused_store_full += 1;
            let why = "the hub's message store is full";
            if version == Version::V311 {
                return protocol_close(conn, version, reason::QUOTA_EXCEEDED, why, out);
            }
            let properties = Properties { reason_string: Some(why.into()), ..Default::default() };
            let refusal = Ack { packet_id: packet_id.unwrap_or(0), code: reason::QUOTA_EXCEEDED, properties };
            let packet =
                if publish.qos == QoS::AtLeastOnce { Packet::PubAck(refusal) } else { Packet::PubRec(refusal) };
            out.push(Action::Send(conn, packet));
            return;
        }
        match publish.qos {
            QoS::AtMostOnce => {
                self.dispatch(&client_id, &access, publish, out);
            }
            QoS::AtLeastOnce => {
                let delivered = self.dispatch(&client_id, &access, publish, out);
                let code = if delivered == 0 && version == Version::V5 {
                    reason::NO_MATCHING_SUBSCRIBERS
                } else {
                    reason::SUCCESS
                };
                let ack = Ack { packet_id: packet_id.unwrap_or(0), code, properties: Properties::default() };
                out.push(Action::Send(conn, Packet::PubAck(ack)));
            }
            QoS::ExactlyOnce => {
                let id = packet_id.unwrap_or(0);
                // QoS 2 receptions wait for PUBREL: at most the Receive Maximum we announced.
                let limit = self.limits.max_inflight;
                if self
                    .sessions
                    .get(&client_id)
                    .is_some_and(|s| !s.awaiting_release.contains(&id) && s.awaiting_release.len() >= limit)
                {
                    let why = "more QoS 2 messages awaiting PUBREL than the Receive Maximum";
                    return protocol_close(conn, version, reason::RECEIVE_MAXIMUM_EXCEEDED, why, out);
                }
                let first = self.sessions.get_mut(&client_id).is_some_and(|s| s.awaiting_release.insert(id));
                if first {
                    self.dispatch(&client_id, &access, publish, out);
                }
                out.push(Action::Send(conn, Packet::PubRec(Ack::ok(id))));
            }
        }
    }

    /// Sends a client's publish on: along the routes when it is IoT Hub telemetry, and to
    /// matching subscribers. Returns the number of endpoints and subscribers reached.
    fn dispatch(&mut self, sender: &str, access: &Access, publish: Publish, out: &mut Vec<Action>) -> usize {
        let routed = match crate::dialect::telemetry(access, &publish) {
            Some(message) => self.route_telemetry(&message, &publish, out),
            None => 0,
        };
        routed + self.route(sender, publish, out)
    }

    /// Whether `publish` from a client with `access` would be stored: routed anywhere, or
    /// for a persistent session at QoS 1/2.
    fn would_store(&self, access: &Access, publish: &Publish) -> bool {
        let routed = crate::dialect::telemetry(access, publish).is_some_and(|m| self.routes_anywhere(&m));
        routed
            || self.subscriptions.any(&publish.topic, |client, options| {
                options.qos != QoS::AtMostOnce && self.sessions.get(client).is_some_and(|s| !s.ends_with_connection)
            })
    }

    /// Delivers `publish` from `sender` to every matching subscriber and updates retained
    /// messages; returns the number of subscribers.
    fn route(&mut self, sender: &str, publish: Publish, out: &mut Vec<Action>) -> usize {
        if publish.retain {
            if publish.payload.is_empty() {
                self.retained.remove(&publish.topic);
                self.durable.write(|store| store.put_retained(&publish.topic, None));
            } else {
                let mut kept = publish.clone();
                kept.dup = false;
                kept.packet_id = None;
                self.durable.write(|store| store.put_retained(&kept.topic, Some(&kept)));
                self.retained.insert(publish.topic.clone(), kept);
            }
        }
        let subscribers = self.subscriptions.matching(&publish.topic);
        let count = subscribers.len();
        for subscriber in subscribers {
            if subscriber.options.no_local && subscriber.client_id == sender {
                continue;
            }
            let mut copy = publish.clone();
            copy.qos = copy.qos.min(subscriber.options.qos);
            copy.retain = subscriber.options.retain_as_published && publish.retain;
            copy.dup = false;
            copy.packet_id = None;
            self.deliver(&subscriber.client_id, copy, out);
        }
        count
    }

    fn acknowledged(&mut self, conn: ConnId, packet_id: u16, out: &mut Vec<Action>) {
        let Some(client_id) = self.connections.get(&conn).map(|c| c.client_id.clone()) else { return };
        self.delivered(&client_id, packet_id, out);
    }

    fn received(&mut self, conn: ConnId, packet_id: u16, out: &mut Vec<Action>) {
        let Some(session) = self.session_of(conn) else { return };
        if let Some(outgoing) = session.inflight.get_mut(&packet_id) {
            *outgoing = Outgoing::Released;
        }
        out.push(Action::Send(conn, Packet::PubRel(Ack::ok(packet_id))));
    }

    fn subscribe(&mut self, conn: ConnId, version: Version, subscribe: Subscribe, out: &mut Vec<Action>) {
        let Some((client_id, access)) = self.connections.get(&conn).map(|c| (c.client_id.clone(), c.access.clone()))
        else {
            return;
        };
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut retained = Vec::new();
        for (text, options) in subscribe.filters {
            if !access.may_subscribe(&text) {
                codes.push(if version == Version::V5 { reason::NOT_AUTHORIZED } else { reason::V311_SUBACK_FAILURE });
                continue;
            }
            let filter = match parse_filter(&text) {
                Ok(filter) => filter,
                Err(_) => {
                    codes.push(if version == Version::V5 {
                        reason::TOPIC_FILTER_INVALID
                    } else {
                        reason::V311_SUBACK_FAILURE
                    });
                    continue;
                }
            };
            let Some(session) = self.sessions.get_mut(&client_id) else { return };
            let existed = session.subscriptions.insert(text.clone(), options).is_some();
            self.subscriptions.add(&filter, &client_id, options);
            codes.push(options.qos as u8);
            let send_retained = filter.share_group.is_none()
                && (options.retain_handling == 0 || (options.retain_handling == 1 && !existed));
            if send_retained {
                for (topic, message) in &self.retained {
                    if matches(&filter.filter, topic) {
                        let mut copy = message.clone();
                        copy.qos = copy.qos.min(options.qos);
                        copy.retain = true;
                        retained.push(copy);
                    }
                }
            }
        }
        self.save_session(&client_id);
        let ack = SubAck { packet_id: subscribe.packet_id, codes, properties: Properties::default() };
        out.push(Action::Send(conn, Packet::SubAck(ack)));
        for message in retained {
            self.deliver(&client_id, message, out);
        }
    }

    fn unsubscribe(&mut self, conn: ConnId, version: Version, unsubscribe: Unsubscribe, out: &mut Vec<Action>) {
        let Some(client_id) = self.connections.get(&conn).map(|c| c.client_id.clone()) else { return };
        let mut codes = Vec::new();
        for text in unsubscribe.filters {
            let existed = match parse_filter(&text) {
                Ok(filter) => {
                    let in_session =
                        self.sessions.get_mut(&client_id).is_some_and(|s| s.subscriptions.remove(&text).is_some());
                    self.subscriptions.remove(&filter, &client_id) || in_session
                }
                Err(_) => false,
            };
            codes.push(if existed { reason::SUCCESS } else { reason::NO_SUBSCRIPTION_EXISTED });
        }
        self.save_session(&client_id);
        if version == Version::V311 {
            codes.clear();
        }
        let ack = UnsubAck { packet_id: unsubscribe.packet_id, codes, properties: Properties::default() };
        out.push(Action::Send(conn, Packet::UnsubAck(ack)));
    }

    /// Retained messages (for tests and admin).
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }
}
