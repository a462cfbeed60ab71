//! The broker's IoT Hub side: routes from the deployment moving telemetry and module outputs
//! to module inputs, and module twins (requests answered, desired patches sent), with
//! messages meant for one client only.

use outpost_core::routes::{MessageSource, RouteMessage, Sink};

use super::session::Session;
use super::{Action, Broker};
use crate::mqtt::topic::matches;
use crate::mqtt::{Properties, Publish, QoS, Version};
use crate::routes::{HubDeployment, HubRoute};
use crate::store::Queued;

/// The sender name of messages from the cloud (no client can have it: `$` ids are refused).
const CLOUD_SENDER: &str = "$cloud";

/// Where a routed message goes (`None`: `$upstream`; else module and input), with the
/// priority and route time-to-live it goes with.
type Chosen = (Option<(String, String)>, u8, Option<u32>);

impl Broker {
    /// Replaces the routes (from the deployment's `$edgeHub` desired properties).
    pub fn set_routes(&mut self, routes: Vec<HubRoute>) {
        self.routes = routes;
    }

    /// Sets the time-to-live of routed messages (`None`: forever).
    pub fn set_ttl(&mut self, ttl_secs: Option<u64>) {
        self.ttl = ttl_secs;
    }

    /// The device whose modules' twins the broker serves (`None`: no twins).
    pub fn set_device(&mut self, device: Option<String>) {
        self.device = device;
    }

    /// Applies a new deployment: routes swapped, module twins' desired properties updated and
    /// the patches sent to the connected modules that subscribed to them (IoT Hub does not
    /// queue desired patches for absent clients; they GET the twin when they come back).
    pub fn set_deployment(&mut self, deployment: HubDeployment, out: &mut Vec<Action>) {
        self.routes = deployment.routes;
        self.ttl = deployment.ttl_secs;
        // The deployment may lower the configured store limit, never raise it.
        let configured = self.limits.max_store_bytes;
        self.durable.limit = match deployment.max_store_bytes {
            Some(limit) if configured == 0 || limit < configured => limit,
            _ => configured,
        };
        let Some(device) = self.device.clone() else { return };
        for (module, patch) in self.twins.set_desired(&deployment.module_twins) {
            let version = patch.get("$version").and_then(|v| v.as_i64()).unwrap_or(0);
            let topic = format!("$iothub/twin/PATCH/properties/desired/?$version={version}");
            let body = patch.to_string().into();
            self.deliver_private(&format!("{device}/{module}"), topic, body, QoS::AtLeastOnce, out);
        }
    }

    /// Every module's reported properties.
    pub fn reported_twins(&self) -> Vec<(String, serde_json::Map<String, serde_json::Value>)> {
        self.twins.all_reported()
    }

    /// Delivers a message from the cloud (a cloud-to-device message on the device's
    /// `devices/{id}/messages/devicebound/…` topic) to every matching subscriber, stored for
    /// persistent sessions like any other; returns the number of subscribers.
    pub fn from_cloud(&mut self, publish: Publish, out: &mut Vec<Action>) -> usize {
        self.route(CLOUD_SENDER, publish, out)
    }

    /// Sends a message meant for one client only (twin responses, desired patches, method
    /// requests) at most at QoS `max_qos`, if it is connected and subscribed to its topic.
    pub(super) fn deliver_private(
        &mut self,
        client_id: &str,
        topic: String,
        body: bytes::Bytes,
        max_qos: QoS,
        out: &mut Vec<Action>,
    ) {
        let Some(session) = self.sessions.get(client_id) else { return };
        if session.connection.is_none() {
            return;
        }
        let Some(qos) = session.subscriptions.iter().filter(|(f, _)| matches(f, &topic)).map(|(_, o)| o.qos).max()
        else {
            return;
        };
        let publish = Publish {
            dup: false,
            qos: qos.min(max_qos),
            retain: false,
            topic,
            packet_id: None,
            payload: body,
            properties: Properties::default(),
        };
        self.deliver(client_id, publish, out);
    }

    /// Sends an IoT Hub message along the routes it matches: one copy per endpoint (however
    /// many routes name it) with the highest priority among them and that route's
    /// time-to-live (or the deployment's). Module inputs get theirs at QoS 1 in the target
    /// module's session, queued even before it first connects, as edgeHub keeps messages per
    /// endpoint; `$upstream` copies wait in the upstream queue. Returns the number of
    /// endpoints.
    pub(super) fn route_telemetry(
        &mut self,
        message: &RouteMessage,
        publish: &Publish,
        out: &mut Vec<Action>,
    ) -> usize {
        let device = match &message.source {
            MessageSource::Module { device, .. } | MessageSource::Telemetry { device } => device.clone(),
        };
        let mut chosen: Vec<Chosen> = Vec::new();
        for HubRoute { route, priority, ttl_secs } in &self.routes {
            if !route.matches(message) {
                continue;
            }
            let endpoint = match route.sink() {
                Sink::Upstream => None,
                Sink::ModuleInput { module, input } => Some((module.clone(), input.clone())),
            };
            match chosen.iter_mut().find(|(e, _, _)| *e == endpoint) {
                Some(best) if *priority < best.1 => *best = (endpoint, *priority, *ttl_secs),
                Some(_) => {}
                None => chosen.push((endpoint, *priority, *ttl_secs)),
            }
        }
        let count = chosen.len();
        for (input, priority, ttl) in chosen {
            let expires_at = match ttl {
                Some(ttl) => Some(self.now + u64::from(ttl)),
                None => self.ttl.map(|ttl| self.now + ttl),
            };
            let topic = match &input {
                None => crate::dialect::upstream_topic(message),
                Some((module, input)) => crate::dialect::input_topic(&device, module, input, message),
            };
            let copy = Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic,
                packet_id: None,
                payload: publish.payload.clone(),
                properties: Properties::default(),
            };
            let queued = Queued { publish: copy, priority, expires_at };
            let Some((module, _)) = input else {
                self.counters.routed_upstream += 1;
                if !self.enqueue_upstream(queued) {
                    self.counters.dropped_store_full += 1;
                }
                continue;
            };
            let client_id = format!("{device}/{module}");
            if !self.sessions.contains_key(&client_id) {
                self.sessions.insert(client_id.clone(), Session::new(client_id.clone(), Version::V311, false));
                self.save_session(&client_id);
            }
            self.deliver_queued(&client_id, queued, out);
        }
        count
    }

    /// Whether `message` would be stored somewhere along the routes.
    pub(super) fn routes_anywhere(&self, message: &RouteMessage) -> bool {
        self.routes.iter().any(|r| r.route.matches(message))
    }
}
