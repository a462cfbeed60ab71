//! outpost-watchdog's configuration; `default-config.toml` is the commented default.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The complete default configuration, with comments.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[watchdog]`.
    #[serde(default)]
    pub watchdog: Timing,
    /// `[paths]`.
    #[serde(default)]
    pub paths: Paths,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: Metrics,
    /// `[[service]]`.
    #[serde(default)]
    pub service: Vec<Watched>,
}

/// `[watchdog]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// Seconds between checks.
    pub interval_secs: u32,
    /// Seconds a check may take.
    pub timeout_secs: u32,
    /// Consecutive failures before acting.
    pub failures: u32,
    /// Longest wait between actions, seconds.
    pub max_backoff_secs: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Self { interval_secs: 10, timeout_secs: 5, failures: 3, max_backoff_secs: 300 }
    }
}

impl Timing {
    /// Between checks.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs.into())
    }

    /// For one check.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.into())
    }

    /// The longest wait between actions.
    pub fn max_backoff(&self) -> Duration {
        Duration::from_secs(self.max_backoff_secs.into())
    }
}

/// `[paths]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    /// The watchdog's own socket.
    pub socket: PathBuf,
    /// outpostd's socket.
    pub host_socket: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self { socket: "/run/outpost/watchdog.sock".into(), host_socket: "/run/outpost/host.sock".into() }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Listener address; empty for none.
    pub bind: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self { bind: "127.0.0.1:9601".into() }
    }
}

/// `[[service]]`: one watched service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watched {
    /// Its name in outpostd's API.
    pub name: String,
    /// Its gRPC socket.
    pub socket: PathBuf,
}

impl Config {
    /// Checks what deserialisation cannot.
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.watchdog;
        if t.interval_secs == 0 || t.timeout_secs == 0 || t.failures == 0 {
            return Err("`watchdog`: interval_secs, timeout_secs and failures must be at least 1".into());
        }
        if t.timeout_secs > t.interval_secs {
            return Err("`watchdog.timeout_secs` must not exceed watchdog.interval_secs".into());
        }
        if !self.metrics.bind.is_empty() && self.metrics.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("`metrics.bind`: {:?} is not an address:port (or empty for none)", self.metrics.bind));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in self.service.iter().enumerate() {
            if s.name.is_empty() || !names.insert(&s.name) {
                return Err(format!("`service[{i}].name` must be set and unique"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_default_is_the_default() {
        let config: Config = outpost_daemon::config::parse_config(DEFAULT_CONFIG).unwrap();
        config.validate().unwrap();
        assert_eq!(config.watchdog, Timing::default());
        assert_eq!(config.paths, Paths::default());
        assert_eq!(config.service.len(), 3);
        let bad: Config = outpost_daemon::config::parse_config("[watchdog]\ntimeout_secs = 60\n").unwrap();
        assert!(bad.validate().unwrap_err().contains("timeout_secs"));
    }
}
