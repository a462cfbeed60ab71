//! Which image each service runs after a self-update (`{host_dir}/images.json`). An entry
//! holds the image that was configured when the update happened and the image that
//! replaced it; it applies only while the configuration still names the same image, so an
//! operator's new `[runtime.images]` always wins over an older update.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::services::ServiceName;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    configured: String,
    running: String,
}

/// The update journal.
#[derive(Debug)]
pub struct ImageJournal {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl ImageJournal {
    /// Loads the journal at `path` (empty if absent or unreadable, which is logged).
    pub fn open(path: PathBuf) -> Self {
        let entries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), error = %e, "ignoring an unreadable update journal");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Self { path, entries: Mutex::new(entries) }
    }

    /// The image `service` runs, given the one configured.
    pub fn effective(&self, service: ServiceName, configured: &str) -> String {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get(service.as_str()) {
            Some(entry) if entry.configured == configured => entry.running.clone(),
            _ => configured.to_owned(),
        }
    }

    /// Records that `service` now runs `running` while `configured` is configured.
    pub fn record(&self, service: ServiceName, configured: &str, running: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if configured == running {
            entries.remove(service.as_str());
        } else {
            entries.insert(
                service.as_str().to_owned(),
                Entry { configured: configured.to_owned(), running: running.to_owned() },
            );
        }
        let result = serde_json::to_vec_pretty(&*entries)
            .map_err(std::io::Error::other)
            .and_then(|bytes| outpost_daemon::atomic::write_atomic(&self.path, &bytes, 0o644));
        if let Err(e) = result {
            tracing::error!(file = %self.path.display(), error = %e, "cannot write the update journal");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_holds_until_the_configuration_names_another_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.json");
        let journal = ImageJournal::open(path.clone());
        assert_eq!(journal.effective(ServiceName::Hub, "hub:1"), "hub:1");
        journal.record(ServiceName::Hub, "hub:1", "hub:2");
        let reopened = ImageJournal::open(path);
        assert_eq!(reopened.effective(ServiceName::Hub, "hub:1"), "hub:2");
        assert_eq!(reopened.effective(ServiceName::Hub, "hub:3"), "hub:3");
        assert_eq!(reopened.effective(ServiceName::Agent, "agent:1"), "agent:1");
        reopened.record(ServiceName::Hub, "hub:1", "hub:1");
        assert_eq!(reopened.effective(ServiceName::Hub, "hub:1"), "hub:1");
    }
}
