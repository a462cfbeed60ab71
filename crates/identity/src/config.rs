//! outpost-identityd's configuration; `default-config.toml` is the commented default and
//! must deserialise to [`Config::default`].

use std::path::PathBuf;

use outpost_core::DeviceId;
use outpost_daemon::config::ManagementConfig;
use outpost_rpc::Principal;
use serde::Deserialize;

/// The commented default configuration printed by `--print-default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The device identity.
    pub device: DeviceConfig,
    /// Where state and sockets live.
    #[serde(default)]
    pub paths: PathsConfig,
    /// Which key store to use.
    #[serde(default)]
    pub key_store: KeyStoreConfig,
    /// Token lifetimes and verification.
    #[serde(default)]
    pub tokens: TokensConfig,
    /// The device CA and issued certificates.
    #[serde(default)]
    pub certificates: CertificatesConfig,
    /// The workload API.
    #[serde(default)]
    pub workload: WorkloadConfig,
    /// The management socket.
    #[serde(default)]
    pub management: ManagementConfig,
    /// Callers allowed besides root and the daemon's uid.
    #[serde(default)]
    pub principal: Vec<Principal>,
}

/// `[device]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// The device id.
    pub id: DeviceId,
    /// The hub's host name (token resource, IOTEDGE_IOTHUBHOSTNAME).
    pub hub_hostname: String,
    /// The name modules dial to reach the local hub (IOTEDGE_GATEWAYHOSTNAME).
    #[serde(default = "default_gateway")]
    pub gateway_hostname: String,
    /// The device key, base64; generated when unset.
    #[serde(default)]
    pub key: Option<String>,
    /// A file holding the device key, base64.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_gateway() -> String {
    "localhost".into()
}

/// `[paths]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// Keys, blobs, certificates and the registry.
    pub state_dir: PathBuf,
    /// The management socket.
    pub socket: PathBuf,
    /// The directory of per-module workload sockets.
    pub workload_dir: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self {
            state_dir: "/var/lib/outpost/identity".into(),
            socket: "/run/outpost/identity.sock".into(),
            workload_dir: "/run/outpost/mnt".into(),
        }
    }
}

/// Which key store backs the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStoreKind {
    /// Base64 files under the state directory.
    File,
    /// A TPM 2.0.
    Tpm,
}

/// `[key_store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyStoreConfig {
    /// `file` or `tpm`.
    pub kind: KeyStoreKind,
    /// The TSS TCTI string for the TPM.
    pub tcti: String,
}

impl Default for KeyStoreConfig {
    fn default() -> Self {
        Self { kind: KeyStoreKind::File, tcti: "device:/dev/tpmrm0".into() }
    }
}

/// `[tokens]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Default lifetime, seconds.
    pub default_ttl_secs: u64,
    /// Longest lifetime a caller may ask for, seconds.
    pub max_ttl_secs: u64,
    /// Tolerated clock skew when verifying, seconds.
    pub clock_skew_secs: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self { default_ttl_secs: 3600, max_ttl_secs: 86_400, clock_skew_secs: 300 }
    }
}

/// `[certificates]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CertificatesConfig {
    /// Device CA lifetime, days.
    pub ca_validity_days: u32,
    /// Renew the CA after this percentage of its lifetime.
    pub ca_renew_at_percent: u8,
    /// Renewal check interval, seconds.
    pub renew_check_interval_secs: u64,
    /// Server certificate lifetime, days.
    pub server_validity_days: u32,
    /// Identity certificate lifetime, days.
    pub identity_validity_days: u32,
    /// Extra PEM roots for the trust bundle.
    pub trust_bundle_cert: Option<PathBuf>,
}

impl Default for CertificatesConfig {
    fn default() -> Self {
        Self {
            ca_validity_days: 90,
            ca_renew_at_percent: 80,
            renew_check_interval_secs: 3600,
            server_validity_days: 30,
            identity_validity_days: 30,
            trust_bundle_cert: None,
        }
    }
}

/// `[workload]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// Socket permission bits.
    pub socket_mode: u32,
    /// Concurrent requests per socket.
    pub max_concurrent_requests: usize,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self { socket_mode: 0o666, max_concurrent_requests: 10 }
    }
}

/// Problems a configuration can have beyond its shape.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// A setting is out of range.
    #[error("{key}: {reason}")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// A default configuration for `device` of `hub` with all state and sockets under `root`
    /// (for quickstarts, tests and benchmarks).
    pub fn under(root: &std::path::Path, device: DeviceId, hub: &str) -> Self {
        Self {
            device: DeviceConfig {
                id: device,
                hub_hostname: hub.to_owned(),
                gateway_hostname: default_gateway(),
                key: None,
                key_file: None,
            },
            paths: PathsConfig {
                state_dir: root.join("state"),
                socket: root.join("run/identity.sock"),
                workload_dir: root.join("run/mnt"),
            },
            key_store: KeyStoreConfig::default(),
            tokens: TokensConfig::default(),
            certificates: CertificatesConfig::default(),
            workload: WorkloadConfig::default(),
            management: ManagementConfig::default(),
            principal: Vec::new(),
        }
    }

    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        let bad = |key, reason: &str| Err(ConfigProblem::Invalid { key, reason: reason.to_owned() });
        if self.device.hub_hostname.is_empty() || self.device.hub_hostname.contains(['/', ' ']) {
            return bad("device.hub_hostname", "must be a host name");
        }
        if self.device.key.is_some() && self.device.key_file.is_some() {
            return bad("device.key", "set either device.key or device.key_file, not both");
        }
        if self.tokens.default_ttl_secs == 0 || self.tokens.default_ttl_secs > self.tokens.max_ttl_secs {
            return bad("tokens.default_ttl_secs", "must be between 1 and tokens.max_ttl_secs");
        }
        let c = &self.certificates;
        if c.ca_validity_days == 0 || c.server_validity_days == 0 || c.identity_validity_days == 0 {
            return bad("certificates", "validity periods must be at least one day");
        }
        if !(1..=99).contains(&c.ca_renew_at_percent) {
            return bad("certificates.ca_renew_at_percent", "must be between 1 and 99");
        }
        if self.workload.max_concurrent_requests == 0 {
            return bad("workload.max_concurrent_requests", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_default_is_the_default() {
        let parsed: Config = outpost_daemon::config::parse_config(DEFAULT_CONFIG).unwrap();
        let expected = Config {
            device: DeviceConfig {
                id: DeviceId::new("my-device").unwrap(),
                hub_hostname: "outpost.local".into(),
                gateway_hostname: "localhost".into(),
                key: None,
                key_file: None,
            },
            paths: PathsConfig::default(),
            key_store: KeyStoreConfig::default(),
            tokens: TokensConfig::default(),
            certificates: CertificatesConfig::default(),
            workload: WorkloadConfig::default(),
            management: ManagementConfig::default(),
            principal: vec![],
        };
        assert_eq!(parsed, expected);
        parsed.validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let text = DEFAULT_CONFIG.replace("id = \"my-device\"", "id = \"my device\"");
        let err = outpost_daemon::config::parse_config::<Config>(&text).unwrap_err().to_string();
        assert!(err.contains("device.id") && err.contains("' '"), "{err}");

        let text = DEFAULT_CONFIG.replace("ca_renew_at_percent = 80", "ca_renew_at_percent = 100");
        let config: Config = outpost_daemon::config::parse_config(&text).unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("ca_renew_at_percent"));
    }
}
