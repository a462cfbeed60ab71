//! Names of the control plane's message topology on the broker (AMQP 0.9.1), shared by the
//! cloud, which declares it, and devices, which use it: exchanges, queues, routing keys and
//! message kinds.
//!
//! Device → cloud: topic exchange [`D2C_EXCHANGE`], routing key
//! `{device}.{module|$device}.{kind}`. Cloud → device: direct exchange [`C2D_EXCHANGE`] into
//! one durable queue per device component. Ids are encoded as routing-key words (`.` and `%`
//! percent-encoded), so the first word of a key is always exactly the device.

use std::fmt;

/// Device → cloud, topic exchange.
pub const D2C_EXCHANGE: &str = "outpost.d2c";
/// Cloud → device, direct exchange.
pub const C2D_EXCHANGE: &str = "outpost.c2d";
/// The built-in endpoint: telemetry of every device, for any consumer that binds a queue.
pub const EVENTS_EXCHANGE: &str = "outpost.events";
/// Where refused messages go, with the reason in their headers.
pub const DEAD_LETTER_EXCHANGE: &str = "outpost.dead-letter";
/// The queue behind [`DEAD_LETTER_EXCHANGE`].
pub const DEAD_LETTER_QUEUE: &str = "outpost.dead-letter";
/// The module word of messages from the device itself.
pub const DEVICE_WORD: &str = "$device";
/// Header naming why a message was dead-lettered.
pub const REASON_HEADER: &str = "x-outpost-reason";
/// Header of a twin request naming the component (`agent` or `hub`) the answer goes to.
pub const COMPONENT_HEADER: &str = "x-outpost-component";
/// Header naming the module a cloud → device message is for.
pub const MODULE_HEADER: &str = "x-outpost-module";

/// What a device → cloud message is; the last routing-key word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpKind {
    /// Telemetry (device-to-cloud messages).
    Telemetry,
    /// A reported-properties patch.
    Reported,
    /// A request for the full twin.
    TwinGet,
    /// The answer to a direct method call.
    MethodResponse,
}

impl UpKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::Telemetry, Self::Reported, Self::TwinGet, Self::MethodResponse];

    /// Its routing-key word.
    pub fn word(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Reported => "reported",
            Self::TwinGet => "twin-get",
            Self::MethodResponse => "method-response",
        }
    }

    /// The kind a routing-key word names.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.word() == word)
    }
}

/// A device component with its own cloud → device queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// The agent: its deployment (`$edgeAgent` twin) and its direct methods.
    Agent,
    /// The hub: twins and methods of modules, cloud-to-device messages.
    Hub,
}

impl Component {
    /// Every component.
    pub const ALL: [Self; 2] = [Self::Agent, Self::Hub];

    /// Its name in queue names and routing keys.
    pub fn word(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Hub => "hub",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// What a cloud → device message is, in its AMQP `type` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DownKind {
    /// A desired-properties patch of a twin.
    DesiredPatch,
    /// A whole twin, answering a [`UpKind::TwinGet`] or after a change the device missed.
    Twin,
    /// A direct method call.
    MethodRequest,
    /// A cloud-to-device message.
    Message,
}

impl DownKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::DesiredPatch, Self::Twin, Self::MethodRequest, Self::Message];

    /// Its `type` property.
    pub fn word(self) -> &'static str {
        match self {
            Self::DesiredPatch => "desired-patch",
            Self::Twin => "twin",
            Self::MethodRequest => "method-request",
            Self::Message => "c2d-message",
        }
    }

    /// The kind a `type` property names.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.word() == word)
    }
}

/// An id as one routing-key word: `%` and `.` percent-encoded.
pub fn word(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for ch in id.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '.' => out.push_str("%2E"),
            other => out.push(other),
        }
    }
    out
}

/// The inverse of [`word`]; `None` for a word [`word`] cannot produce.
pub fn unword(word: &str) -> Option<String> {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(at) = rest.find('%') {
        out.push_str(rest.get(..at)?);
        match rest.get(at..at + 3)? {
            "%25" => out.push('%'),
            "%2E" => out.push('.'),
            _ => return None,
        }
        rest = rest.get(at + 3..)?;
    }
    if rest.contains('.') {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

/// The routing key of a device → cloud message; `module` `None` for the device itself.
pub fn up_key(device: &str, module: Option<&str>, kind: UpKind) -> String {
    let module = module.map_or_else(|| DEVICE_WORD.to_owned(), word);
    format!("{}.{module}.{}", word(device), kind.word())
}

/// A parsed device → cloud routing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpKey {
    /// The device.
    pub device: String,
    /// The module; `None` for the device itself.
    pub module: Option<String>,
    /// What the message is.
    pub kind: UpKind,
}

/// Parses a routing key made by [`up_key`].
pub fn parse_up_key(key: &str) -> Option<UpKey> {
    let mut words = key.split('.');
    let device = unword(words.next()?)?;
    let module_word = words.next()?;
    let kind = UpKind::from_word(words.next()?)?;
    if words.next().is_some() || device.is_empty() {
        return None;
    }
    let module = if module_word == DEVICE_WORD { None } else { Some(unword(module_word)?) };
    Some(UpKey { device, module, kind })
}

/// The routing key (on [`C2D_EXCHANGE`]) of a device component's queue.
pub fn down_key(device: &str, component: Component) -> String {
    format!("{}.{}", word(device), component.word())
}

/// The durable queue a device component consumes.
pub fn device_queue(device: &str, component: Component) -> String {
    format!("outpost.device.{}", down_key(device, component))
}

/// The prefix of every queue of a device.
pub fn device_queue_prefix(device: &str) -> String {
    format!("outpost.device.{}.", word(device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_dots_stay_one_word() {
        assert_eq!(word("a.b%c"), "a%2Eb%25c");
        assert_eq!(unword("a%2Eb%25c").as_deref(), Some("a.b%c"));
        assert_eq!(unword("a.b"), None);
        assert_eq!(unword("a%41"), None);
        assert_eq!(unword("a%2"), None);
    }

    #[test]
    fn up_keys_round_trip() {
        let key = up_key("dev.1", Some("$edgeAgent"), UpKind::Reported);
        assert_eq!(key, "dev%2E1.$edgeAgent.reported");
        assert_eq!(
            parse_up_key(&key),
            Some(UpKey { device: "dev.1".into(), module: Some("$edgeAgent".into()), kind: UpKind::Reported })
        );
        assert_eq!(parse_up_key(&up_key("d", None, UpKind::Telemetry)).unwrap().module, None);
        for bad in ["", "d", "d.m", "d.m.nope", "d.m.telemetry.x", ".m.telemetry"] {
            assert_eq!(parse_up_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn device_queues_are_named_by_device_and_component() {
        assert_eq!(device_queue("d.1", Component::Agent), "outpost.device.d%2E1.agent");
        assert!(device_queue("d.1", Component::Hub).starts_with(&device_queue_prefix("d.1")));
        assert!(!device_queue("d.10", Component::Hub).starts_with(&device_queue_prefix("d.1")));
    }
}
