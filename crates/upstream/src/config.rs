//! Where the link connects and how it behaves: [`LinkConfig`], and the AMQP URI built from it
//! with the device's credentials.

use std::time::Duration;

use outpost_core::topology::Component;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// The link's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// The broker: `amqp://host:port` or `amqps://host:port`, without credentials or virtual
    /// host.
    pub url: String,
    /// The broker's virtual host.
    pub vhost: String,
    /// The device: the AMQP user name, the `user_id` of every message and the first word of
    /// every routing key.
    pub device_id: String,
    /// The component whose queue this link consumes (`outpost.device.{device}.{component}`).
    pub component: Component,
    /// Lifetime asked of each token; the link signs in again with a new one at 80 % of it.
    pub token_ttl_secs: u64,
    /// Most unacknowledged downlinks the broker hands this link at once (`basic.qos`).
    pub prefetch: u16,
    /// Most unconfirmed messages one [`publish_batch`](crate::Upstream::publish_batch) keeps
    /// in flight.
    pub confirm_window: usize,
    /// How long a connection being replaced (token refresh) or closed (shutdown) may take to
    /// receive the confirms and acknowledgements still due on it.
    pub drain_timeout: Duration,
    /// Certificates (PEM) to trust for `amqps://` besides none: a private CA. `None` with
    /// `amqps://` trusts no one and fails, saying so.
    pub ca_pem: Option<String>,
}

/// The largest AMQP frame a device asks for. lapin keeps 32 frames of buffer each way per
/// connection, so RabbitMQ's default (128 KiB) would cost a device 8 MiB per link; messages
/// larger than a frame are simply split.
pub const FRAME_MAX: u32 = 8192;

/// The default [`LinkConfig::token_ttl_secs`]: one hour.
pub const fn default_token_ttl_secs() -> u64 {
    3600
}

/// The default [`LinkConfig::prefetch`].
pub const fn default_prefetch() -> u16 {
    100
}

/// The default [`LinkConfig::confirm_window`].
pub const fn default_confirm_window() -> usize {
    1000
}

/// The default [`LinkConfig::drain_timeout`].
pub const fn default_drain_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A configuration the link cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The URL is not `amqp://host[:port]` or `amqps://host[:port]`.
    #[error("broker url {url:?} is not amqp://host[:port] or amqps://host[:port] without credentials or path")]
    Url {
        /// The URL given.
        url: String,
    },
    /// The device id is empty.
    #[error("the device id is empty")]
    NoDevice,
    /// A zero prefetch (unlimited) or confirm window.
    #[error("{field} must be at least 1")]
    Zero {
        /// The field.
        field: &'static str,
    },
}

impl LinkConfig {
    /// A configuration with the defaults for everything but the broker and the device.
    pub fn new(
        url: impl Into<String>,
        vhost: impl Into<String>,
        device_id: impl Into<String>,
        component: Component,
    ) -> Self {
        Self {
            url: url.into(),
            vhost: vhost.into(),
            device_id: device_id.into(),
            component,
            token_ttl_secs: default_token_ttl_secs(),
            prefetch: default_prefetch(),
            confirm_window: default_confirm_window(),
            drain_timeout: default_drain_timeout(),
            ca_pem: None,
        }
    }

    /// Checks what can be checked without a broker.
    pub fn validate(&self) -> Result<(), ConfigError> {
        split_url(&self.url)?;
        if self.device_id.is_empty() {
            return Err(ConfigError::NoDevice);
        }
        if self.prefetch == 0 {
            return Err(ConfigError::Zero { field: "prefetch" });
        }
        if self.confirm_window == 0 {
            return Err(ConfigError::Zero { field: "confirm_window" });
        }
        Ok(())
    }

    /// The AMQP URI signing in as the device with `token`; user, password and virtual host
    /// percent-encoded (a SAS token holds spaces, `&`, `=` and `%`).
    pub fn uri(&self, token: &str) -> Result<String, ConfigError> {
        let (scheme, authority) = split_url(&self.url)?;
        Ok(format!(
            "{scheme}://{}:{}@{authority}/{}?frame_max={FRAME_MAX}",
            encode(&self.device_id),
            encode(token),
            encode(&self.vhost)
        ))
    }
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// `(scheme, host[:port])` of a credential-free broker URL; one trailing `/` is tolerated.
fn split_url(url: &str) -> Result<(&str, &str), ConfigError> {
    let bad = || ConfigError::Url { url: url.to_owned() };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if scheme != "amqp" && scheme != "amqps" {
        return Err(bad());
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return Err(bad());
    }
    Ok((scheme, authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> LinkConfig {
        LinkConfig::new(url, "out/post", "dev.1", Component::Agent)
    }

    #[test]
    fn the_uri_signs_in_as_the_device_with_everything_encoded() {
        let token = "SharedAccessSignature sr=outpost.test%2Fdevices%2Fdev.1&sig=a%2Bb%3D&se=1700000000";
        assert_eq!(
            config("amqp://127.0.0.1:5672").uri(token).unwrap(),
            "amqp://dev%2E1:SharedAccessSignature%20sr%3Doutpost%2Etest%252Fdevices%252Fdev%2E1%26sig%3Da%252Bb%253D%26se%3D1700000000@127.0.0.1:5672/out%2Fpost?frame_max=8192"
        );
        assert_eq!(
            config("amqps://broker.example:5671/").uri("t").unwrap(),
            "amqps://dev%2E1:t@broker.example:5671/out%2Fpost?frame_max=8192"
        );
    }

    #[test]
    fn urls_with_credentials_paths_or_other_schemes_are_refused() {
        for url in ["http://h:1", "amqp://", "amqp://u:p@h:1", "amqp://h:1/vhost", "h:5672", "amqp://h?x=1"] {
            assert_eq!(config(url).validate(), Err(ConfigError::Url { url: url.into() }), "{url}");
        }
        assert_eq!(config("amqp://h").validate(), Ok(()));
    }

    #[test]
    fn defaults_and_limits() {
        let mut c = config("amqp://h:1");
        assert_eq!((c.token_ttl_secs, c.prefetch, c.confirm_window), (3600, 100, 1000));
        c.prefetch = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero { field: "prefetch" }));
        c.prefetch = 1;
        c.confirm_window = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero { field: "confirm_window" }));
        c.confirm_window = 1;
        c.device_id.clear();
        assert_eq!(c.validate(), Err(ConfigError::NoDevice));
    }
}
