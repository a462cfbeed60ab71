//! The control plane's storage seam: devices, twins and deployments, written in atomic
//! batches that are durable before the call returns. [`SledStore`] is the embedded default;
//! [`MemoryStore`] serves unit tests.

mod memory;
mod sled;

use std::collections::BTreeMap;

pub use self::memory::MemoryStore;
pub use self::sled::SledStore;
use crate::deployments::DeploymentRecord;
use crate::registry::DeviceRecord;
use crate::twin::TwinDoc;

/// Names a twin: a device twin (`module` empty) or a module twin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TwinKey {
    /// The device.
    pub device: String,
    /// The module; empty for the device twin.
    pub module: String,
}

impl TwinKey {
    /// The device twin of `device`.
    pub fn device(device: &str) -> Self {
        Self { device: device.to_owned(), module: String::new() }
    }

    /// The twin of `module` on `device`.
    pub fn module(device: &str, module: &str) -> Self {
        Self { device: device.to_owned(), module: module.to_owned() }
    }

    /// The store key: device, NUL, module (ids never hold NUL, so a device's twins are one
    /// key range).
    pub fn encode(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.device.len() + 1 + self.module.len());
        key.extend_from_slice(self.device.as_bytes());
        key.push(0);
        key.extend_from_slice(self.module.as_bytes());
        key
    }

    /// The inverse of [`encode`](Self::encode).
    pub fn decode(key: &[u8]) -> Option<Self> {
        let split = key.iter().position(|b| *b == 0)?;
        let device = std::str::from_utf8(key.get(..split)?).ok()?;
        let module = std::str::from_utf8(key.get(split + 1..)?).ok()?;
        Some(Self::module(device, module))
    }
}

/// One change in a batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// Insert or replace a device.
    PutDevice(DeviceRecord),
    /// Remove a device record (its twins are removed with [`Write::DeleteTwins`]).
    DeleteDevice(String),
    /// Insert or replace a twin.
    PutTwin(TwinKey, TwinDoc),
    /// Remove every twin of a device.
    DeleteTwins(String),
    /// Insert or replace a deployment.
    PutDeployment(DeploymentRecord),
    /// Remove a deployment.
    DeleteDeployment(String),
    /// Record that a twin's desired properties (at this desired version) must reach the
    /// device: the outbox entry stays until [`CloudStore::delivered`] removes it.
    Outbox(TwinKey, u64),
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// Its directory.
        path: String,
        /// Why.
        #[source]
        source: ::sled::Error,
    },
    /// A read or write failed.
    #[error("store {operation} failed: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// Why.
        #[source]
        source: ::sled::Error,
    },
    /// A stored record does not decode (a newer or damaged store).
    #[error("stored {what} {key:?} does not decode: {reason}")]
    Corrupt {
        /// The kind of record.
        what: &'static str,
        /// Its key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// Storage for the registry and twins. Every method is synchronous and quick; writes are
/// durable when [`apply`](CloudStore::apply) returns.
pub trait CloudStore: Send + Sync + 'static {
    /// A device, if registered.
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Up to `limit` devices with ids after `after`, in id order.
    fn devices(&self, after: &str, limit: usize) -> Result<Vec<DeviceRecord>, StoreError>;
    /// A twin, if it exists.
    fn twin(&self, key: &TwinKey) -> Result<Option<TwinDoc>, StoreError>;
    /// Every twin of a device: the device twin under the empty module name.
    fn twins_of(&self, device: &str) -> Result<BTreeMap<String, TwinDoc>, StoreError>;
    /// Every deployment, in id order.
    fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError>;
    /// Twins waiting to be delivered, with the desired version each waits at.
    fn outbox(&self) -> Result<Vec<(TwinKey, u64)>, StoreError>;
    /// Removes the outbox entry of `key` if it still waits at `version` (a newer change keeps
    /// it); returns whether it was removed. Durable when it returns.
    fn delivered(&self, key: &TwinKey, version: u64) -> Result<bool, StoreError>;
    /// Applies all the writes or none, durably.
    fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError>;
}

#[cfg(test)]
pub(crate) mod contract;
