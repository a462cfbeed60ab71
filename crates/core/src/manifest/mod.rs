//! Azure IoT Edge deployment manifests (`modulesContent`), read as Azure writes them.
//!
//! [`DeploymentManifest::parse`] accepts `{"modulesContent": …}` or the at-scale form
//! `{"content": {"modulesContent": …}, …}` and checks everything it reads; every problem is
//! reported with its JSON path, so one run tells the whole story.

pub mod agent;
pub mod hub;
pub mod path;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

pub use agent::{DesiredStatus, EdgeAgentDesired, ImagePullPolicy, ModuleSpec, RegistryCredential, RestartPolicy};
pub use hub::{EdgeHubDesired, RouteSpec, StoreAndForward};
pub use path::{JsonPath, Problem};

use crate::ids::ModuleId;
use path::Problems;

/// Largest manifest accepted, in bytes (IoT Hub twins are far smaller).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A validated deployment manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentManifest {
    /// `$edgeAgent` desired properties.
    pub agent: EdgeAgentDesired,
    /// `$edgeHub` desired properties.
    pub hub: EdgeHubDesired,
    /// Desired properties of module twins, by module.
    pub module_twins: BTreeMap<ModuleId, Value>,
}

/// Every problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The problems, in document order of discovery.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid deployment manifest ({} problem{})",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

const DESIRED: &str = "properties.desired";

impl DeploymentManifest {
    /// Parses and validates manifest JSON text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let single = |message: String| ManifestError { problems: vec![Problem { path: JsonPath::root(), message }] };
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(single(format!("manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}", text.len())));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| single(format!("not valid JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Validates an already parsed JSON document.
    pub fn from_value(value: &Value) -> Result<Self, ManifestError> {
        let mut problems = Problems::default();
        let manifest = read(&mut problems, value);
        match manifest {
            Some(manifest) if problems.0.is_empty() => Ok(manifest),
            _ => {
                if problems.0.is_empty() {
                    problems.add(&JsonPath::root(), "manifest is incomplete");
                }
                Err(ManifestError { problems: problems.0 })
            }
        }
    }
}

fn desired<'a>(problems: &mut Problems, path: &JsonPath, value: &'a Value) -> Option<&'a Value> {
    let map = problems.object(path, value)?;
    for key in map.keys() {
        if key.starts_with("properties.desired.") {
            problems.add(
                &path.key(key),
                "layered deployment content belongs in a layered deployment, not a device manifest",
            );
        } else if key != DESIRED {
            problems.add(&path.key(key), format!("unknown field; expected {DESIRED:?}"));
        }
    }
    match map.get(DESIRED) {
        Some(value) => Some(value),
        None => {
            problems.add(&path.key(DESIRED), "is required");
            None
        }
    }
}

fn read(problems: &mut Problems, value: &Value) -> Option<DeploymentManifest> {
    let root = JsonPath::root();
    let top = problems.object(&root, value)?;
    let (content_path, content) = if let Some(content) = top.get("content") {
        let path = root.key("content");
        let inner = problems.object(&path, content)?;
        problems.unknown_keys(&path, inner, &["modulesContent"]);
        (path, inner)
    } else {
        problems.unknown_keys(&root, top, &["modulesContent"]);
        (root.clone(), top)
    };
    let mc_path = content_path.key("modulesContent");
    let Some(mc) = content.get("modulesContent") else {
        problems.add(&mc_path, "is required");
        return None;
    };
    let mc = problems.object(&mc_path, mc)?;

    let agent_path = mc_path.key("$edgeAgent");
    let agent = match mc.get("$edgeAgent") {
        Some(v) => desired(problems, &agent_path, v).and_then(|d| agent::parse(problems, &agent_path.key(DESIRED), d)),
        None => {
            problems.add(&agent_path, "is required");
            None
        }
    };
    let hub_path = mc_path.key("$edgeHub");
    let hub = match mc.get("$edgeHub") {
        Some(v) => desired(problems, &hub_path, v).and_then(|d| hub::parse(problems, &hub_path.key(DESIRED), d)),
        None => {
            problems.add(&hub_path, "is required");
            None
        }
    };
    let mut module_twins = BTreeMap::new();
    for (name, twin) in mc.iter().filter(|(k, _)| *k != "$edgeAgent" && *k != "$edgeHub") {
        let path = mc_path.key(name);
        let Some(props) = desired(problems, &path, twin) else { continue };
        if problems.object(&path.key(DESIRED), props).is_none() {
            continue;
        }
        let known = agent.as_ref().is_none_or(|a| a.modules.keys().any(|m| m.as_str() == name));
        if !known {
            problems.add(&path, "twin for a module that $edgeAgent does not define");
            continue;
        }
        match ModuleId::new(name.clone()) {
            Ok(id) => {
                module_twins.insert(id, props.clone());
            }
            Err(e) => problems.add(&path, e.to_string()),
        }
    }
    Some(DeploymentManifest { agent: agent?, hub: hub?, module_twins })
}

#[cfg(test)]
mod tests;
