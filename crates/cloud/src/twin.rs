//! Twin documents, sans-IO: tags, desired and reported properties with their `$version`s,
//! JSON merge patches (a `null` removes a key) and IoT Hub's limits on what a twin may hold.

pub use outpost_core::merge_patch::merge;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Deepest nesting of objects under tags or properties (IoT Hub's limit).
pub const MAX_DEPTH: usize = 10;
/// Largest tags, desired or reported section, in bytes of JSON (IoT Hub's 32 KB).
pub const MAX_SECTION_BYTES: usize = 32 * 1024;
/// Longest property name, in bytes.
pub const MAX_KEY_BYTES: usize = 512;

/// A device or module twin as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TwinDoc {
    /// Tags (device twins only): what target conditions select on.
    #[serde(default)]
    pub tags: Map<String, Value>,
    /// Desired properties, without `$version`.
    #[serde(default)]
    pub desired: Map<String, Value>,
    /// Reported properties, without `$version`.
    #[serde(default)]
    pub reported: Map<String, Value>,
    /// Bumped by every change of the desired properties.
    #[serde(default)]
    pub desired_version: u64,
    /// Bumped by every change of the reported properties.
    #[serde(default)]
    pub reported_version: u64,
    /// Bumped by every change of the twin; the etag.
    #[serde(default)]
    pub version: u64,
    /// The sequence number of the last reported patch the device sent (redeliveries at or
    /// below it are ignored).
    #[serde(default)]
    pub reported_sequence: u64,
}

/// Which part of a twin a patch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `tags`.
    Tags,
    /// `properties.desired`.
    Desired,
    /// `properties.reported`.
    Reported,
}

impl Section {
    /// The section's name in a twin document.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tags => "tags",
            Self::Desired => "properties.desired",
            Self::Reported => "properties.reported",
        }
    }
}

/// Why a patch was refused; the twin is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch is not a JSON object.
    #[error("{section} patch must be a JSON object, not {found}")]
    NotAnObject {
        /// The section patched.
        section: &'static str,
        /// What it is instead.
        found: &'static str,
    },
    /// The patch text is not JSON.
    #[error("{section} patch is not JSON: {reason}")]
    Syntax {
        /// The section patched.
        section: &'static str,
        /// The parser's message with its position.
        reason: String,
    },
    /// A property name IoT Hub does not allow.
    #[error("{section}: property name {key:?} at {path} is not allowed: {why}")]
    Key {
        /// The section patched.
        section: &'static str,
        /// The offending name.
        key: String,
        /// Where it is (dotted path of its parent).
        path: String,
        /// What rule it breaks.
        why: &'static str,
    },
    /// Objects nested deeper than [`MAX_DEPTH`].
    #[error("{section}: {path} nests objects deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// The section patched.
        section: &'static str,
        /// Where the limit was passed.
        path: String,
    },
    /// The section would exceed [`MAX_SECTION_BYTES`].
    #[error("{section} would be {size} bytes after this patch; the limit is {MAX_SECTION_BYTES}")]
    TooLarge {
        /// The section patched.
        section: &'static str,
        /// Its size after the patch.
        size: usize,
    },
}

/// The JSON type name of a value, for messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses patch text into an object.
pub fn parse_patch(section: Section, text: &str) -> Result<Map<String, Value>, PatchError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| PatchError::Syntax { section: section.name(), reason: e.to_string() })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(PatchError::NotAnObject { section: section.name(), found: type_name(&other) }),
    }
}

impl TwinDoc {
    /// The etag of this state of the twin.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// Applies a merge patch to one section. Returns whether anything changed; versions are
    /// bumped only then. On error nothing changes.
    pub fn patch(&mut self, section: Section, patch: &Map<String, Value>) -> Result<bool, PatchError> {
        let name = section.name();
        check_keys(name, patch, section.name(), 1)?;
        let target = match section {
            Section::Tags => &self.tags,
            Section::Desired => &self.desired,
            Section::Reported => &self.reported,
        };
        let mut next = target.clone();
        merge(&mut next, patch);
        if &next == target {
            return Ok(false);
        }
        let size = serde_json::to_vec(&next).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_SECTION_BYTES {
            return Err(PatchError::TooLarge { section: name, size });
        }
        match section {
            Section::Tags => self.tags = next,
            Section::Desired => {
                self.desired = next;
                self.desired_version += 1;
            }
            Section::Reported => {
                self.reported = next;
                self.reported_version += 1;
            }
        }
        self.version += 1;
        Ok(true)
    }

    /// Replaces the desired properties wholesale (a deployment's content). Returns whether
    /// anything changed.
    pub fn replace_desired(&mut self, desired: Map<String, Value>) -> Result<bool, PatchError> {
        check_keys(Section::Desired.name(), &desired, Section::Desired.name(), 1)?;
        if desired == self.desired {
            return Ok(false);
        }
        let size = serde_json::to_vec(&desired).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_SECTION_BYTES {
            return Err(PatchError::TooLarge { section: Section::Desired.name(), size });
        }
        self.desired = desired;
        self.desired_version += 1;
        self.version += 1;
        Ok(true)
    }

    /// Desired properties with their `$version`, as devices receive them.
    pub fn desired_with_version(&self) -> Value {
        with_version(&self.desired, self.desired_version)
    }

    /// Reported properties with their `$version`.
    pub fn reported_with_version(&self) -> Value {
        with_version(&self.reported, self.reported_version)
    }

