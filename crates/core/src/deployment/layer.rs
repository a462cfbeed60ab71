//! Layered deployment content: the dotted paths a layer sets, checked when it is created.
//!
//! Layers add to a base; they do not own the device. So `$edgeAgent` takes only
//! `properties.desired.modules.<name>` (or paths below it), `$edgeHub` only
//! `properties.desired.routes.<name>`, and a module twin `properties.desired` whole or any
//! `properties.desired.<path>`. Paths are split at `.`, as IoT Hub does: twin keys cannot hold
//! dots.

use std::fmt;

use serde_json::{Map, Value};

use super::DESIRED;
use crate::manifest::path::Problems;
use crate::manifest::{JsonPath, Problem, agent, hub};

/// The most keys a layer's path may have below `properties.desired`.
pub const MAX_PATH_SEGMENTS: usize = 32;

const AGENT: &str = "$edgeAgent";
const HUB: &str = "$edgeHub";
const AGENT_MAY_SET: &str = "layers may set only \"properties.desired.modules.<name>\" (or a path below it) of \
     $edgeAgent; the runtime and the system modules come from the base deployment";
const HUB_MAY_SET: &str = "layers may set only \"properties.desired.routes.<name>\" of $edgeHub; \
     the hub's other settings come from the base deployment";

/// One value a layer sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// `$edgeAgent`, `$edgeHub` or a module's name.
    pub module: String,
    /// Keys below `properties.desired`; empty sets a module twin's desired properties whole.
    pub path: Vec<String>,
    /// What it sets there.
    pub value: Value,
}

impl Setting {
    /// Where the value lands in the effective `{"modulesContent": …}`.
    pub fn json_path(&self) -> JsonPath {
        let at = JsonPath::root().key("modulesContent").key(&self.module).key(DESIRED);
        self.path.iter().fold(at, |at, key| at.key(key))
    }

    /// The layer's key for it: `properties.desired` or `properties.desired.<path>`.
    pub fn key(&self) -> String {
        std::iter::once(DESIRED).chain(self.path.iter().map(String::as_str)).collect::<Vec<_>>().join(".")
    }
}

/// Validated layered content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layer {
    settings: Vec<Setting>,
}

impl Layer {
    /// What the layer sets, ordered by module then path, so that a path comes before the paths
    /// below it: within one layer, a deeper setting refines a shallower one.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }
}

/// Every problem found in layered content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LayerError {
    /// The problems, in document order of discovery.
    pub problems: Vec<Problem>,
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "invalid layered deployment ({n} problem{})", if n == 1 { "" } else { "s" })?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// Whether `key` is a dotted path below `properties.desired`.
pub(crate) fn dotted(key: &str) -> bool {
    key.strip_prefix(DESIRED).is_some_and(|rest| rest.starts_with('.'))
}

/// Validates a layered deployment's `modulesContent`, reporting every problem with its path.
pub fn validate_layer(modules_content: &Map<String, Value>) -> Result<Layer, LayerError> {
    let mut problems = Problems::default();
    let mut settings = Vec::new();
    let root = JsonPath::root().key("modulesContent");
    for (module, entry) in modules_content {
        let module_path = root.key(module);
        if module != AGENT && module != HUB {
            agent::user_module_id(&mut problems, &module_path, module);
        }
        let Some(entry) = problems.object(&module_path, entry) else { continue };
        for (key, value) in entry {
            let key_path = module_path.key(key);
            if let Some(path) = setting_path(&mut problems, &key_path, module, key, value) {
                settings.push(Setting { module: module.clone(), path, value: value.clone() });
            }
        }
    }
    if problems.0.is_empty() {
        settings.sort_by(|a, b| (&a.module, &a.path).cmp(&(&b.module, &b.path)));
        Ok(Layer { settings })
    } else {
        Err(LayerError { problems: problems.0 })
    }
}

/// The path below `properties.desired` that `key` sets in `module`, if a layer may set it.
fn setting_path(
    problems: &mut Problems,
    key_path: &JsonPath,
    module: &str,
    key: &str,
    value: &Value,
) -> Option<Vec<String>> {
    let path: Vec<String> = if key == DESIRED {
        Vec::new()
    } else if dotted(key) {
        key[DESIRED.len() + 1..].split('.').map(str::to_owned).collect()
    } else {
        problems.add(key_path, format!("unknown field; expected {DESIRED:?} or \"{DESIRED}.<path>\""));
        return None;
    };
    if path.iter().any(String::is_empty) {
        problems.add(key_path, "a dotted path cannot have an empty key");
        return None;
    }
    if path.len() > MAX_PATH_SEGMENTS {
        problems.add(
            key_path,
            format!("the path has {} keys below {DESIRED}; the limit is {MAX_PATH_SEGMENTS}", path.len()),
        );
        return None;
    }
    if value.is_null() {
        problems.add(key_path, "a layer cannot set null (a twin reads null as \"remove\")");
        return None;
    }
    let before = problems.0.len();
    match (module, path.as_slice()) {
        (AGENT, [modules, name]) if modules == "modules" => {
            agent::user_module(problems, key_path, name, value);
        }
        (AGENT, [modules, name, ..]) if modules == "modules" => {
            agent::user_module_id(problems, key_path, name);
        }
        (AGENT, _) => problems.add(key_path, AGENT_MAY_SET),
        (HUB, [routes, name]) if routes == "routes" => {
            hub::named_route(problems, key_path, name, value);
        }
        (HUB, _) => problems.add(key_path, HUB_MAY_SET),
        (_, []) => {
            problems.object(key_path, value);
        }
        (_, _) => {}
    }
    (problems.0.len() == before).then_some(path)
}
