//! JSON paths for error messages (`$.modulesContent['$edgeAgent']…`) and a collector of
//! every problem found, so that one validation run reports all of them.

use std::fmt;

use serde_json::{Map, Value};

/// A location in a JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonPath(Vec<String>);

impl JsonPath {
    /// The document root, `$`.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by object key `key`.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(key.to_owned());
        Self(segments)
    }

    /// How many keys deep this path is (`$` is 0).
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &JsonPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for segment in &self.0 {
            let plain = !segment.is_empty()
                && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !segment.starts_with(|c: char| c.is_ascii_digit());
            if plain {
                write!(f, ".{segment}")?;
            } else {
                write!(f, "['{}']", segment.replace('\'', "\\'"))?;
            }
        }
        Ok(())
    }
}

/// One problem in a manifest: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the document.
    pub path: JsonPath,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects problems while reading a document.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem at `path`.
    pub fn add(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.0.push(Problem { path: path.clone(), message: message.into() });
    }

    /// `value` as an object, or a recorded problem.
    pub fn object<'a>(&mut self, path: &JsonPath, value: &'a Value) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.add(path, format!("expected an object, found {}", kind(other)));
                None
            }
        }
    }

    /// Required string field `key` of `map`.
    pub fn string(&mut self, path: &JsonPath, map: &Map<String, Value>, key: &str) -> Option<String> {
        match map.get(key) {
            None => {
                self.add(&path.key(key), "is required");
                None
            }
            Some(value) => self.as_string(&path.key(key), value),
        }
    }

    /// Optional string field `key` of `map`.
    pub fn opt_string(&mut self, path: &JsonPath, map: &Map<String, Value>, key: &str) -> Option<String> {
        map.get(key).and_then(|value| self.as_string(&path.key(key), value))
    }

    fn as_string(&mut self, path: &JsonPath, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            other => {
                self.add(path, format!("expected a string, found {}", kind(other)));
                None
            }
        }
    }

    /// Optional unsigned integer field `key` of `map`, at most `max`.
    pub fn opt_uint(&mut self, path: &JsonPath, map: &Map<String, Value>, key: &str, max: u64) -> Option<u64> {
        let value = map.get(key)?;
        match value.as_u64() {
            Some(n) if n <= max => Some(n),
            _ => {
                self.add(&path.key(key), format!("expected an integer from 0 to {max}, found {value}"));
                None
            }
        }
    }

    /// Records every key of `map` that is not in `known`.
    pub fn unknown_keys(&mut self, path: &JsonPath, map: &Map<String, Value>, known: &[&str]) {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.add(&path.key(key), format!("unknown field; expected one of {}", known.join(", ")));
            }
        }
    }
}

/// A word for the JSON type of `value`, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_keys_that_are_not_identifiers() {
        let path = JsonPath::root().key("modulesContent").key("$edgeAgent").key("properties.desired").key("modules");
        assert_eq!(path.to_string(), "$.modulesContent['$edgeAgent']['properties.desired'].modules");
    }

    #[test]
    fn a_path_starts_with_itself_and_its_ancestors_only() {
        let agent = JsonPath::root().key("modulesContent").key("$edgeAgent");
        let modules = agent.key("properties.desired").key("modules");
        assert!(modules.starts_with(&agent) && modules.starts_with(&modules) && modules.starts_with(&JsonPath::root()));
        assert!(!agent.starts_with(&modules));
        assert!(!modules.starts_with(&JsonPath::root().key("modulesContent").key("$edgeHub")));
        assert_eq!((JsonPath::root().depth(), modules.depth()), (0, 4));
    }
}
