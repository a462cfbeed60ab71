//! `$edgeHub` desired properties: routes and store-and-forward settings. Route text is kept
//! as written and checked against the route language ([`crate::routes`]) here, so that a
//! broken route fails the deployment with its path and position.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::path::{JsonPath, Problems, kind};

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteSpec {
    /// `FROM … [WHERE …] INTO …`.
    pub route: String,
    /// 0 (highest) to 9; `None` ranks below every explicit priority.
    pub priority: Option<u8>,
    /// Seconds a message may wait; `None` or 0 means the global TTL.
    pub time_to_live_secs: Option<u32>,
}

/// Store-and-forward settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreAndForward {
    /// Global message TTL in seconds; negative means forever.
    pub time_to_live_secs: i64,
    /// Store size limit in bytes.
    pub max_size_bytes: Option<u64>,
}

impl Default for StoreAndForward {
    fn default() -> Self {
        Self { time_to_live_secs: 7200, max_size_bytes: None }
    }
}

/// The `$edgeHub` desired properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeHubDesired {
    /// "1.0" to "1.3".
    pub schema_version: String,
    /// Routes by name.
    pub routes: BTreeMap<String, RouteSpec>,
    /// Store-and-forward settings.
    pub store_and_forward: StoreAndForward,
}

fn route_name_ok(name: &str) -> bool {
    !name.is_empty() && !name.contains(['.', '$', '#', ' '])
}

fn route(problems: &mut Problems, path: &JsonPath, value: &Value) -> Option<RouteSpec> {
    match value {
        Value::String(text) => Some(RouteSpec { route: text.clone(), priority: None, time_to_live_secs: None }),
        Value::Object(map) => {
            problems.unknown_keys(path, map, &["route", "priority", "timeToLiveSecs"]);
            let text = problems.string(path, map, "route")?;
            let priority = problems.opt_uint(path, map, "priority", 9).map(|p| p as u8);
            let time_to_live_secs =
                problems.opt_uint(path, map, "timeToLiveSecs", u64::from(u32::MAX)).map(|t| t as u32);
            Some(RouteSpec { route: text, priority, time_to_live_secs })
        }
        other => {
            problems.add(path, format!("expected a route string or an object with \"route\", found {}", kind(other)));
            None
        }
    }
}

/// Reads route `name` (a `routes` entry, found at `path`), recording every problem: the name,
/// the string or object form, and the route text itself.
pub(crate) fn named_route(problems: &mut Problems, path: &JsonPath, name: &str, value: &Value) -> Option<RouteSpec> {
    if !route_name_ok(name) {
        problems.add(path, "route names must not be empty or contain '.', '$', '#' or spaces");
    }
    let spec = route(problems, path, value)?;
    if spec.route.trim().is_empty() {
        problems.add(path, "the route text is empty");
    } else if let Err(error) = crate::routes::Route::parse(name, &spec.route) {
        // The route language is checked here, so that a deployment with a
        // broken route is refused whole, with the route's path and position.
        problems.add(path, error.to_string());
    }
    Some(spec)
}

/// Reads `$edgeHub`'s `properties.desired`, recording every problem.
pub fn parse(problems: &mut Problems, path: &JsonPath, value: &Value) -> Option<EdgeHubDesired> {
    let map = problems.object(path, value)?;
    problems.unknown_keys(
        path,
        map,
        &[
            "schemaVersion",
            "routes",
            "storeAndForwardConfiguration",
            "mqttBroker",
            "integrity",
            "$version",
            "$metadata",
        ],
    );
    let schema_version = problems.string(path, map, "schemaVersion");
    if let Some(v) = &schema_version
        && !["1.0", "1.1", "1.2", "1.3"].contains(&v.as_str())
    {
        problems.add(&path.key("schemaVersion"), format!("{v:?} is not supported; use \"1.0\" to \"1.3\""));
    }
    let mut routes = BTreeMap::new();
    let routes_path = path.key("routes");
    match map.get("routes") {
        None => problems.add(&routes_path, "is required"),
        Some(value) => {
            if let Some(entries) = problems.object(&routes_path, value) {
                for (name, value) in entries {
                    if let Some(spec) = named_route(problems, &routes_path.key(name), name, value) {
                        routes.insert(name.clone(), spec);
                    }
                }
            }
        }
    }
    let mut store_and_forward = StoreAndForward::default();
    if let Some(value) = map.get("storeAndForwardConfiguration") {
        let saf_path = path.key("storeAndForwardConfiguration");
        if let Some(saf) = problems.object(&saf_path, value) {
            problems.unknown_keys(&saf_path, saf, &["timeToLiveSecs", "storeLimits"]);
            if let Some(ttl) = saf.get("timeToLiveSecs") {
                match ttl.as_i64() {
                    Some(ttl) => store_and_forward.time_to_live_secs = ttl,
                    None => problems.add(&saf_path.key("timeToLiveSecs"), format!("expected an integer, found {ttl}")),
                }
            }
            if let Some(limits) = saf.get("storeLimits") {
                let limits_path = saf_path.key("storeLimits");
                if let Some(limits) = problems.object(&limits_path, limits) {
                    problems.unknown_keys(&limits_path, limits, &["maxSizeBytes"]);
                    store_and_forward.max_size_bytes =
                        problems.opt_uint(&limits_path, limits, "maxSizeBytes", u64::MAX);
                }
            }
        }
    }
    Some(EdgeHubDesired { schema_version: schema_version?, routes, store_and_forward })
}
