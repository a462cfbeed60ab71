//! The embedded [`CloudStore`]: sled trees `devices`, `twins` and `deployments` holding JSON
//! records and `outbox` (twin key → desired version), each batch one transaction, flushed
//! before it is acknowledged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{CloudStore, StoreError, TwinKey, Write};
use crate::deployments::DeploymentRecord;
use crate::registry::DeviceRecord;
use crate::twin::TwinDoc;

/// The sled database and its trees.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    devices: sled::Tree,
    twins: sled::Tree,
    deployments: sled::Tree,
    outbox: sled::Tree,
}

fn io(operation: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |source| StoreError::Io { operation, source }
}

fn decode<T: serde::de::DeserializeOwned>(what: &'static str, key: &[u8], value: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        what,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Records are plain structs and maps of JSON values: serialising them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. A lock still being released by a store closed
    /// in this process a moment ago is waited for, briefly.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let db = loop {
            match sled::Config::new().path(dir).cache_capacity(16 << 20).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(source) => return Err(StoreError::Open { path: dir.display().to_string(), source }),
            }
        };
        let devices = db.open_tree("devices").map_err(io("open devices"))?;
        let twins = db.open_tree("twins").map_err(io("open twins"))?;
        let deployments = db.open_tree("deployments").map_err(io("open deployments"))?;
        let outbox = db.open_tree("outbox").map_err(io("open outbox"))?;
        Ok(Self { db, devices, twins, deployments, outbox })
    }
}

impl CloudStore for SledStore {
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        match self.devices.get(id.as_bytes()).map_err(io("read device"))? {
            Some(value) => decode("device", id.as_bytes(), &value).map(Some),
            None => Ok(None),
        }
    }

    fn devices(&self, after: &str, limit: usize) -> Result<Vec<DeviceRecord>, StoreError> {
        let range = if after.is_empty() {
            self.devices.iter()
        } else {
            let mut start = after.as_bytes().to_vec();
            start.push(0);
            self.devices.range(start..)
        };
        range
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(io("list devices"))?;
                decode("device", &key, &value)
            })
            .collect()
    }

    fn twin(&self, key: &TwinKey) -> Result<Option<TwinDoc>, StoreError> {
        let raw = key.encode();
        match self.twins.get(&raw).map_err(io("read twin"))? {
            Some(value) => decode("twin", &raw, &value).map(Some),
            None => Ok(None),
        }
    }

    fn twins_of(&self, device: &str) -> Result<BTreeMap<String, TwinDoc>, StoreError> {
        let prefix = TwinKey::device(device).encode();
        let mut out = BTreeMap::new();
        for entry in self.twins.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(io("list twins"))?;
            let module = key.get(prefix.len()..).map(|m| String::from_utf8_lossy(m).into_owned()).unwrap_or_default();
            out.insert(module, decode("twin", &key, &value)?);
        }
        Ok(out)
    }

    fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        self.deployments
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(io("list deployments"))?;
                decode("deployment", &key, &value)
            })
            .collect()
    }

    fn outbox(&self) -> Result<Vec<(TwinKey, u64)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.outbox.iter() {
            let (key, value) = entry.map_err(io("list outbox"))?;
            let corrupt = |reason: &str| StoreError::Corrupt {
                what: "outbox entry",
                key: String::from_utf8_lossy(&key).into_owned(),
                reason: reason.to_owned(),
            };
            let twin = TwinKey::decode(&key).ok_or_else(|| corrupt("bad key"))?;
            let version = <[u8; 8]>::try_from(value.as_ref()).map_err(|_| corrupt("bad version"))?;
            out.push((twin, u64::from_be_bytes(version)));
        }
        Ok(out)
    }

    fn delivered(&self, key: &TwinKey, version: u64) -> Result<bool, StoreError> {
        let swapped = self
            .outbox
            .compare_and_swap(key.encode(), Some(&version.to_be_bytes()[..]), None::<&[u8]>)
            .map_err(io("clear outbox"))?;
        if swapped.is_ok() {
            self.db.flush().map_err(io("flush"))?;
        }
        Ok(swapped.is_ok())
    }

    fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        // Twin deletions are by prefix, which a transaction cannot scan: collect the keys first.
        // Writers are serialised by the service, so the set cannot grow meanwhile.
        let mut doomed = Vec::new();
        let mut undeliverable = Vec::new();
        for write in &writes {
            if let Write::DeleteTwins(device) = write {
                for entry in self.twins.scan_prefix(TwinKey::device(device).encode()) {
                    doomed.push(entry.map_err(io("list twins"))?.0);
                }
                for entry in self.outbox.scan_prefix(TwinKey::device(device).encode()) {
                    undeliverable.push(entry.map_err(io("list outbox"))?.0);
                }
            }
        }
        let result: Result<(), TransactionError<()>> = (&self.devices, &self.twins, &self.deployments, &self.outbox)
            .transaction(|(devices, twins, deployments, outbox)| {
                for key in &doomed {
                    twins.remove(key.as_ref())?;
                }
                for key in &undeliverable {
                    outbox.remove(key.as_ref())?;
                }
                for write in &writes {
                    match write {
                        Write::PutDevice(device) => {
                            devices.insert(device.id.as_bytes(), encode(device))?;
                        }
                        Write::DeleteDevice(id) => {
                            devices.remove(id.as_bytes())?;
                        }
                        Write::PutTwin(key, twin) => {
                            twins.insert(key.encode(), encode(twin))?;
                        }
                        Write::DeleteTwins(_) => {}
                        Write::PutDeployment(deployment) => {
                            deployments.insert(deployment.id.as_bytes(), encode(deployment))?;
                        }
                        Write::DeleteDeployment(id) => {
                            deployments.remove(id.as_bytes())?;
                        }
                        Write::Outbox(key, version) => {
                            outbox.insert(key.encode(), &version.to_be_bytes()[..])?;
                        }
                    }
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        match result {
            Ok(()) => {}
            Err(TransactionError::Storage(source)) => return Err(StoreError::Io { operation: "write", source }),
            Err(TransactionError::Abort(())) => {
                return Err(StoreError::Io {
                    operation: "write",
                    source: sled::Error::Unsupported("transaction aborted".into()),
                });
            }
        }
        self.db.flush().map_err(io("flush"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_store_keeps_the_contract_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            super::super::contract::check(&store);
        }
        let store = SledStore::open(dir.path()).unwrap();
        super::super::contract::check_after_reopen(&store);
    }
}
