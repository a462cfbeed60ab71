//! The message a route is evaluated against: where it came from, its system and application
//! properties and its body, plus the system property names routes use and their MQTT
//! property-bag spellings.

use std::collections::BTreeMap;

/// System property names, as routes spell them after `$` (`$connectionModuleId`).
pub mod system {
    /// `$.mid`: the sender's message id.
    pub const MESSAGE_ID: &str = "messageId";
    /// When the hub accepted the message.
    pub const ENQUEUED_TIME: &str = "enqueuedTime";
    /// `$.to`: the destination.
    pub const TO: &str = "to";
    /// `$.cid`: the correlation id.
    pub const CORRELATION_ID: &str = "correlationId";
    /// `$.uid`: the user id.
    pub const USER_ID: &str = "userId";
    /// Feedback requested for cloud-to-device messages.
    pub const ACK: &str = "ack";
    /// `$.cdid`: the device the sender authenticated as; set by the hub, never the sender.
    pub const CONNECTION_DEVICE_ID: &str = "connectionDeviceId";
    /// `$.cmid`: the module the sender authenticated as; absent for leaf devices.
    pub const CONNECTION_MODULE_ID: &str = "connectionModuleId";
    /// The generation id of the sending device.
    pub const CONNECTION_DEVICE_GENERATION_ID: &str = "connectionDeviceGenerationId";
    /// How the sender authenticated.
    pub const CONNECTION_AUTH_METHOD: &str = "connectionAuthMethod";
    /// `$.ct`: the body's media type; `application/json` enables `$body` queries.
    pub const CONTENT_TYPE: &str = "contentType";
    /// `$.ce`: the body's character encoding (`utf-8`, `utf-16`, `utf-32`).
    pub const CONTENT_ENCODING: &str = "contentEncoding";
    /// `$.sub`: the IoT Plug and Play component.
    pub const COMPONENT_NAME: &str = "componentName";
    /// `$.schema`: the body's schema.
    pub const MESSAGE_SCHEMA: &str = "messageSchema";
    /// `$.ctime`: when the sender created the message.
    pub const CREATION_TIME: &str = "creationTime";
}

/// The system property an MQTT property-bag key (`$.cmid`) carries, if it carries one.
/// `$.on` (the output) is part of the [`MessageSource`] instead; `$.exp` and `$.ifid` are not
/// visible to routes.
pub fn system_property_for_wire_name(key: &str) -> Option<&'static str> {
    Some(match key {
        "$.mid" => system::MESSAGE_ID,
        "$.cid" => system::CORRELATION_ID,
        "$.to" => system::TO,
        "$.uid" => system::USER_ID,
        "$.ct" => system::CONTENT_TYPE,
        "$.ce" => system::CONTENT_ENCODING,
        "$.cdid" => system::CONNECTION_DEVICE_ID,
        "$.cmid" => system::CONNECTION_MODULE_ID,
        "$.schema" => system::MESSAGE_SCHEMA,
        "$.ctime" => system::CREATION_TIME,
        "$.sub" => system::COMPONENT_NAME,
        _ => return None,
    })
}

/// Who sent a message, which is what a route's FROM path selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSource {
    /// Telemetry from a device (a leaf device behind the gateway): source path `/messages`.
    Telemetry {
        /// The sending device.
        device: String,
    },
    /// A message from a module: source path `/messages/modules/{module}`, or
    /// `/messages/modules/{module}/outputs/{output}` when it names an output (`$.on`).
    Module {
        /// The device the module runs on.
        device: String,
        /// The sending module.
        module: String,
        /// The output it was sent on, if any.
        output: Option<String>,
    },
}

/// What a route sees of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMessage {
    /// Who sent it.
    pub source: MessageSource,
    /// System properties by the names in [`system`] (`$name` in a route).
    pub system: BTreeMap<String, String>,
    /// Application properties (bare names in a route). Their values are strings.
    pub properties: BTreeMap<String, String>,
    /// The body, queried by `$body.…` when it is JSON.
    pub body: Vec<u8>,
}

impl RouteMessage {
    /// A message from `source` with no properties and an empty body.
    pub fn new(source: MessageSource) -> Self {
        Self { source, system: BTreeMap::new(), properties: BTreeMap::new(), body: Vec::new() }
    }
}

/// Whether `a` and `b` are equal ignoring case, as .NET's `OrdinalIgnoreCase` compares.
pub(super) fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// The value of property `name` in `map`: an exact match, else one differing only in case
/// (edgeHub's property bags ignore case).
pub(super) fn lookup<'m>(map: &'m BTreeMap<String, String>, name: &str) -> Option<&'m str> {
    map.get(name)
        .or_else(|| map.iter().find(|(key, _)| eq_ignore_case(key, name)).map(|(_, value)| value))
        .map(String::as_str)
}
