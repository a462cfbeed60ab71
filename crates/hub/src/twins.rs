//! Module twins, served by the hub until the cloud does: desired properties from the applied
//! deployment (`modulesContent.{module}.properties.desired`) with a `$version` that grows when
//! they change, reported properties kept by the hub, and IoT Hub's request/response topics
//! (`$iothub/twin/GET`, `$iothub/twin/PATCH/properties/reported`, desired-property patches).
//! Without I/O: requests in, responses and patches out.

use std::collections::{BTreeMap, HashMap};

use outpost_core::merge_patch::merge;
use serde_json::{Map, Value};

/// One module's twin.
#[derive(Debug, Clone, Default)]
struct Twin {
    desired: Map<String, Value>,
    desired_version: i64,
    reported: Map<String, Value>,
    reported_version: i64,
}

/// Every module's twin, by module id.
#[derive(Debug, Default)]
pub struct Twins {
    twins: HashMap<String, Twin>,
}

/// What a twin request produced: the response topic and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]`.
    pub topic: String,
    /// JSON body (empty for 204).
    pub body: Vec<u8>,
}

/// The `$rid` of a request topic's query.
fn request_id(topic: &str) -> Option<&str> {
    let query = topic.split_once('?')?.1;
    query.split('&').find_map(|p| p.strip_prefix("$rid="))
}

