//! One device's effective configuration: the base deployment, the layers above it applied
//! in order, the merged manifest validated as the device will validate it, and why every
//! other deployment that targets the device does not apply.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

use super::layer::{Setting, validate_layer};
use super::{DESIRED, Deployment, StandardError, parse_manifest, validate_standard};
use crate::manifest::path::kind;
use crate::manifest::{DeploymentManifest, JsonPath, Problem};

/// What applies to one device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effective {
    /// The merged `modulesContent` (module name → `{"properties.desired": …}`), the shape of a
    /// standard manifest, ready to deliver; empty when no standard deployment targets the device.
    pub modules_content: Map<String, Value>,
    /// `modules_content` as validated; `None` when there is no base.
    pub manifest: Option<DeploymentManifest>,
    /// Ids of the deployments applied, in order: the base, then the layers.
    pub applied: Vec<String>,
    /// Ids of the deployments that target the device but do not apply, and why; most
    /// important (highest priority, latest created) first.
    pub skipped: Vec<(String, SkipReason)>,
}

/// Why a deployment that targets a device does not apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A standard deployment outranked by the base: standard deployments are not merged.
    Outranked {
        /// The base deployment's id.
        base: String,
    },
    /// A layer whose priority is not above the base's.
    NotAboveBase {
        /// The base deployment's id.
        base: String,
        /// The base deployment's priority.
        base_priority: u32,
    },
    /// A layer with no standard deployment beneath it.
    NoBase,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Outranked { base } => {
                write!(f, "outranked by standard deployment {base:?}; standard deployments are not merged")
            }
            Self::NotAboveBase { base, base_priority } => {
                write!(f, "layers apply only above the base's priority, {base_priority} (standard deployment {base:?})")
            }
            Self::NoBase => f.write_str("no standard deployment targets the device; layers need a base"),
        }
    }
}

/// A problem in a merged manifest, with the layer that set the value at fault, if one did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlamedProblem {
    /// The manifest problem.
    pub problem: Problem,
    /// The last applied layer that set the path of the problem, a path around it or a path
    /// inside it; `None` if no layer did (the base is at fault).
    pub layer: Option<String>,
}

impl fmt::Display for BlamedProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.problem)?;
        match &self.layer {
            Some(id) => write!(f, " (set by layered deployment {id:?})"),
            None => f.write_str(" (from the base deployment)"),
        }
    }
}

/// Why a device's effective configuration cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectiveError {
    /// Two of the deployments given have the same id.
    #[error("deployment {id:?} is given twice")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// The base deployment's content is not a valid standard deployment.
    #[error("base deployment {id:?} is invalid")]
    Base {
        /// The base deployment's id.
        id: String,
        /// What is wrong with it.
        #[source]
        source: StandardError,
    },
    /// A layer to apply is not valid layered content.
    #[error("layered deployment {id:?} is invalid")]
    Layer {
        /// The layer's id.
        id: String,
        /// What is wrong with it.
        #[source]
        source: super::LayerError,
    },
    /// A layer sets a path that runs through a value that is not an object.
    #[error("layered deployment {id:?} sets {key:?} of {module:?} through {found} at {at}; only objects have keys")]
    ThroughNonObject {
        /// The layer's id.
        id: String,
        /// The module whose desired properties it sets.
        module: String,
        /// The layer's key (`properties.desired.…`).
        key: String,
        /// Where the value that is not an object is, in the merged content.
        at: JsonPath,
        /// What it is instead ("a number", …).
        found: &'static str,
    },
    /// The merged content is not a valid manifest.
    #[error(
        "layers merged onto base deployment {base:?} make an invalid manifest ({} problem{}){}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.iter().map(|p| format!("\n  {p}")).collect::<String>()
    )]
    InvalidMerge {
        /// The base deployment's id.
        base: String,
        /// Every problem, with the layer that caused it.
        problems: Vec<BlamedProblem>,
    },
}

/// Ranks deployments of one kind: priority, then creation, then id, so that the outcome never
/// depends on the order the deployments are given in.
fn rank(d: &Deployment) -> (u32, u64, &str) {
    (d.priority, d.created, &d.id)
}

