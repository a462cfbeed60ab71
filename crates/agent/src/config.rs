//! outpost-agent's configuration; `default-config.toml` is the commented default and must
//! deserialise to [`Config::default`].

use std::path::PathBuf;
use std::time::Duration;

use outpost_daemon::config::ManagementConfig;
use outpost_rpc::Principal;
use serde::Deserialize;

use crate::restart::RestartSettings;

/// The commented default configuration printed by `--print-default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Paths.
    pub paths: PathsConfig,
    /// containerd.
    pub containerd: ContainerdConfig,
    /// Reconcile loop.
    pub reconcile: ReconcileConfig,
    /// Restart schedule.
    pub restart: RestartConfig,
    /// Image registries.
    pub registry: RegistryConfig,
    /// Module logs.
    pub logs: LogsConfig,
    /// Deployment sources besides the management API.
    pub deployment: DeploymentConfig,
    /// The control plane.
    pub cloud: CloudConfig,
    /// outpostd, for runtime self-updates.
    pub host: HostConfig,
    /// Management socket.
    pub management: ManagementConfig,
    /// Callers allowed besides root and the agent's uid.
    pub principal: Vec<Principal>,
}

/// `[paths]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// State directory.
    pub state_dir: PathBuf,
    /// Management socket.
    pub socket: PathBuf,
    /// identityd's socket.
    pub identity_socket: PathBuf,
    /// identityd's workload directory.
    pub workload_dir: PathBuf,
    /// Module logs.
    pub log_dir: PathBuf,
    /// The hub's admin socket; empty: the agent does not wait for the hub's routes.
    pub hub_socket: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self {
            state_dir: "/var/lib/outpost/agent".into(),
            socket: "/run/outpost/agent.sock".into(),
            identity_socket: "/run/outpost/identity.sock".into(),
            workload_dir: "/run/outpost/mnt".into(),
            log_dir: "/var/log/outpost/modules".into(),
            hub_socket: PathBuf::new(),
        }
    }
}

/// `[containerd]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerdConfig {
    /// Socket.
    pub socket: PathBuf,
    /// Namespace.
    pub namespace: String,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        Self { socket: "/run/containerd/containerd.sock".into(), namespace: "outpost".into() }
    }
}

/// `[reconcile]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    /// Seconds between passes.
    pub interval_secs: u64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self { interval_secs: 5 }
    }
}

/// `[restart]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestartConfig {
    /// Cool-off unit.
    pub cool_off_unit_secs: u64,
    /// Longest cool-off.
    pub max_cool_off_secs: u64,
    /// Restarts before giving up.
    pub max_restarts: u32,
    /// Running time that clears the count.
    pub healthy_after_secs: u64,
}

impl Default for RestartConfig {
    fn default() -> Self {
        Self { cool_off_unit_secs: 10, max_cool_off_secs: 300, max_restarts: 20, healthy_after_secs: 600 }
    }
}

/// `[deployment]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentConfig {
    /// A manifest file applied whenever its content changes; empty for none.
    pub file: PathBuf,
    /// Seconds between looks at the file.
    pub poll_secs: u64,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self { file: PathBuf::new(), poll_secs: 2 }
    }
}

/// `[cloud]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    /// The control plane's message broker (`amqp://` or `amqps://host:port`); empty: none.
    pub url: String,
    /// Its virtual host.
    pub vhost: String,
    /// Seconds between comparisons of the reported properties with what the cloud has.
    pub report_interval_secs: u64,
    /// CA certificates (PEM) to trust for `amqps://`; empty: none.
    pub ca_file: PathBuf,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self { url: String::new(), vhost: "outpost".into(), report_interval_secs: 5, ca_file: PathBuf::new() }
    }
}

/// `[host]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// outpostd's socket (`outpost.host.v1`); empty: the agent runs without outpostd and
    /// ignores the runtime's images in deployments.
    pub socket: PathBuf,
}

/// `[logs]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// The logger program; empty means `outpost-logger` beside the agent's executable.
    pub logger: PathBuf,
    /// Bytes per log file before rotation.
    pub max_size_bytes: u64,
    /// Files kept per module, the current one included.
    pub max_files: u32,
}

impl Default for LogsConfig {
    fn default() -> Self {
        let rotation = crate::logs::Rotation::default();
        Self { logger: PathBuf::new(), max_size_bytes: rotation.max_size, max_files: rotation.max_files }
    }
}

impl LogsConfig {
    /// The logger program to use.
    pub fn logger(&self) -> PathBuf {
        if !self.logger.as_os_str().is_empty() {
            return self.logger.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("outpost-logger")))
            .unwrap_or_else(|| PathBuf::from("/usr/libexec/outpost/outpost-logger"))
    }

    /// Module logs under `dir`.
    pub fn module_logs(&self, dir: &std::path::Path) -> crate::logs::ModuleLogs {
        crate::logs::ModuleLogs {
            dir: dir.to_owned(),
            logger: self.logger(),
            rotation: crate::logs::Rotation { max_size: self.max_size_bytes, max_files: self.max_files.max(1) },
        }
    }
}

/// `[registry]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`) reached over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// Seconds allowed to connect.
    pub connect_timeout_secs: u64,
    /// Seconds a download may stall before it fails.
    pub read_timeout_secs: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { insecure: Vec::new(), connect_timeout_secs: 10, read_timeout_secs: 30 }
    }
}

impl RegistryConfig {
    /// As the runtime's registry settings.
    pub fn settings(&self) -> outpost_runtime::registry::RegistrySettings {
        outpost_runtime::registry::RegistrySettings {
            insecure: self.insecure.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            read_timeout: Duration::from_secs(self.read_timeout_secs),
        }
    }
}

impl RestartConfig {
    /// As the restart engine's settings.
    pub fn settings(&self) -> RestartSettings {
        RestartSettings {
            cool_off_unit: Duration::from_secs(self.cool_off_unit_secs),
            max_cool_off: Duration::from_secs(self.max_cool_off_secs),
            max_restarts: self.max_restarts,
            healthy_after: Duration::from_secs(self.healthy_after_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_default_is_the_default() {
        let parsed: Config = outpost_daemon::config::parse_config(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed, Config::default());
        assert_eq!(parsed.restart.settings(), RestartSettings::default());
    }
}