/// What differs from `old` to `new`, as a JSON merge patch (removed keys become `null`).
fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = Map::new();
    for (key, value) in new {
        match (old.get(key), value) {
            (Some(Value::Object(o)), Value::Object(n)) => {
                let inner = diff(o, n);
                if !inner.is_empty() {
                    patch.insert(key.clone(), Value::Object(inner));
                }
            }
            (Some(o), n) if o == n => {}
            _ => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    patch
}

/// Applies a JSON merge patch (`null` removes).
impl Twins {
    /// Takes the desired properties of a new deployment; returns, per module whose desired
    /// properties changed, the patch to send (with its `$version`).
    pub fn set_desired(&mut self, desired: &BTreeMap<String, Value>) -> Vec<(String, Value)> {
        let mut patches = Vec::new();
        for (module, value) in desired {
            let mut new = value.as_object().cloned().unwrap_or_default();
            let given_version = new.remove("$version").and_then(|v| v.as_i64());
            new.remove("$metadata");
            let twin = self.twins.entry(module.clone()).or_default();
            let patch = diff(&twin.desired, &new);
            if patch.is_empty() && twin.desired_version > 0 {
                continue;
            }
            twin.desired = new;
            twin.desired_version = given_version.unwrap_or(twin.desired_version + 1).max(twin.desired_version + 1);
            let mut patch = patch;
            patch.insert("$version".into(), Value::from(twin.desired_version));
            patches.push((module.clone(), Value::Object(patch)));
        }
        // Modules no longer in the deployment keep their reported properties; their desired
        // properties empty out.
        for (module, twin) in self.twins.iter_mut().filter(|(m, _)| !desired.contains_key(*m)) {
            if !twin.desired.is_empty() {
                let mut patch = diff(&twin.desired, &Map::new());
                twin.desired.clear();
                twin.desired_version += 1;
                patch.insert("$version".into(), Value::from(twin.desired_version));
                patches.push((module.clone(), Value::Object(patch)));
            }
        }
        patches
    }

    /// Answers a twin request of `module` on `topic` with `body`; `None` for topics that are
    /// not twin requests (method responses, say).
    pub fn request(&mut self, module: &str, topic: &str, body: &[u8]) -> Option<Response> {
        let rid = request_id(topic).unwrap_or("");
        let respond = |status: u16, version: Option<i64>, body: Vec<u8>| {
            let version = version.map(|v| format!("&$version={v}")).unwrap_or_default();
            Response { topic: format!("$iothub/twin/res/{status}/?$rid={rid}{version}"), body }
        };
        if topic.starts_with("$iothub/twin/GET/") {
            let twin = self.twins.entry(module.to_owned()).or_default();
            let mut desired = twin.desired.clone();
            desired.insert("$version".into(), Value::from(twin.desired_version.max(1)));
            let mut reported = twin.reported.clone();
            reported.insert("$version".into(), Value::from(twin.reported_version.max(1)));
            let document = serde_json::json!({"desired": desired, "reported": reported});
            return Some(respond(200, None, document.to_string().into_bytes()));
        }
        if topic.starts_with("$iothub/twin/PATCH/properties/reported/") {
            let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(body) else {
                let error = serde_json::json!({"message": "the reported properties patch must be a JSON object"});
                return Some(respond(400, None, error.to_string().into_bytes()));
            };
            let twin = self.twins.entry(module.to_owned()).or_default();
            merge(&mut twin.reported, &patch);
            twin.reported_version = twin.reported_version.max(1) + 1;
            return Some(respond(204, Some(twin.reported_version), Vec::new()));
        }
        None
    }

    /// Restores `module`'s reported properties (from the store).
    pub fn restore_reported(&mut self, module: &str, reported: Map<String, Value>, version: i64) {
        let twin = self.twins.entry(module.to_owned()).or_default();
        twin.reported = reported;
        twin.reported_version = version;
    }

    /// `module`'s reported properties and their version, to be stored.
    pub fn reported_record(&self, module: &str) -> Option<(&Map<String, Value>, i64)> {
        self.twins.get(module).map(|t| (&t.reported, t.reported_version))
    }

    /// Every module's reported properties (to go up to the cloud).
    pub fn all_reported(&self) -> Vec<(String, Map<String, Value>)> {
        self.twins.iter().map(|(module, twin)| (module.clone(), twin.reported.clone())).collect()
    }

    /// The reported properties of `module` (for admin views).
    pub fn reported(&self, module: &str) -> Option<Value> {
        self.twins.get(module).map(|t| Value::Object(t.reported.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_patch_and_desired_changes_follow_iothub() {
        let mut twins = Twins::default();
        let first = BTreeMap::from([("filter".to_owned(), serde_json::json!({"threshold": 25, "mode": {"a": 1}}))]);
        let patches = twins.set_desired(&first);
        assert_eq!(
            patches,
            [("filter".to_owned(), serde_json::json!({"threshold": 25, "mode": {"a": 1}, "$version": 1}))]
        );

        let got = twins.request("filter", "$iothub/twin/GET/?$rid=7", b"").unwrap();
        assert_eq!(got.topic, "$iothub/twin/res/200/?$rid=7");
        let doc: Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(doc["desired"]["threshold"], 25);
        assert_eq!(doc["desired"]["$version"], 1);
        assert_eq!(doc["reported"]["$version"], 1);

        let ok = twins.request("filter", "$iothub/twin/PATCH/properties/reported/?$rid=8", br#"{"seen": 3}"#).unwrap();
        assert_eq!(ok.topic, "$iothub/twin/res/204/?$rid=8&$version=2");
        let bad = twins.request("filter", "$iothub/twin/PATCH/properties/reported/?$rid=9", b"[1]").unwrap();
        assert!(bad.topic.starts_with("$iothub/twin/res/400/"));
        assert_eq!(twins.reported("filter").unwrap()["seen"], 3);

        // Same desired again: no patch. A change: only what changed, removed keys as null.
        assert!(twins.set_desired(&first).is_empty());
        let second = BTreeMap::from([("filter".to_owned(), serde_json::json!({"threshold": 30, "mode": {"a": 1}}))]);
        assert_eq!(
            twins.set_desired(&second),
            [("filter".to_owned(), serde_json::json!({"threshold": 30, "$version": 2}))]
        );
        let patches = twins.set_desired(&BTreeMap::new());
        assert_eq!(
            patches,
            [("filter".to_owned(), serde_json::json!({"threshold": null, "mode": null, "$version": 3}))]
        );
        assert!(twins.request("filter", "$iothub/methods/res/200/?$rid=1", b"{}").is_none());
    }
}
