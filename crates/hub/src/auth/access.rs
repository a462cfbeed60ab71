//! What an authenticated client may publish and subscribe to. A module may use only its own
//! IoT Hub topics (telemetry and outputs, its inputs, its twin and methods), a device only its
//! own; configured users and anonymous clients get the filters their configuration lists.

use crate::mqtt::topic::matches;

/// An authenticated client's rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// An IoT Hub module of the device.
    Module {
        /// Device id.
        device: String,
        /// Module id.
        module: String,
    },
    /// An IoT Hub (leaf) device.
    Device {
        /// Device id.
        device: String,
    },
    /// Topic filters from the configuration.
    Rules {
        /// Filters it may publish to.
        publish: Vec<String>,
        /// Filters it may subscribe to.
        subscribe: Vec<String>,
    },
    /// Everything (tests and embedded use).
    Full,
}

/// Whether every topic `filter` can match is matched by `allowed`.
fn within(allowed: &str, filter: &str) -> bool {
    let mut a = allowed.split('/');
    let mut f = filter.split('/');
    loop {
        match (a.next(), f.next()) {
            (Some("#"), _) => return true,
            (_, Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(x), Some(y)) if x == y && y != "+" => {}
            (None, None) => return true,
            // "a/#" also matches "a" itself.
            (Some(rest), None) => return rest == "#" && a.next().is_none(),
            _ => return false,
        }
    }
}

impl Access {
    fn iothub_prefix(&self) -> Option<String> {
        match self {
            Self::Module { device, module } => Some(format!("devices/{device}/modules/{module}/")),
            Self::Device { device } => Some(format!("devices/{device}/")),
            _ => None,
        }
    }

    /// Whether the client may publish to `topic`.
    pub fn may_publish(&self, topic: &str) -> bool {
        match self {
            Self::Full => true,
            Self::Rules { publish, .. } => publish.iter().any(|f| matches(f, topic)),
            Self::Module { .. } | Self::Device { .. } => {
                let prefix = self.iothub_prefix().unwrap_or_default();
                topic
                    .strip_prefix(&prefix)
                    .is_some_and(|rest| rest.starts_with("messages/events/") || rest == "messages/events")
                    || topic.starts_with("$iothub/twin/GET/")
                    || topic.starts_with("$iothub/twin/PATCH/properties/reported/")
                    || topic.starts_with("$iothub/methods/res/")
            }
        }
    }

    /// Whether the client may subscribe to `filter`.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        match self {
            Self::Full => true,
            Self::Rules { subscribe, .. } => subscribe.iter().any(|allowed| within(allowed, filter)),
            Self::Module { .. } | Self::Device { .. } => {
                let prefix = self.iothub_prefix().unwrap_or_default();
                let own = match self {
                    Self::Module { .. } => filter.starts_with(&prefix),
                    _ => filter.starts_with(&format!("{prefix}messages/devicebound/")),
                };
                own || ["$iothub/twin/res/", "$iothub/twin/PATCH/properties/desired/", "$iothub/methods/POST/"]
                    .iter()
                    .any(|p| filter.starts_with(p))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_use_only_their_own_topics() {
        let m = Access::Module { device: "d1".into(), module: "sensor".into() };
        assert!(m.may_publish("devices/d1/modules/sensor/messages/events/%24.on=temperatureOutput"));
        assert!(m.may_publish("$iothub/twin/GET/?$rid=1"));
        assert!(m.may_publish("$iothub/twin/PATCH/properties/reported/?$rid=2"));
        assert!(m.may_publish("$iothub/methods/res/200/?$rid=3"));
        assert!(!m.may_publish("devices/d1/modules/filter/messages/events/"), "another module's telemetry");
        assert!(!m.may_publish("devices/d1/modules/sensor/inputs/x/"), "its own inputs are the hub's to send");
        assert!(!m.may_publish("anything/else"));
        assert!(m.may_subscribe("devices/d1/modules/sensor/#"));
        assert!(m.may_subscribe("$iothub/twin/res/#"));
        assert!(m.may_subscribe("$iothub/methods/POST/#"));
        assert!(!m.may_subscribe("devices/d1/modules/filter/#"));
        assert!(!m.may_subscribe("#"));
        let d = Access::Device { device: "leaf".into() };
        assert!(d.may_publish("devices/leaf/messages/events/a=b"));
        assert!(d.may_subscribe("devices/leaf/messages/devicebound/#"));
        assert!(!d.may_subscribe("devices/leaf/modules/x/#"));
    }

    #[test]
    fn configured_rules_allow_what_they_list() {
        let r = Access::Rules { publish: vec!["sensors/+/temp".into()], subscribe: vec!["alerts/#".into()] };
        assert!(r.may_publish("sensors/a/temp"));
        assert!(!r.may_publish("sensors/a/humidity"));
        assert!(r.may_subscribe("alerts/#"));
        assert!(r.may_subscribe("alerts/fire"));
        assert!(r.may_subscribe("alerts/+/x"));
        assert!(!r.may_subscribe("#"));
        assert!(!r.may_subscribe("other"));
    }
}
