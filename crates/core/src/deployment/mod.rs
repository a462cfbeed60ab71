//! Automatic deployments as IoT Hub applies them: which of the deployments that target a
//! device applies, and the effective `modulesContent` they produce together.
//!
//! A *standard* deployment is a whole manifest; among those that target a device the highest
//! priority wins (ties: the most recently created), and standard deployments are never
//! merged. A *layered* deployment sets dotted paths (`properties.desired.modules.sensor`,
//! `properties.desired.routes.toHub`, `properties.desired.<path>` of a module twin) on top of
//! that base. [`validate_standard`] and [`validate_layer`] check content when a deployment is
//! created; [`effective()`] picks the base, applies the layers above it and validates the
//! result. Pure: the caller evaluates target conditions and stores deployments.

pub mod effective;
pub mod layer;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::manifest::{DeploymentManifest, JsonPath, ManifestError};

pub use effective::{BlamedProblem, Effective, EffectiveError, SkipReason, effective};
pub use layer::{Layer, LayerError, MAX_PATH_SEGMENTS, Setting, validate_layer};

/// The key of a module's desired properties in `modulesContent`.
pub const DESIRED: &str = "properties.desired";

/// One automatic deployment, as the control plane stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The deployment's id (IoT Hub: the configuration id).
    pub id: String,
    /// Priority: larger wins.
    pub priority: u32,
    /// When it was created: a sequence number or Unix milliseconds; larger is more recent.
    pub created: u64,
    /// Layered (dotted paths on top of a base) rather than standard (a whole manifest).
    pub layered: bool,
    /// `modulesContent`: module name → `{"properties.desired…": …}`.
    pub modules_content: Map<String, Value>,
}

/// A deployment's content, validated for its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A standard deployment's manifest.
    Standard(Box<DeploymentManifest>),
    /// A layered deployment's settings.
    Layered(Layer),
}

impl Deployment {
    /// Checks the content as it should be checked when the deployment is created: a standard
    /// deployment must be a whole valid manifest, a layered one may set only what layers may.
    pub fn validate(&self) -> Result<Content, ContentError> {
        if self.layered {
            Ok(Content::Layered(validate_layer(&self.modules_content)?))
        } else {
            Ok(Content::Standard(Box::new(validate_standard(&self.modules_content)?)))
        }
    }
}

/// Why a deployment's content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// A standard deployment's content.
    #[error(transparent)]
    Standard(#[from] StandardError),
    /// A layered deployment's content.
    #[error(transparent)]
    Layer(#[from] LayerError),
}

/// Why a standard deployment's content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StandardError {
    /// Keys below `properties.desired` are dotted paths, which only layers may use.
    #[error(
        "standard deployment content sets dotted paths ({}); create it as a layered deployment, or set \"properties.desired\" whole",
        list(paths)
    )]
    DottedPaths {
        /// Every dotted key, with its path.
        paths: Vec<JsonPath>,
    },
    /// The content is not a valid manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

fn list(paths: &[JsonPath]) -> String {
    paths.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Validates a standard deployment's `modulesContent` as the whole manifest it must be.
pub fn validate_standard(modules_content: &Map<String, Value>) -> Result<DeploymentManifest, StandardError> {
    let root = JsonPath::root().key("modulesContent");
    let paths: Vec<JsonPath> = modules_content
        .iter()
        .filter_map(|(module, entry)| Some((module, entry.as_object()?)))
        .flat_map(|(module, entry)| {
            entry.keys().filter(|key| layer::dotted(key)).map(|key| root.key(module).key(key)).collect::<Vec<_>>()
        })
        .collect();
    if !paths.is_empty() {
        return Err(StandardError::DottedPaths { paths });
    }
    Ok(parse_manifest(modules_content)?)
}

/// Validates `{"modulesContent": …}` exactly as a device will: as text, through
/// [`DeploymentManifest::parse`], so the size limit applies too.
pub(crate) fn parse_manifest(modules_content: &Map<String, Value>) -> Result<DeploymentManifest, ManifestError> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "modulesContent")]
        modules_content: &'a Map<String, Value>,
    }
    let text =
        serde_json::to_string(&Envelope { modules_content }).expect("JSON values with string keys always serialise");
    DeploymentManifest::parse(&text)
}

#[cfg(test)]
mod tests;
