//! The device registry's records: a device's credentials, status and connection state, as
//! stored and as checked when a device signs in to the message broker.

pub mod credentials;

use serde::{Deserialize, Serialize};

pub use credentials::{Credentials, CredentialsError, TokenCheck};

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The device id (IoT Hub's id rules).
    pub id: String,
    /// How it proves who it is.
    pub credentials: Credentials,
    /// Disabled devices cannot sign in; their connections are refused.
    pub enabled: bool,
    /// The operator's reason for the status.
    #[serde(default)]
    pub status_reason: String,
    /// Unix milliseconds of creation.
    pub created_ms: u64,
    /// A fresh value for every creation of this id, so a deleted and re-created device is
    /// told apart from its predecessor.
    pub generation_id: String,
    /// Bumped by every change of the record; the etag.
    pub version: u64,
    /// Whether a component of the device holds a broker connection.
    #[serde(default)]
    pub connected: bool,
    /// Unix milliseconds of the last sign-in or message; 0: never.
    #[serde(default)]
    pub last_activity_ms: u64,
    /// Which deployments target it and which its configuration comes from.
    #[serde(default)]
    pub assignment: crate::deployments::assign::Assignment,
}

impl DeviceRecord {
    /// The etag of this state of the record.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// `enabled` or `disabled`, as twin queries see the status.
    pub fn status_name(&self) -> &'static str {
        if self.enabled { "enabled" } else { "disabled" }
    }
}
