//! outpost-hub's configuration; `default-config.toml` is the commented default and must
//! deserialise to [`Config::default`].

use std::net::SocketAddr;

use std::path::PathBuf;

use serde::Deserialize;

pub use crate::auth::AuthConfig;

use crate::broker::Limits;

/// The commented default configuration printed by `--print-default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// MQTT listeners and limits.
    pub mqtt: MqttConfig,
    /// The identity service.
    pub identity: IdentityConfig,
    /// Clients other than IoT Hub identities.
    pub auth: AuthConfig,
    /// Where routes come from.
    pub routes: RoutesConfig,
    /// Store-and-forward.
    pub store: StoreConfig,
    /// The HTTPS endpoint.
    pub https: HttpsConfig,
    /// The admin API.
    pub admin: AdminConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// The control plane.
    pub cloud: CloudConfig,
}

/// `[cloud]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    /// The control plane's message broker (`amqp://` or `amqps://host:port`); empty: none.
    pub url: String,
    /// Its virtual host.
    pub vhost: String,
    /// CA certificates (PEM) to trust for `amqps://`; empty: none.
    pub ca_file: PathBuf,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self { url: String::new(), vhost: "outpost".into(), ca_file: PathBuf::new() }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The admin API's socket; empty: none.
    pub socket: PathBuf,
    /// Its mode.
    pub socket_mode: u32,
    /// Who besides root and the hub's own user may call it.
    pub principal: Vec<outpost_rpc::Principal>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { socket: "/run/outpost/hub.sock".into(), socket_mode: 0o660, principal: Vec::new() }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Whether to serve `/metrics`.
    pub enabled: bool,
    /// Its listener.
    pub bind: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, bind: SocketAddr::from(([0, 0, 0, 0], 9600)) }
    }
}

/// `[https]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpsConfig {
    /// Whether to serve HTTPS (needs the identity service for the certificate).
    pub enabled: bool,
    /// Its listener.
    pub bind: SocketAddr,
}

impl Default for HttpsConfig {
    fn default() -> Self {
        Self { enabled: true, bind: SocketAddr::from(([0, 0, 0, 0], 443)) }
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The store's directory; empty keeps everything in memory (lost on restart).
    pub dir: PathBuf,
    /// Bytes (topics and payloads) of queued messages it may hold; 0: no limit.
    pub max_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { dir: "/var/lib/outpost/hub/store".into(), max_bytes: Limits::default().max_store_bytes }
    }
}

/// `[routes]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutesConfig {
    /// The deployment manifest whose `$edgeHub` routes apply (the agent's stored
    /// deployment); empty: no routes.
    pub deployment_file: PathBuf,
    /// Seconds between looks at it.
    pub poll_secs: u64,
}

impl Default for RoutesConfig {
    fn default() -> Self {
        Self { deployment_file: "/var/lib/outpost/agent/deployment.json".into(), poll_secs: 2 }
    }
}

/// `[identity]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// outpost-identityd's management socket; empty: IoT Hub identities are refused.
    pub socket: PathBuf,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self { socket: "/run/outpost/identity.sock".into() }
    }
}

/// `[mqtt]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Plain TCP listener.
    pub bind: SocketAddr,
    /// Whether to serve MQTT over TLS (needs the identity service for the certificate).
    pub tls: bool,
    /// The TLS listener.
    pub tls_bind: SocketAddr,
    /// Names (DNS or IP) the certificate is for besides the device's gateway host name.
    pub tls_names: Vec<String>,
    /// Largest packet accepted, bytes.
    pub max_packet_size: usize,
    /// QoS 1/2 deliveries in flight per client.
    pub max_inflight: usize,
    /// Messages queued per client beyond the in-flight window or while it is away.
    pub max_queued: usize,
    /// Topic aliases an MQTT 5 client may use.
    pub topic_alias_maximum: u16,
}

impl Default for MqttConfig {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 1883)),
            tls: true,
            tls_bind: SocketAddr::from(([0, 0, 0, 0], 8883)),
            tls_names: vec!["localhost".into(), "127.0.0.1".into()],
            max_packet_size: limits.max_packet_size,
            max_inflight: limits.max_inflight,
            max_queued: limits.max_queued,
            topic_alias_maximum: limits.topic_alias_maximum,
        }
    }
}

impl MqttConfig {
    /// As the broker's limits (the store's limit is [`StoreConfig::max_bytes`]).
    pub fn limits(&self) -> Limits {
        Limits {
            max_packet_size: self.max_packet_size.max(64),
            max_inflight: self.max_inflight.max(1),
            max_queued: self.max_queued,
            topic_alias_maximum: self.topic_alias_maximum,
            max_store_bytes: 0,
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
    }
}