/// Computes the effective configuration of a device from the deployments that target it (the
/// caller has evaluated their target conditions).
///
/// The base is the standard deployment of highest priority, ties going to the most recently
/// created; the layers above its priority apply in ascending (priority, created) order, each
/// overwriting what the base and lower layers set at its paths. Only the base and the applied
/// layers are validated; the merged result is validated as a device will validate it.
pub fn effective<'a>(deployments: impl IntoIterator<Item = &'a Deployment>) -> Result<Effective, EffectiveError> {
    let mut deployments: Vec<&Deployment> = deployments.into_iter().collect();
    let mut ids = HashSet::new();
    if let Some(twice) = deployments.iter().find(|d| !ids.insert(d.id.as_str())) {
        return Err(EffectiveError::DuplicateId { id: twice.id.clone() });
    }
    deployments.sort_by(|a, b| rank(b).cmp(&rank(a)));
    let Some(base) = deployments.iter().copied().find(|d| !d.layered) else {
        let skipped = deployments.iter().map(|d| (d.id.clone(), SkipReason::NoBase)).collect();
        return Ok(Effective { skipped, ..Effective::default() });
    };
    let base_manifest = validate_standard(&base.modules_content)
        .map_err(|source| EffectiveError::Base { id: base.id.clone(), source })?;

    let mut skipped = Vec::new();
    let mut layers = Vec::new();
    for d in deployments.iter().copied().filter(|d| d.id != base.id) {
        if !d.layered {
            skipped.push((d.id.clone(), SkipReason::Outranked { base: base.id.clone() }));
        } else if d.priority <= base.priority {
            let reason = SkipReason::NotAboveBase { base: base.id.clone(), base_priority: base.priority };
            skipped.push((d.id.clone(), reason));
        } else {
            layers.push(d);
        }
    }
    layers.reverse();

    let mut content = base.modules_content.clone();
    let mut applied = vec![base.id.clone()];
    let mut written: Vec<(&str, JsonPath)> = Vec::new();
    for d in &layers {
        let layer =
            validate_layer(&d.modules_content).map_err(|source| EffectiveError::Layer { id: d.id.clone(), source })?;
        for setting in layer.settings() {
            let wrote = set(&mut content, setting).map_err(|(at, found)| EffectiveError::ThroughNonObject {
                id: d.id.clone(),
                module: setting.module.clone(),
                key: setting.key(),
                at,
                found,
            })?;
            written.push((&d.id, wrote));
        }
        applied.push(d.id.clone());
    }
    let manifest = if layers.is_empty() {
        base_manifest
    } else {
        parse_manifest(&content).map_err(|error| EffectiveError::InvalidMerge {
            base: base.id.clone(),
            problems: error.problems.into_iter().map(|problem| blame(problem, &written)).collect(),
        })?
    };
    Ok(Effective { modules_content: content, manifest: Some(manifest), applied, skipped })
}

/// Sets `setting` in `content`, creating objects on the way. Returns the path of what it
/// wrote: the shallowest object it created, or else the setting's own path. On a value that
/// is not an object, returns where it is and what it is.
fn set(content: &mut Map<String, Value>, setting: &Setting) -> Result<JsonPath, (JsonPath, &'static str)> {
    let mut at = JsonPath::root().key("modulesContent").key(&setting.module);
    let mut created = None;
    let mut node = child(content, &setting.module, &at, &mut created);
    for key in std::iter::once(DESIRED).chain(setting.path.iter().map(String::as_str)) {
        let map = match node {
            Value::Object(map) => map,
            other => return Err((at, kind(other))),
        };
        at = at.key(key);
        node = child(map, key, &at, &mut created);
    }
    *node = setting.value.clone();
    Ok(created.unwrap_or(at))
}

/// `map[key]`, an empty object put there first if absent (recording `at` as `created` if it is
/// the first thing created).
fn child<'m>(
    map: &'m mut Map<String, Value>,
    key: &str,
    at: &JsonPath,
    created: &mut Option<JsonPath>,
) -> &'m mut Value {
    map.entry(key).or_insert_with(|| {
        created.get_or_insert_with(|| at.clone());
        Value::Object(Map::new())
    })
}

/// Blames `problem` on the last layer that wrote at, around or inside its path (a layer that
/// created `modules.x` to set `modules.x.settings.image` wrote all of `modules.x`). Problems at
/// `$` or `$.modulesContent` concern the whole document and are not blamed on a layer.
fn blame(problem: Problem, written: &[(&str, JsonPath)]) -> BlamedProblem {
    let layer = written
        .iter()
        .rev()
        .find(|(_, path)| {
            problem.path.starts_with(path) || (problem.path.depth() >= 2 && path.starts_with(&problem.path))
        })
        .map(|(id, _)| (*id).to_owned());
    BlamedProblem { problem, layer }
}
