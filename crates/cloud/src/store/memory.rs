//! An in-memory [`CloudStore`] for unit tests (and a model of the contract).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{CloudStore, StoreError, TwinKey, Write};
use crate::deployments::DeploymentRecord;
use crate::registry::DeviceRecord;
use crate::twin::TwinDoc;

/// Everything in maps behind a lock; nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    devices: BTreeMap<String, DeviceRecord>,
    twins: BTreeMap<TwinKey, TwinDoc>,
    deployments: BTreeMap<String, DeploymentRecord>,
    outbox: BTreeMap<TwinKey, u64>,
}

impl MemoryStore {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl CloudStore for MemoryStore {
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self.maps().devices.get(id).cloned())
    }

    fn devices(&self, after: &str, limit: usize) -> Result<Vec<DeviceRecord>, StoreError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let maps = self.maps();
        let start = if after.is_empty() { Unbounded } else { Excluded(after.to_owned()) };
        Ok(maps.devices.range((start, Unbounded)).take(limit).map(|(_, d)| d.clone()).collect())
    }

    fn twin(&self, key: &TwinKey) -> Result<Option<TwinDoc>, StoreError> {
        Ok(self.maps().twins.get(key).cloned())
    }

    fn twins_of(&self, device: &str) -> Result<BTreeMap<String, TwinDoc>, StoreError> {
        let maps = self.maps();
        Ok(maps
            .twins
            .range(TwinKey::device(device)..)
            .take_while(|(key, _)| key.device == device)
            .map(|(key, twin)| (key.module.clone(), twin.clone()))
            .collect())
    }

    fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        Ok(self.maps().deployments.values().cloned().collect())
    }

    fn outbox(&self) -> Result<Vec<(TwinKey, u64)>, StoreError> {
        Ok(self.maps().outbox.iter().map(|(k, v)| (k.clone(), *v)).collect())
    }

    fn delivered(&self, key: &TwinKey, version: u64) -> Result<bool, StoreError> {
        let mut maps = self.maps();
        if maps.outbox.get(key) == Some(&version) {
            maps.outbox.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut maps = self.maps();
        for write in writes {
            match write {
                Write::PutDevice(device) => {
                    maps.devices.insert(device.id.clone(), device);
                }
                Write::DeleteDevice(id) => {
                    maps.devices.remove(&id);
                }
                Write::PutTwin(key, twin) => {
                    maps.twins.insert(key, twin);
                }
                Write::DeleteTwins(device) => {
                    maps.twins.retain(|key, _| key.device != device);
                    maps.outbox.retain(|key, _| key.device != device);
                }
                Write::Outbox(key, version) => {
                    maps.outbox.insert(key, version);
                }
                Write::PutDeployment(deployment) => {
                    maps.deployments.insert(deployment.id.clone(), deployment);
                }
                Write::DeleteDeployment(id) => {
                    maps.deployments.remove(&id);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_store_keeps_the_contract() {
        super::super::contract::check(&super::MemoryStore::default());
    }
}
