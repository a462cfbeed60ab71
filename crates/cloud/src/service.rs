//! The control plane's operations on the registry and twins, over a [`CloudStore`]:
//! synchronous, serialised per process, each one an atomic durable batch. The gRPC adapters
//! and the broker's auth endpoint call these; they know nothing of transport.

use std::sync::{Arc, Mutex, MutexGuard};

use outpost_core::{DeviceId, ModuleId};
use serde_json::{Map, Value};

use crate::amqp::RegistryEvent;
use crate::error::CloudError;
use crate::registry::{Credentials, DeviceRecord, TokenCheck};
use crate::store::{CloudStore, TwinKey, Write};
use crate::twin::{Section, TwinDoc};

mod activity;
mod deployments;

pub use deployments::{DeploymentUpdate, NewDeployment};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Telemetry messages kept for an operator stream that falls behind.
const TELEMETRY_BUFFER: usize = 4096;

/// A new device as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewDevice {
    /// The id.
    pub id: String,
    /// Credentials; `None` generates symmetric keys.
    pub credentials: Option<Credentials>,
    /// Initial tags.
    pub tags: Map<String, Value>,
    /// Register it disabled.
    pub disabled: bool,
}

/// Changes to a device's registry entry.
#[derive(Debug, Clone, Default)]
pub struct DeviceUpdate {
    /// New status: `Some(true)` enables, `Some(false)` disables.
    pub enabled: Option<bool>,
    /// The reason shown with the status.
    pub status_reason: Option<String>,
    /// Replacement credentials.
    pub credentials: Option<Credentials>,
    /// Apply only if the etag is this.
    pub if_match: Option<String>,
}

/// Changes to a twin.
#[derive(Debug, Clone, Default)]
pub struct TwinUpdate {
    /// Merge patch over the tags.
    pub tags: Option<Map<String, Value>>,
    /// Merge patch over the desired properties.
    pub desired: Option<Map<String, Value>>,
    /// Apply only if the etag is this.
    pub if_match: Option<String>,
}

/// The control plane's state and operations.
pub struct Cloud {
    store: Arc<dyn CloudStore>,
    /// Serialises read-modify-write sequences (the store has no compare-and-set).
    writer: Mutex<()>,
    hub_hostname: String,
    token_skew_secs: u64,
    /// Tells the broker link about devices created and deleted.
    events: Option<tokio::sync::mpsc::UnboundedSender<RegistryEvent>>,
    /// Telemetry for operators' event streams.
    telemetry: tokio::sync::broadcast::Sender<TelemetryEvent>,
    /// Direct method calls waiting for their answer.
    calls: crate::calls::Calls,
    /// Activity seen and not yet written.
    activity: Mutex<activity::Pending>,
}

impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud").field("hub_hostname", &self.hub_hostname).finish_non_exhaustive()
    }
}

fn check_etag(what: &'static str, id: &str, given: Option<&String>, current: String) -> Result<(), CloudError> {
    match given {
        Some(given) if !given.is_empty() && *given != current && given != "*" => {
            Err(CloudError::EtagMismatch { what, id: id.to_owned(), given: given.clone(), current })
        }
        _ => Ok(()),
    }
}

impl Cloud {
    /// The service over `store`, for devices of hub `hub_hostname` (the resource of their
    /// SAS tokens), accepting `token_skew_secs` of clock skew.
    pub fn new(store: Arc<dyn CloudStore>, hub_hostname: impl Into<String>, token_skew_secs: u64) -> Self {
        Self {
            store,
            writer: Mutex::new(()),
            hub_hostname: hub_hostname.into(),
            token_skew_secs,
            events: None,
            telemetry: tokio::sync::broadcast::channel(TELEMETRY_BUFFER).0,
            calls: crate::calls::Calls::default(),
            activity: Mutex::default(),
        }
    }

    /// Sends registry events (devices created and deleted) to `events`.
    pub fn with_events(mut self, events: tokio::sync::mpsc::UnboundedSender<RegistryEvent>) -> Self {
        self.events = Some(events);
        self
    }

    fn tell(&self, event: RegistryEvent) {
        if let Some(events) = &self.events {
            // The link gone means shutdown; a reconnection reconciles everything anyway.
            let _ = events.send(event);
        }
    }

