//! Devices' last activity and connection state: sign-ins, telemetry and the broker's
//! connection events come far too often to write each to disk, so they are kept in memory and
//! written in one batch every few seconds ([`Cloud::flush_activity`]); reads see them at once.
//! Losing the last seconds of activity in a crash costs nothing that matters.

use std::collections::HashMap;

use super::{Cloud, now_ms};
use crate::error::CloudError;
use crate::registry::DeviceRecord;
use crate::store::Write;

/// What was seen of a device since the last flush.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// Unix milliseconds of the latest activity.
    pub last_ms: u64,
    /// The latest connection state, if it changed.
    pub connected: Option<bool>,
}

/// Activity not yet written, by device.
pub type Pending = HashMap<String, Seen>;

impl Seen {
    fn apply(self, record: &mut DeviceRecord) {
        record.last_activity_ms = record.last_activity_ms.max(self.last_ms);
        if let Some(connected) = self.connected {
            record.connected = connected;
        }
    }
}

impl Cloud {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.activity.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that a device signed in or was heard from (and, with `connected`, whether it
    /// holds a connection now). In memory until the next flush.
    pub fn touch(&self, device: &str, connected: Option<bool>) {
        let mut pending = self.pending();
        let seen = pending.entry(device.to_owned()).or_default();
        seen.last_ms = now_ms();
        if connected.is_some() {
            seen.connected = connected;
        }
    }

    /// `record` with what was seen of it since the last flush.
    pub(super) fn with_activity(&self, mut record: DeviceRecord) -> DeviceRecord {
        if let Some(seen) = self.pending().get(&record.id) {
            seen.apply(&mut record);
        }
        record
    }

    /// Writes the activity seen since the last flush, in one batch; returns how many devices.
    pub fn flush_activity(&self) -> Result<usize, CloudError> {
        let pending = std::mem::take(&mut *self.pending());
        if pending.is_empty() {
            return Ok(0);
        }
        let _guard = self.lock();
        let mut writes = Vec::with_capacity(pending.len());
        for (device, seen) in &pending {
            // A device deleted meanwhile has nothing to update.
            if let Some(mut record) = self.store.device(device)? {
                seen.apply(&mut record);
                writes.push(Write::PutDevice(record));
            }
        }
        let count = writes.len();
        if let Err(e) = self.store.apply(writes) {
            // Keep what could not be written for the next flush (newer sightings win).
            let mut current = self.pending();
            for (device, seen) in pending {
                current.entry(device).or_insert(seen);
            }
            return Err(e.into());
        }
        Ok(count)
    }
}
