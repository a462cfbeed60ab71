//! outpost-cloud's configuration; `default-config.toml` is the commented default and must
//! deserialise to [`Config::default`].

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The commented default configuration printed by `--print-default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The control plane itself.
    pub cloud: CloudConfig,
    /// The operator API.
    pub api: ApiConfig,
    /// The message broker's auth endpoint.
    pub broker_auth: BrokerAuthConfig,
    /// The message broker.
    pub amqp: AmqpConfig,
}

/// `[amqp]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpConfig {
    /// `amqp://host:port` or `amqps://host:port`, without credentials or virtual host.
    pub url: String,
    /// The type of every queue declared.
    pub queue_type: crate::amqp::QueueType,
    /// CA certificates (PEM) to trust for `amqps://`; unset: none.
    pub ca_file: Option<PathBuf>,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self { url: "amqp://127.0.0.1:5672".into(), queue_type: crate::amqp::QueueType::Classic, ca_file: None }
    }
}

/// `[cloud]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    /// The host name devices sign tokens for.
    pub hub_hostname: String,
    /// Where state lives.
    pub state_dir: PathBuf,
    /// Clock skew tolerated on device tokens, in seconds.
    pub token_skew_secs: u64,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self { hub_hostname: "outpost.local".into(), state_dir: "/var/lib/outpost-cloud".into(), token_skew_secs: 300 }
    }
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address.
    pub bind: SocketAddr,
    /// Serve TLS.
    pub tls: bool,
    /// Certificate chain (PEM).
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Names (DNS or IP) of a generated certificate.
    pub names: Vec<String>,
    /// Operators and their token hashes.
    pub operator: Vec<Operator>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 7443)),
            tls: true,
            cert_file: None,
            key_file: None,
            names: vec!["localhost".into(), "127.0.0.1".into()],
            operator: Vec::new(),
        }
    }
}

/// `[[api.operator]]`: someone allowed to call the API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// Who it is, for the logs.
    pub name: String,
    /// SHA-256 of the bearer token, hex.
    pub token_sha256: String,
}

/// `[broker_auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerAuthConfig {
    /// Listen address of the HTTP endpoint RabbitMQ asks.
    pub bind: SocketAddr,
    /// The cloud's own broker user.
    pub service_user: String,
    /// Its password; `None`: generated into the state dir.
    pub service_password: Option<String>,
    /// The virtual host.
    pub vhost: String,
}

impl Default for BrokerAuthConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 7480)),
            service_user: "outpost-cloud".into(),
            service_password: None,
            vhost: "outpost".into(),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// Plaintext on a non-loopback address.
    #[error("api.tls = false is allowed on loopback only, but api.bind is {0}")]
    PlaintextOffLoopback(SocketAddr),
    /// Only one of the certificate and key is given.
    #[error("api.cert_file and api.key_file must be given together")]
    HalfCertificate,
    /// An operator's token hash is not 64 hex digits.
    #[error("api.operator {name:?}: token_sha256 must be 64 hex digits")]
    TokenHash {
        /// The operator.
        name: String,
    },
    /// The service user could be taken for a device id.
    #[error("broker_auth.service_user must not be empty")]
    ServiceUser,
    /// The broker URL is not amqp:// or amqps://.
    #[error("amqp.url must start with amqp:// or amqps://, got {0:?}")]
    AmqpUrl(String),
    /// Empty hub host name.
    #[error("cloud.hub_hostname must not be empty")]
    HubHostname,
}

impl Config {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        if !self.api.tls && !self.api.bind.ip().is_loopback() {
            return Err(ConfigProblem::PlaintextOffLoopback(self.api.bind));
        }
        if self.api.cert_file.is_some() != self.api.key_file.is_some() {
            return Err(ConfigProblem::HalfCertificate);
        }
        for operator in &self.api.operator {
            if operator.token_sha256.len() != 64 || !operator.token_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigProblem::TokenHash { name: operator.name.clone() });
            }
        }
        if self.broker_auth.service_user.is_empty() {
            return Err(ConfigProblem::ServiceUser);
        }
        if !(self.amqp.url.starts_with("amqp://") || self.amqp.url.starts_with("amqps://")) {
            return Err(ConfigProblem::AmqpUrl(self.amqp.url.clone()));
        }
        if self.cloud.hub_hostname.is_empty() {
            return Err(ConfigProblem::HubHostname);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_is_the_default() {
        let parsed: Config = outpost_daemon::config::parse_config(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed, Config::default());
        parsed.validate().unwrap();
    }

    #[test]
    fn plaintext_is_for_loopback_only() {
        let mut config = Config::default();
        config.api.tls = false;
        assert_eq!(config.validate(), Err(ConfigProblem::PlaintextOffLoopback(config.api.bind)));
        config.api.bind = "127.0.0.1:7443".parse().unwrap();
        config.validate().unwrap();
    }

    #[test]
    fn operator_hashes_are_checked() {
        let mut config = Config::default();
        config.api.operator.push(Operator { name: "bob".into(), token_sha256: "abc".into() });
        assert!(config.validate().unwrap_err().to_string().contains("\"bob\""));
    }
}