    /// Applies `writes` and tells the broker link about twins waiting in the outbox.
    fn commit(&self, writes: Vec<Write>) -> Result<(), CloudError> {
        let deliveries: Vec<TwinKey> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Outbox(key, _) => Some(key.clone()),
                _ => None,
            })
            .collect();
        self.store.apply(writes)?;
        for key in deliveries {
            self.tell(RegistryEvent::TwinChanged(key));
        }
        Ok(())
    }

    /// The hub host name devices sign tokens for.
    pub fn hub_hostname(&self) -> &str {
        &self.hub_hostname
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn existing(&self, id: &str) -> Result<DeviceRecord, CloudError> {
        self.store.device(id)?.ok_or_else(|| CloudError::NotFound { what: "device", id: id.to_owned() })
    }

    /// Registers a device with its (empty or tagged) device twin.
    pub fn create_device(&self, new: NewDevice) -> Result<DeviceRecord, CloudError> {
        let id = DeviceId::new(new.id)?;
        let credentials = match new.credentials {
            Some(credentials) => credentials,
            None => Credentials::generate()?,
        };
        let mut twin = TwinDoc::default();
        if !new.tags.is_empty() {
            twin.patch(Section::Tags, &new.tags)?;
        }
        let _guard = self.lock();
        if self.store.device(id.as_str())?.is_some() {
            return Err(CloudError::AlreadyExists(id.to_string()));
        }
        let now = now_ms();
        let record = DeviceRecord {
            id: id.to_string(),
            credentials,
            enabled: !new.disabled,
            status_reason: String::new(),
            created_ms: now,
            generation_id: format!("{now}-{}", uuid::Uuid::new_v4().simple()),
            version: 1,
            connected: false,
            last_activity_ms: 0,
            assignment: Default::default(),
        };
        self.store.apply(vec![
            Write::DeleteTwins(record.id.clone()),
            Write::PutDevice(record.clone()),
            Write::PutTwin(TwinKey::device(&record.id), twin),
        ])?;
        self.reevaluate_device(&record.id)?;
        let record = self.existing(&record.id)?;
        tracing::info!(device = %record.id, "device created");
        self.tell(RegistryEvent::DeviceCreated(record.id.clone()));
        Ok(record)
    }

    /// A device's registry entry.
    pub fn device(&self, id: &str) -> Result<DeviceRecord, CloudError> {
        Ok(self.with_activity(self.existing(id)?))
    }

    /// A page of devices after `after`.
    pub fn devices(&self, after: &str, limit: usize) -> Result<Vec<DeviceRecord>, CloudError> {
        Ok(self.store.devices(after, limit)?.into_iter().map(|record| self.with_activity(record)).collect())
    }

    /// Changes status or credentials.
    pub fn update_device(&self, id: &str, update: DeviceUpdate) -> Result<DeviceRecord, CloudError> {
        let _guard = self.lock();
        let mut record = self.existing(id)?;
        check_etag("device", id, update.if_match.as_ref(), record.etag())?;
        let before = record.clone();
        if let Some(enabled) = update.enabled {
            record.enabled = enabled;
        }
        if let Some(reason) = update.status_reason {
            record.status_reason = reason;
        }
        if let Some(credentials) = update.credentials {
            record.credentials = credentials;
        }
        if record != before {
            record.version += 1;
            self.store.apply(vec![Write::PutDevice(record.clone())])?;
            tracing::info!(device = %id, enabled = record.enabled, "device updated");
        }
        Ok(record)
    }

    /// Removes a device and its twins.
    pub fn delete_device(&self, id: &str, if_match: Option<&String>) -> Result<(), CloudError> {
        let _guard = self.lock();
        let record = self.existing(id)?;
        check_etag("device", id, if_match, record.etag())?;
        self.store.apply(vec![Write::DeleteDevice(id.to_owned()), Write::DeleteTwins(id.to_owned())])?;
        tracing::info!(device = %id, "device deleted");
        self.tell(RegistryEvent::DeviceDeleted(id.to_owned()));
        Ok(())
    }

    fn twin_key(device: &str, module: &str) -> Result<TwinKey, CloudError> {
        DeviceId::new(device)?;
        if !module.is_empty() {
            ModuleId::new(module)?;
        }
        Ok(TwinKey::module(device, module))
    }

    /// A twin. Module twins exist once something was written to them.
    pub fn twin(&self, device: &str, module: &str) -> Result<TwinDoc, CloudError> {
        let key = Self::twin_key(device, module)?;
        self.existing(device)?;
        self.store.twin(&key)?.ok_or_else(|| CloudError::NotFound { what: "twin", id: twin_name(&key) })
    }

    /// Patches a twin's tags and desired properties. A module twin is created by its first
    /// update (the device must exist).
    pub fn update_twin(&self, device: &str, module: &str, update: TwinUpdate) -> Result<TwinDoc, CloudError> {
        let key = Self::twin_key(device, module)?;
        if update.tags.is_some() && !module.is_empty() {
            return Err(CloudError::Field {
                field: "tags",
                problem: "module twins have no tags; tag the device".into(),
            });
        }
        let _guard = self.lock();
        self.existing(device)?;
        let mut twin = self.store.twin(&key)?.unwrap_or_default();
        check_etag("twin", &twin_name(&key), update.if_match.as_ref(), twin.etag())?;
        let mut changed = false;
        if let Some(tags) = &update.tags {
            changed |= twin.patch(Section::Tags, tags)?;
        }
        let mut desired_changed = false;
        if let Some(desired) = &update.desired {
            desired_changed = twin.patch(Section::Desired, desired)?;
        }
        if changed || desired_changed || self.store.twin(&key)?.is_none() {
            let mut writes = vec![Write::PutTwin(key.clone(), twin.clone())];
            if desired_changed && !key.module.is_empty() {
                writes.push(Write::Outbox(key.clone(), twin.desired_version));
            }
            self.commit(writes)?;
            tracing::info!(twin = %twin_name(&key), version = twin.version, "twin updated");
            if update.tags.is_some() {
                self.reevaluate_device(device)?;
            }
        }
        Ok(twin)
    }

    /// Merges a reported-properties patch sent by the device. With a sequence number, a patch
    /// at or below the last one applied to this twin is a redelivery and changes nothing.
    pub fn report(
        &self,
        device: &str,
        module: &str,
        patch: &Map<String, Value>,
        sequence: Option<u64>,
    ) -> Result<TwinDoc, CloudError> {
        let key = Self::twin_key(device, module)?;
        let _guard = self.lock();
        self.existing(device)?;
        let mut twin = self.store.twin(&key)?.unwrap_or_default();
        if let Some(sequence) = sequence {
            if sequence <= twin.reported_sequence {
                tracing::debug!(twin = %twin_name(&key), sequence, "reported patch seen before");
                return Ok(twin);
            }
            twin.reported_sequence = sequence;
        }
        let created = self.store.twin(&key)?.is_none();
        if twin.patch(Section::Reported, patch)? || created || sequence.is_some() {
            self.store.apply(vec![Write::PutTwin(key, twin.clone())])?;
            if module.is_empty() {
                // Target conditions may read the device twin's reported properties.
                self.reevaluate_device(device)?;
            }
        }
        Ok(twin)
    }

    /// Whether `device` may sign in with `token`: registered, enabled, and the token signed
    /// with one of its keys. The reason for a refusal is for the logs.
    pub fn authenticate_device(&self, device: &str, token: &str) -> Result<(), String> {
        let record = match self.store.device(device) {
            Ok(Some(record)) => record,
            Ok(None) => return Err(format!("device {device:?} is not registered")),
            Err(e) => return Err(format!("registry unavailable: {e}")),
        };
        if !record.enabled {
            return Err(format!("device {device:?} is disabled"));
        }
        match record.credentials.check_token(&self.hub_hostname, device, token, now_ms() / 1000, self.token_skew_secs) {
            TokenCheck::Valid => Ok(()),
            TokenCheck::Invalid(reason) => Err(reason),
        }
    }
}

