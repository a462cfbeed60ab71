//! Messages and IoT Hub's MQTT property bags (`k=v&k2=v2`, URL-encoded, appended to the
//! topic), with the system properties modules set and read.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

/// A message to or from the hub.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The body.
    pub body: Vec<u8>,
    /// Application properties.
    pub properties: BTreeMap<String, String>,
    /// System properties by their wire names (`$.ct`, `$.cdid`, …).
    pub system: BTreeMap<String, String>,
}

impl Message {
    /// A JSON message (content type and encoding set as the hub expects for `$body` routes).
    pub fn json(value: &serde_json::Value) -> Self {
        let system = BTreeMap::from([
            ("$.ct".to_owned(), "application/json".to_owned()),
            ("$.ce".to_owned(), "utf-8".to_owned()),
        ]);
        Self { body: value.to_string().into_bytes(), properties: BTreeMap::new(), system }
    }

    /// Adds an application property.
    pub fn with_property(mut self, key: &str, value: &str) -> Self {
        self.properties.insert(key.to_owned(), value.to_owned());
        self
    }
}

/// The topic a module publishes `message` on for output `output`.
pub fn output_topic(device: &str, module: &str, output: &str, message: &Message) -> String {
    let encode = outpost_core::sas::url_encode;
    let mut bag = vec![format!("{}={}", encode("$.on"), encode(output))];
    bag.extend(
        message.system.iter().filter(|(k, _)| *k != "$.on").map(|(k, v)| format!("{}={}", encode(k), encode(v))),
    );
    bag.extend(message.properties.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))));
    format!("devices/{device}/modules/{module}/messages/events/{}", bag.join("&"))
}

/// Splits a property bag into system (`$.`-prefixed) and application properties.
pub fn parse_bag(bag: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut system = BTreeMap::new();
    let mut properties = BTreeMap::new();
    for pair in bag.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        if k.starts_with("$.") {
            system.insert(k, v);
        } else {
            properties.insert(k, v);
        }
    }
    (system, properties)
}

/// The input name and message of a publish on `devices/{d}/modules/{m}/inputs/{input}/{bag}`.
pub fn parse_input(device: &str, module: &str, topic: &str, body: &[u8]) -> Option<(String, Message)> {
    let rest = topic.strip_prefix(&format!("devices/{device}/modules/{module}/inputs/"))?;
    let (input, bag) = rest.split_once('/').unwrap_or((rest, ""));
    let (system, properties) = parse_bag(bag);
    Some((input.to_owned(), Message { body: body.to_vec(), properties, system }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_carry_their_name_and_properties_url_encoded() {
        let message = Message::json(&serde_json::json!({"t": 1})).with_property("Message Type", "Alert&Co");
        let topic = output_topic("dev1", "filter", "output1", &message);
        assert_eq!(
            topic,
            "devices/dev1/modules/filter/messages/events/%24.on=output1&%24.ce=utf-8&%24.ct=application%2Fjson&Message%20Type=Alert%26Co"
        );
        let bag = topic.rsplit('/').next().unwrap();
        let (system, properties) = parse_bag(bag);
        assert_eq!(system.get("$.on").map(String::as_str), Some("output1"));
        assert_eq!(properties.get("Message Type").map(String::as_str), Some("Alert&Co"));
    }

    #[test]
    fn inputs_are_recognised_with_their_sender() {
        let topic = "devices/dev1/modules/filter/inputs/input1/%24.cdid=dev1&%24.cmid=sensor&k=v";
        let (input, message) = parse_input("dev1", "filter", topic, b"{}").unwrap();
        assert_eq!(input, "input1");
        assert_eq!(message.system.get("$.cmid").map(String::as_str), Some("sensor"));
        assert_eq!(message.properties.get("k").map(String::as_str), Some("v"));
        assert!(parse_input("dev1", "filter", "devices/dev1/modules/other/inputs/x/", b"").is_none());
        assert_eq!(parse_input("dev1", "filter", "devices/dev1/modules/filter/inputs/bare", b"").unwrap().0, "bare");
    }
}
