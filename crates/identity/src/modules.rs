//! Module identities: id, generation id, owner, creation time; persisted as one JSON file
//! written atomically. Creating an identity that exists returns it unchanged, so concurrent
//! creators all get the same generation id; deleting and creating again gives a new one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use outpost_core::{GenerationId, ModuleId};
use serde::{Deserialize, Serialize};

use outpost_daemon::atomic::write_atomic;

/// One module identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModuleIdentity {
    /// The module.
    pub module_id: ModuleId,
    /// Changes whenever the identity is deleted and created again.
    pub generation_id: GenerationId,
    /// Who asked for it (`outpost-agent`, `operator`, …).
    pub managed_by: String,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}

/// The file format: a version and the identities.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    modules: Vec<ModuleIdentity>,
}

/// Errors of the identity registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The identities file cannot be parsed; it is left as it is.
    #[error("identity file {path} is corrupt: {reason}; refusing to overwrite it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// Reading or writing the file failed.
    #[error("identity file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No identity for that module.
    #[error("module identity {0} does not exist")]
    NotFound(ModuleId),
}

/// Whether [`Registry::create`] made a new identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A new identity with a fresh generation id.
    New,
    /// It existed already and is returned unchanged.
    Existing,
}

/// The persisted set of module identities.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    modules: Mutex<BTreeMap<ModuleId, ModuleIdentity>>,
}

impl Registry {
    /// Loads the registry from `path`, or starts empty if the file does not exist.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let modules = match std::fs::read(path) {
            Ok(bytes) => {
                let doc: Document = serde_json::from_slice(&bytes)
                    .map_err(|e| RegistryError::Corrupt { path: path.to_owned(), reason: e.to_string() })?;
                if doc.version != 1 {
                    return Err(RegistryError::Corrupt {
                        path: path.to_owned(),
                        reason: format!("unsupported version {}", doc.version),
                    });
                }
                doc.modules.into_iter().map(|m| (m.module_id.clone(), m)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(RegistryError::Io { path: path.to_owned(), source }),
        };
        Ok(Self { path: path.to_owned(), modules: Mutex::new(modules) })
    }

    fn save(&self, modules: &BTreeMap<ModuleId, ModuleIdentity>) -> Result<(), RegistryError> {
        let doc = Document { version: 1, modules: modules.values().cloned().collect() };
        let mut bytes = serde_json::to_vec_pretty(&doc).expect("identities always serialise");
        bytes.push(b'\n');
        write_atomic(&self.path, &bytes, 0o600).map_err(|source| RegistryError::Io { path: self.path.clone(), source })
    }

    /// Creates `module` if it does not exist; returns the identity and whether it is new.
    pub fn create(&self, module: &ModuleId, managed_by: &str) -> Result<(ModuleIdentity, Created), RegistryError> {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = modules.get(module) {
            return Ok((existing.clone(), Created::Existing));
        }
        let identity = ModuleIdentity {
            module_id: module.clone(),
            generation_id: new_generation_id(),
            managed_by: managed_by.to_owned(),
            created_at: now_secs(),
        };
        modules.insert(module.clone(), identity.clone());
        if let Err(e) = self.save(&modules) {
            modules.remove(module);
            return Err(e);
        }
        Ok((identity, Created::New))
    }

    /// The identity of `module`.
    pub fn get(&self, module: &ModuleId) -> Result<ModuleIdentity, RegistryError> {
        let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        modules.get(module).cloned().ok_or_else(|| RegistryError::NotFound(module.clone()))
    }

    /// Every identity, sorted by module id.
    pub fn list(&self) -> Vec<ModuleIdentity> {
        self.modules.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Deletes `module`'s identity.
    pub fn delete(&self, module: &ModuleId) -> Result<ModuleIdentity, RegistryError> {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        let removed = modules.remove(module).ok_or_else(|| RegistryError::NotFound(module.clone()))?;
        if let Err(e) = self.save(&modules) {
            modules.insert(module.clone(), removed);
            return Err(e);
        }
        Ok(removed)
    }
}

/// A fresh generation id: 128 random bits as 32 hex digits.
fn new_generation_id() -> GenerationId {
    GenerationId::new(uuid::Uuid::new_v4().simple().to_string()).expect("hex digits are a valid generation id")
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn m(id: &str) -> ModuleId {
        ModuleId::new(id).unwrap()
    }

    #[test]
    fn identities_survive_a_reopen_and_recreation_changes_the_generation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identities.json");
        let reg = Registry::open(&path).unwrap();
        let (first, created) = reg.create(&m("modA"), "operator").unwrap();
        assert_eq!(created, Created::New);
        let (again, created) = reg.create(&m("modA"), "agent").unwrap();
        assert_eq!((again.clone(), created), (first.clone(), Created::Existing));

        let reopened = Registry::open(&path).unwrap();
        assert_eq!(reopened.get(&m("modA")).unwrap(), first);
        reopened.delete(&m("modA")).unwrap();
        assert!(matches!(reopened.get(&m("modA")), Err(RegistryError::NotFound(_))));
        let (second, _) = reopened.create(&m("modA"), "operator").unwrap();
        assert_ne!(second.generation_id, first.generation_id);
    }

    #[test]
    fn concurrent_creates_yield_exactly_one_generation_id() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(Registry::open(&dir.path().join("identities.json")).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let reg = reg.clone();
                std::thread::spawn(move || reg.create(&m("race"), "t").unwrap())
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|(_, c)| *c == Created::New).count(), 1);
        assert!(results.iter().all(|(id, _)| id.generation_id == results[0].0.generation_id));
    }

    #[test]
    fn a_corrupt_file_refuses_to_load_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identities.json");
        std::fs::write(&path, b"{\"version\":1,\"modules\":[{").unwrap();
        let err = Registry::open(&path).unwrap_err();
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"version\":1,\"modules\":[{");
    }
}