    /// The twin as IoT Hub's queries see it: `deviceId`, `moduleId`, `tags`, `properties`.
    pub fn query_document(&self, device_id: &str, module_id: Option<&str>, status: &str) -> Value {
        let mut doc = Map::new();
        doc.insert("deviceId".into(), Value::String(device_id.to_owned()));
        if let Some(module) = module_id {
            doc.insert("moduleId".into(), Value::String(module.to_owned()));
        }
        doc.insert("status".into(), Value::String(status.to_owned()));
        doc.insert("$version".into(), Value::from(self.version));
        doc.insert("tags".into(), Value::Object(self.tags.clone()));
        let mut properties = Map::new();
        properties.insert("desired".into(), self.desired_with_version());
        properties.insert("reported".into(), self.reported_with_version());
        doc.insert("properties".into(), Value::Object(properties));
        Value::Object(doc)
    }
}

fn with_version(map: &Map<String, Value>, version: u64) -> Value {
    let mut out = map.clone();
    out.insert("$version".into(), Value::from(version));
    Value::Object(out)
}

fn check_keys(section: &'static str, map: &Map<String, Value>, path: &str, depth: usize) -> Result<(), PatchError> {
    if depth > MAX_DEPTH {
        return Err(PatchError::TooDeep { section, path: path.to_owned() });
    }
    for (key, value) in map {
        let why = if key.is_empty() {
            Some("names must not be empty")
        } else if key.len() > MAX_KEY_BYTES {
            Some("names are at most 512 bytes")
        } else if key.starts_with('$') {
            Some("names starting with '$' are reserved")
        } else if key.contains(['.', ' ']) {
            Some("names must not contain '.' or ' '")
        } else if key.chars().any(char::is_control) {
            Some("names must not contain control characters")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(PatchError::Key { section, key: key.clone(), path: path.to_owned(), why });
        }
        if let Value::Object(inner) = value {
            check_keys(section, inner, &format!("{path}.{key}"), depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn merge_patch_adds_replaces_and_removes() {
        let mut twin = TwinDoc::default();
        assert!(twin.patch(Section::Desired, &obj(json!({"a": 1, "b": {"c": 2, "d": 3}}))).unwrap());
        assert!(twin.patch(Section::Desired, &obj(json!({"a": null, "b": {"c": 5}}))).unwrap());
        assert_eq!(Value::Object(twin.desired.clone()), json!({"b": {"c": 5, "d": 3}}));
        assert_eq!(twin.desired_version, 2);
        assert_eq!(twin.version, 2);
        assert_eq!(twin.desired_with_version(), json!({"b": {"c": 5, "d": 3}, "$version": 2}));
    }

    #[test]
    fn a_patch_that_changes_nothing_bumps_no_version() {
        let mut twin = TwinDoc::default();
        twin.patch(Section::Reported, &obj(json!({"a": 1}))).unwrap();
        assert!(!twin.patch(Section::Reported, &obj(json!({"a": 1, "gone": null}))).unwrap());
        assert_eq!((twin.reported_version, twin.version), (1, 1));
    }

    #[test]
    fn tags_change_the_twin_version_only() {
        let mut twin = TwinDoc::default();
        twin.patch(Section::Tags, &obj(json!({"env": "prod"}))).unwrap();
        assert_eq!((twin.desired_version, twin.reported_version, twin.version), (0, 0, 1));
        assert_eq!(twin.etag(), "\"1\"");
    }

    #[test]
    fn bad_names_are_refused_with_their_place_and_nothing_changes() {
        let mut twin = TwinDoc::default();
        let err = twin.patch(Section::Desired, &obj(json!({"ok": {"a.b": 1}}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "properties.desired: property name \"a.b\" at properties.desired.ok is not allowed: names must not contain '.' or ' '"
        );
        let err = twin.patch(Section::Tags, &obj(json!({"$version": 3}))).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        assert_eq!(twin, TwinDoc::default());
    }

    #[test]
    fn deep_and_large_patches_are_refused() {
        let mut deep = json!(1);
        for _ in 0..11 {
            deep = json!({ "x": deep });
        }
        let mut twin = TwinDoc::default();
        assert!(matches!(twin.patch(Section::Desired, &obj(deep)), Err(PatchError::TooDeep { .. })));
        let big = json!({ "blob": "x".repeat(MAX_SECTION_BYTES) });
        assert!(matches!(twin.patch(Section::Reported, &obj(big)), Err(PatchError::TooLarge { .. })));
        assert_eq!(twin, TwinDoc::default());
    }

    #[test]
    fn patch_text_must_be_an_object() {
        assert_eq!(
            parse_patch(Section::Tags, "[1]").unwrap_err().to_string(),
            "tags patch must be a JSON object, not an array"
        );
        assert!(parse_patch(Section::Tags, "{").unwrap_err().to_string().starts_with("tags patch is not JSON"));
    }

    #[test]
    fn query_document_has_iot_hub_shape() {
        let mut twin = TwinDoc::default();
        twin.patch(Section::Tags, &obj(json!({"env": "prod"}))).unwrap();
        let doc = twin.query_document("dev1", None, "enabled");
        assert_eq!(doc["deviceId"], "dev1");
        assert_eq!(doc["tags"]["env"], "prod");
        assert_eq!(doc["properties"]["reported"]["$version"], 0);
    }
}
