//! Where the desired deployment comes from. The [`DeploymentStore`] keeps the last applied
//! manifest on disk (written atomically) so that the agent re-applies it after a restart and
//! works offline; the cloud source will feed the same store.

use std::path::{Path, PathBuf};

use outpost_core::manifest::{DeploymentManifest, ManifestError};

/// Errors of the deployment store.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The manifest is invalid; nothing was changed.
    #[error(transparent)]
    Invalid(#[from] ManifestError),
    /// The stored manifest cannot be read; it is left as it is.
    #[error("stored deployment {path} is unusable: {reason}; refusing to overwrite it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading or writing the file failed.
    #[error("deployment file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The persisted desired deployment.
#[derive(Debug, Clone)]
pub struct DeploymentStore {
    path: PathBuf,
}

impl DeploymentStore {
    /// A store at `path`.
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_owned() }
    }

    /// The stored manifest text and its parsed form, if any.
    pub fn load(&self) -> Result<Option<(String, DeploymentManifest)>, DeploymentError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(DeploymentError::Io { path: self.path.clone(), source }),
        };
        let manifest = DeploymentManifest::parse(&text)
            .map_err(|e| DeploymentError::Corrupt { path: self.path.clone(), reason: e.to_string() })?;
        Ok(Some((text, manifest)))
    }

    /// Validates `text` and, if valid, stores it; an invalid manifest changes nothing.
    pub fn apply(&self, text: &str) -> Result<DeploymentManifest, DeploymentError> {
        let manifest = DeploymentManifest::parse(text)?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| DeploymentError::Io { path: dir.to_owned(), source })?;
        }
        outpost_daemon::atomic::write_atomic(&self.path, text.as_bytes(), 0o600)
            .map_err(|source| DeploymentError::Io { path: self.path.clone(), source })?;
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = include_str!("../../../tests/fixtures/manifests/simulated-temperature-sensor.json");

    #[test]
    fn applied_deployments_survive_and_invalid_ones_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeploymentStore::new(&dir.path().join("deployment.json"));
        assert!(store.load().unwrap().is_none());
        store.apply(VALID).unwrap();
        let err = store.apply("{\"modulesContent\": {}}").unwrap_err().to_string();
        assert!(err.contains("$edgeAgent"), "{err}");
        let (text, manifest) = store.load().unwrap().unwrap();
        assert_eq!(text, VALID);
        assert_eq!(manifest.agent.modules.len(), 1);
    }

    #[test]
    fn a_corrupt_store_is_reported_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment.json");
        std::fs::write(&path, "{garbage").unwrap();
        assert!(matches!(DeploymentStore::new(&path).load(), Err(DeploymentError::Corrupt { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{garbage");
    }
}
