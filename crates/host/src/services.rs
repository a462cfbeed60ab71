//! The runtime's services: their names, programs, sockets and the order they start in.

use std::path::PathBuf;

use crate::config::{Config, PathsConfig};

/// One of the services outpostd runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceName {
    /// outpost-identityd: keys, identities, tokens, the workload API.
    Identityd,
    /// outpost-agent: deployments → module containers.
    Agent,
    /// outpost-hub: the local MQTT broker and the upstream link.
    Hub,
    /// outpost-watchdog: health checks of the others.
    Watchdog,
}

impl ServiceName {
    /// Every service, in start order (each one needs the ones before it).
    pub const ALL: [ServiceName; 4] = [Self::Identityd, Self::Agent, Self::Hub, Self::Watchdog];

    /// The service's name in the API and the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identityd => "identityd",
            Self::Agent => "agent",
            Self::Hub => "hub",
            Self::Watchdog => "watchdog",
        }
    }

    /// The program that runs it.
    pub fn program(self) -> &'static str {
        match self {
            Self::Identityd => "outpost-identityd",
            Self::Agent => "outpost-agent",
            Self::Hub => "outpost-hub",
            Self::Watchdog => "outpost-watchdog",
        }
    }

    /// The name of its gRPC socket under the run directory.
    fn socket_name(self) -> &'static str {
        match self {
            Self::Identityd => "identity.sock",
            Self::Agent => "agent.sock",
            Self::Hub => "hub.sock",
            Self::Watchdog => "watchdog.sock",
        }
    }

    /// Its gRPC socket (serving `grpc.health.v1`).
    pub fn socket(self, paths: &PathsConfig) -> PathBuf {
        paths.run_dir.join(self.socket_name())
    }

    /// The configuration file outpostd writes for it.
    pub fn config_path(self, paths: &PathsConfig) -> PathBuf {
        paths.host_dir().join("config").join(format!("{}.toml", self.as_str()))
    }

    /// Its output file.
    pub fn log_path(self, paths: &PathsConfig) -> PathBuf {
        paths.log_dir.join(format!("{}.log", self.as_str()))
    }

    /// The image it runs in container mode, as configured.
    pub fn configured_image(self, config: &Config) -> &str {
        let images = &config.runtime.images;
        match self {
            Self::Identityd => &images.identityd,
            Self::Agent => &images.agent,
            Self::Hub => &images.hub,
            Self::Watchdog => &images.watchdog,
        }
    }

    /// Whether a deployment may replace its image (runtime self-update).
    pub fn updatable(self) -> bool {
        matches!(self, Self::Agent | Self::Hub)
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ServiceName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| format!("unknown service {s:?}; the services are identityd, agent, hub and watchdog"))
    }
}
