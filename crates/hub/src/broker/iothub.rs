//! The broker's IoT Hub side: routes from the deployment moving telemetry and module outputs
//! to module inputs, and module twins (requests answered, desired patches sent), with
//! messages meant for one client only.

use outpost_core::routes::{MessageSource, Route, RouteMessage, Sink};

use super::session::Session;
use super::{Action, Broker};
use crate::mqtt::topic::matches;
use crate::mqtt::{Properties, Publish, QoS, Version};
use crate::routes::HubDeployment;

impl Broker {
    /// Replaces the routes (from the deployment's `$edgeHub` desired properties).
    pub fn set_routes(&mut self, routes: Vec<Route>) {
        self.routes = routes;
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
        let Some(device) = self.device.clone() else { return };
        for (module, patch) in self.twins.set_desired(&deployment.module_twins) {
            let version = patch.get("$version").and_then(|v| v.as_i64()).unwrap_or(0);
            let topic = format!("$iothub/twin/PATCH/properties/desired/?$version={version}");
            let body = patch.to_string().into();
            self.deliver_private(&format!("{device}/{module}"), topic, body, QoS::AtLeastOnce, out);
        }
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

    /// Sends an IoT Hub message along the routes it matches: a copy to each module input
    /// named (once per input, QoS 1, queued in the target module's session even before it
    /// first connects, as edgeHub keeps messages per endpoint); `$upstream` is counted until
    /// the uplink exists. Returns the number of endpoints.
    pub(super) fn route_telemetry(
        &mut self,
        message: &RouteMessage,
        publish: &Publish,
        out: &mut Vec<Action>,
    ) -> usize {
        let device = match &message.source {
            MessageSource::Module { device, .. } | MessageSource::Telemetry { device } => device.clone(),
        };
        let mut inputs: Vec<(String, String)> = Vec::new();
        let mut upstream = false;
        for route in &self.routes {
            if !route.matches(message) {
                continue;
            }
            match route.sink() {
                Sink::Upstream => upstream = true,
                Sink::ModuleInput { module, input } => {
                    if !inputs.iter().any(|(m, i)| m == module && i == input) {
                        inputs.push((module.clone(), input.clone()));
                    }
                }
            }
        }
        if upstream {
            self.upstream_unsent += 1;
        }
        for (module, input) in &inputs {
            let client_id = format!("{device}/{module}");
            let version = Version::V311;
            if !self.sessions.contains_key(&client_id) {
                self.sessions.insert(client_id.clone(), Session::new(client_id.clone(), version, false));
                self.save_session(&client_id);
            }
            let copy = Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: crate::dialect::input_topic(&device, module, input, message),
                packet_id: None,
                payload: publish.payload.clone(),
                properties: Properties::default(),
            };
            self.deliver(&client_id, copy, out);
        }
        inputs.len() + usize::from(upstream)
    }
}
