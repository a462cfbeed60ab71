//! IoT Hub's MQTT dialect, the part that needs no I/O: telemetry topics and their property
//! bags read into the routing view of a message (with the sender's identity stamped on it),
//! and the topics messages are delivered to module inputs on.

use std::collections::BTreeMap;

use outpost_core::routes::{MessageSource, RouteMessage, system, system_property_for_wire_name};
use percent_encoding::percent_decode_str;

use crate::auth::Access;
use crate::mqtt::Publish;

/// Property-bag keys that carry system properties, in the order they are written.
const WIRE_NAMES: &[&str] =
    &["$.mid", "$.cid", "$.to", "$.uid", "$.ct", "$.ce", "$.schema", "$.ctime", "$.sub", "$.cdid", "$.cmid"];

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The routing view of `publish` when it is telemetry (or a module output) of the IoT Hub
/// identity `access`; `None` for any other publish.
pub fn telemetry(access: &Access, publish: &Publish) -> Option<RouteMessage> {
    let (prefix, device, module) = match access {
        Access::Module { device, module } => {
            (format!("devices/{device}/modules/{module}/messages/events"), device, Some(module))
        }
        Access::Device { device } => (format!("devices/{device}/messages/events"), device, None),
        _ => return None,
    };
    let rest = publish.topic.strip_prefix(&prefix)?;
    let bag = match rest.strip_prefix('/') {
        Some(bag) => bag,
        None if rest.is_empty() => "",
        None => return None,
    };
    let mut system_properties = BTreeMap::new();
    let mut properties = BTreeMap::new();
    let mut output = None;
    for pair in bag.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (decode(key), decode(value));
        if key == "$.on" {
            output = Some(value);
        } else if let Some(name) = system_property_for_wire_name(&key) {
            system_properties.insert(name.to_owned(), value);
        } else if !key.starts_with("$.") {
            properties.insert(key, value);
        }
    }
    // MQTT 5 senders may use properties instead of the bag.
    if let Some(content_type) = &publish.properties.content_type {
        system_properties.entry(system::CONTENT_TYPE.to_owned()).or_insert_with(|| content_type.clone());
    }
    for (key, value) in &publish.properties.user_properties {
        properties.entry(key.clone()).or_insert_with(|| value.clone());
    }
    // Who sent it is the hub's to say, never the sender's.
    system_properties.insert(system::CONNECTION_DEVICE_ID.to_owned(), device.clone());
    match module {
        Some(module) => system_properties.insert(system::CONNECTION_MODULE_ID.to_owned(), module.clone()),
        None => system_properties.remove(system::CONNECTION_MODULE_ID),
    };
    let source = match module {
        Some(module) => MessageSource::Module { device: device.clone(), module: module.clone(), output },
        None => MessageSource::Telemetry { device: device.clone() },
    };
    Some(RouteMessage { source, system: system_properties, properties, body: publish.payload.to_vec() })
}

/// The property bag of `message`: system properties in IoT Hub's order, then application
/// properties, URL-encoded.
fn bag(message: &RouteMessage) -> String {
    let encode = outpost_core::sas::url_encode;
    let mut bag = Vec::new();
    if let MessageSource::Module { output: Some(output), .. } = &message.source {
        bag.push(format!("%24.on={}", encode(output)));
    }
    for wire in WIRE_NAMES {
        if let Some(value) = system_property_for_wire_name(wire).and_then(|name| message.system.get(name)) {
            bag.push(format!("{}={}", encode(wire), encode(value)));
        }
    }
    bag.extend(message.properties.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))));
    bag.join("&")
}

/// The topic `message` is delivered on to input `input` of `module` on `device`: the
/// message's system and application properties go in the bag (not its output name).
pub fn input_topic(device: &str, module: &str, input: &str, message: &RouteMessage) -> String {
    let mut message = message.clone();
    if let MessageSource::Module { output, .. } = &mut message.source {
        *output = None;
    }
    format!("devices/{device}/modules/{module}/inputs/{input}/{}", bag(&message))
}

/// The topic `message` is kept under for `$upstream`: its telemetry topic, with the output
/// name and the sender the hub stamped in the bag.
pub fn upstream_topic(message: &RouteMessage) -> String {
    match &message.source {
        MessageSource::Module { device, module, .. } => {
            format!("devices/{device}/modules/{module}/messages/events/{}", bag(message))
        }
        MessageSource::Telemetry { device } => format!("devices/{device}/messages/events/{}", bag(message)),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::mqtt::{Properties, QoS};

    fn publish(topic: &str) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.into(),
            packet_id: Some(1),
            payload: Bytes::from_static(b"{\"t\":1}"),
            properties: Properties::default(),
        }
    }

    #[test]
    fn module_outputs_are_read_with_the_senders_identity() {
        let sensor = Access::Module { device: "dev1".into(), module: "sensor".into() };
        let topic = "devices/dev1/modules/sensor/messages/events/%24.on=temperatureOutput&%24.ct=application%2Fjson&%24.cmid=forged&alert=yes%20please";
        let message = telemetry(&sensor, &publish(topic)).unwrap();
        assert_eq!(
            message.source,
            MessageSource::Module {
                device: "dev1".into(),
                module: "sensor".into(),
                output: Some("temperatureOutput".into())
            }
        );
        assert_eq!(message.system.get("contentType").map(String::as_str), Some("application/json"));
        assert_eq!(message.system.get("connectionModuleId").map(String::as_str), Some("sensor"), "not forged");
        assert_eq!(message.properties.get("alert").map(String::as_str), Some("yes please"));
        let bare = telemetry(&sensor, &publish("devices/dev1/modules/sensor/messages/events")).unwrap();
        assert_eq!(bare.source, MessageSource::Module { device: "dev1".into(), module: "sensor".into(), output: None });
        assert!(telemetry(&sensor, &publish("devices/dev1/modules/sensor/messages/eventsX")).is_none());
        assert!(telemetry(&Access::Full, &publish(topic)).is_none());
    }

    #[test]
    fn inputs_carry_the_properties_in_the_bag() {
        let sensor = Access::Module { device: "dev1".into(), module: "sensor".into() };
        let message =
            telemetry(&sensor, &publish("devices/dev1/modules/sensor/messages/events/%24.on=out&k=v%26w")).unwrap();
        assert_eq!(
            input_topic("dev1", "filter", "input1", &message),
            "devices/dev1/modules/filter/inputs/input1/%24.cdid=dev1&%24.cmid=sensor&k=v%26w"
        );
        assert_eq!(
            upstream_topic(&message),
            "devices/dev1/modules/sensor/messages/events/%24.on=out&%24.cdid=dev1&%24.cmid=sensor&k=v%26w"
        );
    }
}