impl Cloud {
    /// Twins waiting to be delivered.
    pub fn outbox(&self) -> Result<Vec<(TwinKey, u64)>, CloudError> {
        Ok(self.store.outbox()?)
    }

    /// A twin as stored, if it exists (for delivery).
    pub fn stored_twin(&self, key: &TwinKey) -> Result<Option<TwinDoc>, CloudError> {
        Ok(self.store.twin(key)?)
    }

    /// Every module twin of a device (not the device twin), by module.
    pub fn module_twins(&self, device: &str) -> Result<std::collections::BTreeMap<String, TwinDoc>, CloudError> {
        let mut twins = self.store.twins_of(device)?;
        twins.remove("");
        Ok(twins)
    }

    /// Forgets an outbox entry once the twin at `version` reached the broker.
    pub fn delivered(&self, key: &TwinKey, version: u64) -> Result<bool, CloudError> {
        Ok(self.store.delivered(key, version)?)
    }

    /// Direct method calls waiting for their answer.
    pub fn calls(&self) -> &crate::calls::Calls {
        &self.calls
    }

    /// Hands a message for a device to the broker link; resolves when the broker confirmed
    /// it, or fails with why (no link: the caller decides how long to wait).
    pub async fn send_down(&self, message: crate::amqp::Outgoing) -> Result<(), String> {
        let Some(events) = &self.events else {
            return Err("this control plane has no message broker link".into());
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        events
            .send(RegistryEvent::Send(Box::new(message), reply))
            .map_err(|_| "the message broker link has stopped".to_owned())?;
        answer.await.map_err(|_| "the message broker link dropped the message".to_owned())?
    }

    /// Operators watching telemetry.
    pub fn telemetry(&self) -> &tokio::sync::broadcast::Sender<TelemetryEvent> {
        &self.telemetry
    }
}

/// A telemetry message as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryEvent {
    /// The sending device.
    pub device: String,
    /// The sending module; empty for the device itself.
    pub module: String,
    /// The body.
    pub body: Vec<u8>,
    /// Application properties.
    pub properties: Vec<(String, String)>,
    /// Unix milliseconds when the cloud received it.
    pub received_ms: u64,
}

/// `device` or `device/module`, for messages.
pub fn twin_name(key: &TwinKey) -> String {
    if key.module.is_empty() { key.device.clone() } else { format!("{}/{}", key.device, key.module) }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_deployments;
