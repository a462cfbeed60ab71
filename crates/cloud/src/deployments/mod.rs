//! Automatic deployments as the control plane stores them, and how their content, id and
//! target condition are checked when they are created. [`assign`] decides, per device, which
//! apply and what its twins' desired properties become; [`metrics`] counts the outcome.

pub mod assign;
pub mod metrics;

use std::collections::BTreeMap;

use outpost_core::deployment::{ContentError, Deployment};
use outpost_core::query::{Condition, QueryError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest deployment id (IoT Hub's).
pub const MAX_ID: usize = 128;

/// A stored deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// Its id.
    pub id: String,
    /// `modulesContent`.
    pub content: Map<String, Value>,
    /// The target condition's text.
    pub target_condition: String,
    /// Larger wins.
    pub priority: u32,
    /// Layered rather than standard.
    pub layered: bool,
    /// Free-form labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Unix milliseconds of creation.
    pub created_ms: u64,
    /// Creation order among deployments (ties of priority go to the most recent).
    pub sequence: u64,
    /// Bumped by every change; the etag.
    pub version: u64,
}

impl DeploymentRecord {
    /// The etag of this state.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// The deployment as the merge logic sees it.
    pub fn to_core(&self) -> Deployment {
        Deployment {
            id: self.id.clone(),
            priority: self.priority,
            created: self.sequence,
            layered: self.layered,
            modules_content: self.content.clone(),
        }
    }
}

/// Why a deployment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    /// The id breaks IoT Hub's rules.
    #[error("deployment id {0:?} must be 1 to 128 lowercase letters, digits and - : + % _ # * ? ! ( ) , = @ ; $ '")]
    Id(String),
    /// The content is not JSON or not an object.
    #[error("deployment content: {0}")]
    ContentSyntax(String),
    /// The content is not a valid manifest or layer.
    #[error("deployment content: {0}")]
    Content(#[from] ContentError),
    /// The target condition does not parse.
    #[error("target condition {text:?}: {source}")]
    Condition {
        /// The condition.
        text: String,
        /// Where and why.
        #[source]
        source: QueryError,
    },
}

/// Checks a deployment id.
pub fn check_id(id: &str) -> Result<(), DeploymentError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-:+%_#*?!(),=@;$'".contains(c);
    if id.is_empty() || id.len() > MAX_ID || !id.chars().all(allowed) {
        return Err(DeploymentError::Id(id.to_owned()));
    }
    Ok(())
}

/// Parses a target condition, naming it in the error.
pub fn condition(text: &str) -> Result<Condition, DeploymentError> {
    Condition::parse(text).map_err(|source| DeploymentError::Condition { text: text.to_owned(), source })
}

/// Reads content given as `modulesContent` itself, `{"modulesContent": …}` or
/// `{"content": {"modulesContent": …}}` (IoT Hub's deployment JSON).
pub fn parse_content(text: &str) -> Result<Map<String, Value>, DeploymentError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| DeploymentError::ContentSyntax(format!("not JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(DeploymentError::ContentSyntax("must be a JSON object".into()));
    };
    if let Some(Value::Object(mut content)) = object.remove("content") {
        return match content.remove("modulesContent") {
            Some(Value::Object(modules)) => Ok(modules),
            _ => Err(DeploymentError::ContentSyntax("content has no modulesContent object".into())),
        };
    }
    match object.remove("modulesContent") {
        Some(Value::Object(modules)) => Ok(modules),
        Some(_) => Err(DeploymentError::ContentSyntax("modulesContent must be an object".into())),
        None => Ok(object),
    }
}

/// Checks a new deployment's content for its kind.
pub fn check_content(id: &str, content: &Map<String, Value>, layered: bool) -> Result<(), DeploymentError> {
    let deployment =
        Deployment { id: id.to_owned(), priority: 0, created: 0, layered, modules_content: content.clone() };
    deployment.validate()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_iot_hub() {
        check_id("prod-base:v2").unwrap();
        for bad in ["", "Prod", "a b", "a/b", &"x".repeat(129)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_comes_in_three_shapes() {
        let inner = r#"{"$edgeAgent": {}}"#;
        for text in [
            inner.to_owned(),
            format!(r#"{{"modulesContent": {inner}}}"#),
            format!(r#"{{"content": {{"modulesContent": {inner}}}}}"#),
        ] {
            assert!(parse_content(&text).unwrap().contains_key("$edgeAgent"), "{text}");
        }
        assert!(parse_content("[]").is_err());
        assert!(parse_content(r#"{"content": {}}"#).unwrap_err().to_string().contains("no modulesContent"));
    }

    #[test]
    fn conditions_are_refused_with_their_position() {
        let err = condition("tags.env = ").unwrap_err().to_string();
        assert!(err.starts_with("target condition \"tags.env = \": at 1:"), "{err}");
    }
}
