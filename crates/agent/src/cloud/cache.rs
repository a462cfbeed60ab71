//! What the agent knows of the cloud, sans-IO: the latest desired properties of each
//! configuration twin (`$edgeAgent`, `$edgeHub`, modules'), the deployment they make together,
//! and its reported properties as the cloud confirmed them, with their numbering. Persisted as one
//! JSON file so that the device works offline and never reports a sequence number twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The agent's own twin.
pub const AGENT: &str = "$edgeAgent";
/// The hub's twin.
pub const HUB: &str = "$edgeHub";

/// The cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloudCache {
    /// Desired properties (with `$version`) by twin.
    #[serde(default)]
    pub twins: BTreeMap<String, Map<String, Value>>,
    /// The agent's reported properties as the cloud has them, and the patches' numbering.
    #[serde(default)]
    pub reported: outpost_upstream::ReportedState,
}

fn version(desired: &Map<String, Value>) -> Option<u64> {
    desired.get("$version").and_then(Value::as_u64)
}

impl CloudCache {
    /// Takes a twin's desired properties; false when they are what the cache holds or older
    /// (a redelivery, or a reply overtaken by a newer change).
    pub fn take(&mut self, module: &str, desired: Map<String, Value>) -> bool {
        if let Some(known) = self.twins.get(module) {
            let stale = matches!((version(known), version(&desired)), (Some(old), Some(new)) if new < old);
            if stale || *known == desired {
                return false;
            }
        }
        self.twins.insert(module.to_owned(), desired);
        true
    }

    /// The deployment the twins make: `$edgeAgent` and `$edgeHub` with the twins of the modules
    /// `$edgeAgent` defines. `None` until both system twins are known.
    pub fn manifest(&self) -> Option<String> {
        let agent = self.twins.get(AGENT)?;
        let hub = self.twins.get(HUB)?;
        let modules: Vec<&String> =
            agent.get("modules").and_then(Value::as_object).map(|m| m.keys().collect()).unwrap_or_default();
        let mut content = Map::new();
        content.insert(AGENT.into(), json!({"properties.desired": agent}));
        content.insert(HUB.into(), json!({"properties.desired": hub}));
        for (module, desired) in &self.twins {
            if modules.contains(&module) {
                content.insert(module.clone(), json!({"properties.desired": desired}));
            }
        }
        Some(json!({"modulesContent": content}).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn newer_twins_replace_older_and_redeliveries_change_nothing() {
        let mut cache = CloudCache::default();
        assert!(cache.take(AGENT, obj(json!({"$version": 2, "a": 1}))));
        assert!(!cache.take(AGENT, obj(json!({"$version": 2, "a": 1}))));
        assert!(!cache.take(AGENT, obj(json!({"$version": 1, "a": 0}))), "an older twin is ignored");
        assert!(cache.take(AGENT, obj(json!({"$version": 3, "a": 2}))));
        assert_eq!(cache.twins[AGENT]["a"], 2);
    }

    #[test]
    fn the_manifest_needs_both_system_twins_and_keeps_only_defined_modules() {
        let mut cache = CloudCache::default();
        cache.take(AGENT, obj(json!({"$version": 1, "modules": {"sensor": {}}})));
        cache.take("sensor", obj(json!({"$version": 1, "rate": 5})));
        cache.take("gone", obj(json!({"$version": 1})));
        assert!(cache.manifest().is_none());
        cache.take(HUB, obj(json!({"$version": 1, "routes": {}})));
        let manifest: Value = serde_json::from_str(&cache.manifest().unwrap()).unwrap();
        let content = manifest["modulesContent"].as_object().unwrap();
        assert_eq!(content.keys().collect::<Vec<_>>(), ["$edgeAgent", "$edgeHub", "sensor"]);
        assert_eq!(content["sensor"]["properties.desired"]["rate"], 5);
    }
}
