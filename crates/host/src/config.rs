//! The device configuration (`/etc/outpost/config.toml`): one file for the whole device,
//! deserialised with errors that name the key, then checked as a whole by
//! [`Config::validate`]. [`crate::render`] splits it into the services' own files.

use std::path::{Path, PathBuf};

use outpost_core::DeviceId;
use serde::Deserialize;

/// The complete default configuration, with comments.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Where outpostd looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/outpost/config.toml";

/// The whole device configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[device]`.
    pub device: DeviceConfig,
    /// `[key_store]`.
    #[serde(default)]
    pub key_store: KeyStoreConfig,
    /// `[cloud]`.
    #[serde(default)]
    pub cloud: CloudConfig,
    /// `[paths]`.
    #[serde(default)]
    pub paths: PathsConfig,
    /// `[containerd]`.
    #[serde(default)]
    pub containerd: ContainerdConfig,
    /// `[runtime]`.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// `[watchdog]`.
    #[serde(default)]
    pub watchdog: WatchdogConfig,
    /// `[hub]`.
    #[serde(default)]
    pub hub: HubConfig,
    /// `[image_garbage_collection]`.
    #[serde(default)]
    pub image_garbage_collection: ImageGcConfig,
    /// `[services.<name>]`: settings merged verbatim over a service's generated file.
    #[serde(default)]
    pub services: ServiceOverrides,
}

/// `[device]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// The device id.
    pub id: DeviceId,
    /// The cloud's host name.
    pub hub_hostname: String,
    /// The name modules dial to reach the local hub.
    #[serde(default = "default_gateway")]
    pub gateway_hostname: String,
    /// The device key, base64.
    #[serde(default)]
    pub key: Option<String>,
    /// A file holding the device key, base64.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_gateway() -> String {
    "localhost".into()
}

/// How keys are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStoreKind {
    /// Files under the identity service's state directory.
    #[default]
    File,
    /// A TPM 2.0.
    Tpm,
}

/// `[key_store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyStoreConfig {
    /// Files or TPM.
    pub kind: KeyStoreKind,
    /// The TPM's TCTI.
    pub tcti: String,
}

impl Default for KeyStoreConfig {
    fn default() -> Self {
        Self { kind: KeyStoreKind::File, tcti: "device:/dev/tpmrm0".into() }
    }
}

/// `[cloud]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    /// The broker's URL; empty for none.
    pub url: String,
    /// The broker's virtual host.
    pub vhost: String,
    /// CA certificates for amqps://; empty for the system's.
    pub ca_file: String,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self { url: String::new(), vhost: "outpost".into(), ca_file: String::new() }
    }
}

/// `[paths]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// Services' state.
    pub state_dir: PathBuf,
    /// Sockets.
    pub run_dir: PathBuf,
    /// Services' and modules' output.
    pub log_dir: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self {
            state_dir: "/var/lib/outpost".into(),
            run_dir: "/run/outpost".into(),
            log_dir: "/var/log/outpost".into(),
        }
    }
}

impl PathsConfig {
    /// outpostd's own state: generated configs, the update journal.
    pub fn host_dir(&self) -> PathBuf {
        self.state_dir.join("host")
    }

    /// outpostd's management socket.
    pub fn host_socket(&self) -> PathBuf {
        self.run_dir.join("host.sock")
    }
}

/// `[containerd]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerdConfig {
    /// containerd's socket.
    pub socket: PathBuf,
    /// The modules' namespace.
    pub namespace: String,
    /// The runtime's own namespace.
    pub system_namespace: String,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        Self {
            socket: "/run/containerd/containerd.sock".into(),
            namespace: "outpost".into(),
            system_namespace: "outpost-system".into(),
        }
    }
}

/// How services run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// As containers of Outpost's images.
    #[default]
    Container,
    /// As child processes.
    Process,
}

impl Mode {
    /// The mode's name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Process => "process",
        }
    }
}

/// `[runtime]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Containers or processes.
    pub mode: Mode,
    /// Process mode: where the programs are; empty for outpostd's directory.
    pub bin_dir: PathBuf,
    /// OCI archives imported when an image is missing; empty for none.
    pub image_dir: PathBuf,
    /// Seconds a replaced service has to become healthy.
    pub update_healthy_within_secs: u32,
    /// Seconds a service has to stop on SIGTERM.
    pub stop_grace_secs: u32,
    /// Seconds modules have to stop when outpostd shuts down.
    pub module_stop_grace_secs: u32,
    /// `[runtime.images]`.
    pub images: Images,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Container,
            bin_dir: PathBuf::new(),
            image_dir: "/usr/share/outpost/images".into(),
            update_healthy_within_secs: 60,
            stop_grace_secs: 30,
            module_stop_grace_secs: 30,
            images: Images::default(),
        }
    }
}

/// `[runtime.images]`: the image of each service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Images {
    /// outpost-identityd's image.
    pub identityd: String,
    /// outpost-agent's image.
    pub agent: String,
    /// outpost-hub's image.
    pub hub: String,
    /// outpost-watchdog's image.
    pub watchdog: String,
}

impl Default for Images {
    fn default() -> Self {
        let v = env!("CARGO_PKG_VERSION");
        Self {
            identityd: format!("outpost/identityd:{v}"),
            agent: format!("outpost/agent:{v}"),
            hub: format!("outpost/hub:{v}"),
            watchdog: format!("outpost/watchdog:{v}"),
        }
    }
}

/// `[watchdog]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogConfig {
    /// Seconds between checks.
    pub interval_secs: u32,
    /// Seconds a check may take.
    pub timeout_secs: u32,
    /// Consecutive failures before acting.
    pub failures: u32,
    /// Longest wait between actions, in seconds.
    pub max_backoff_secs: u32,
    /// Metrics listener; empty for none.
    pub metrics_bind: String,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self {
            interval_secs: 10,
            timeout_secs: 5,
            failures: 3,
            max_backoff_secs: 300,
            metrics_bind: "127.0.0.1:9601".into(),
        }
    }
}

/// `[hub]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// MQTT listener.
    pub mqtt_bind: String,
    /// MQTT over TLS listener.
    pub mqtts_bind: String,
    /// HTTPS listener.
    pub https_bind: String,
    /// Metrics listener; empty for none.
    pub metrics_bind: String,
    /// Store size limit.
    pub store_max_bytes: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            mqtt_bind: "0.0.0.0:1883".into(),
            mqtts_bind: "0.0.0.0:8883".into(),
            https_bind: "0.0.0.0:443".into(),
            metrics_bind: "0.0.0.0:9600".into(),
            store_max_bytes: 1 << 30,
        }
    }
}

/// `[image_garbage_collection]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageGcConfig {
    /// Whether unused images are removed.
    pub enabled: bool,
    /// How often, e.g. "1d".
    pub cleanup_recurrence: String,
    /// Unused for how long, e.g. "7d".
    pub image_age_cleanup_threshold: String,
    /// At what time of day (UTC), "HH:MM".
    pub cleanup_time: String,
}

impl Default for ImageGcConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cleanup_recurrence: "1d".into(),
            image_age_cleanup_threshold: "7d".into(),
            cleanup_time: "00:00".into(),
        }
    }
}

/// `[services.<name>]` tables, merged over the generated files.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceOverrides {
    /// Over outpost-identityd's file.
    pub identityd: toml::Table,
    /// Over outpost-agent's file.
    pub agent: toml::Table,
    /// Over outpost-hub's file.
    pub hub: toml::Table,
    /// Over outpost-watchdog's file.
    pub watchdog: toml::Table,
}

/// A configuration that parsed but does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {reason}")]
pub struct ConfigProblem {
    /// The dotted key at fault.
    pub key: &'static str,
    /// What is wrong and what would be right.
    pub reason: String,
}

fn problem(key: &'static str, reason: impl Into<String>) -> Result<(), ConfigProblem> {
    Err(ConfigProblem { key, reason: reason.into() })
}

impl Config {
    /// Checks what deserialisation cannot: consistent choices, usable values.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        let d = &self.device;
        if d.hub_hostname.is_empty() || d.hub_hostname.contains(['/', ' ', ':']) {
            problem("device.hub_hostname", "must be a host name, without scheme, port or path")?;
        }
        if d.gateway_hostname.is_empty() || d.gateway_hostname.contains(['/', ' ']) {
            problem("device.gateway_hostname", "must be a host name")?;
        }
        if d.key.is_some() && d.key_file.is_some() {
            problem("device.key", "set either device.key or device.key_file, not both")?;
        }
        if let Some(key) = &d.key {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD.decode(key.trim()) {
                Ok(bytes) if bytes.len() >= 16 => {}
                Ok(_) => problem("device.key", "is shorter than 16 bytes")?,
                Err(e) => problem("device.key", format!("is not base64: {e}"))?,
            }
        }
        if !self.cloud.url.is_empty() && !["amqp://", "amqps://"].iter().any(|s| self.cloud.url.starts_with(s)) {
            problem("cloud.url", format!("{:?} must start with amqp:// or amqps://", self.cloud.url))?;
        }
        for (key, path) in [
            ("paths.state_dir", &self.paths.state_dir),
            ("paths.run_dir", &self.paths.run_dir),
            ("paths.log_dir", &self.paths.log_dir),
        ] {
            if !path.is_absolute() {
                problem(key, format!("{} must be an absolute path", path.display()))?;
            }
        }
        // A socket path longer than sun_path (108 bytes) cannot be bound.
        let longest = self.paths.run_dir.join("mnt/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/workload.sock");
        if longest.as_os_str().len() > 100 {
            problem("paths.run_dir", "is too long for Unix socket paths (keep it under 50 characters)")?;
        }
        for (key, ns) in [
            ("containerd.namespace", &self.containerd.namespace),
            ("containerd.system_namespace", &self.containerd.system_namespace),
        ] {
            if ns.is_empty() || !ns.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                problem(key, "must be letters, digits, '-', '_' or '.'")?;
            }
        }
        if self.containerd.namespace == self.containerd.system_namespace {
            problem("containerd.system_namespace", "must differ from containerd.namespace (modules)")?;
        }
        if self.runtime.mode == Mode::Container {
            let i = &self.runtime.images;
            for (key, image) in [
                ("runtime.images.identityd", &i.identityd),
                ("runtime.images.agent", &i.agent),
                ("runtime.images.hub", &i.hub),
                ("runtime.images.watchdog", &i.watchdog),
            ] {
                if image.is_empty() || image.contains(char::is_whitespace) {
                    problem(key, "must be an image reference")?;
                }
            }
        }
        if self.runtime.update_healthy_within_secs == 0 {
            problem("runtime.update_healthy_within_secs", "must be at least 1")?;
        }
        let w = &self.watchdog;
        if w.interval_secs == 0 || w.timeout_secs == 0 || w.failures == 0 {
            problem("watchdog", "interval_secs, timeout_secs and failures must be at least 1")?;
        }
        if w.timeout_secs > w.interval_secs {
            problem("watchdog.timeout_secs", "must not exceed watchdog.interval_secs")?;
        }
        if w.max_backoff_secs < w.interval_secs {
            problem("watchdog.max_backoff_secs", "must be at least watchdog.interval_secs")?;
        }
        for (key, bind) in [
            ("hub.mqtt_bind", &self.hub.mqtt_bind),
            ("hub.mqtts_bind", &self.hub.mqtts_bind),
            ("hub.https_bind", &self.hub.https_bind),
        ] {
            if bind.parse::<std::net::SocketAddr>().is_err() {
                problem(key, format!("{bind:?} is not an address:port"))?;
            }
        }
        for (key, bind) in [("hub.metrics_bind", &self.hub.metrics_bind), ("watchdog.metrics_bind", &w.metrics_bind)] {
            if !bind.is_empty() && bind.parse::<std::net::SocketAddr>().is_err() {
                problem(key, format!("{bind:?} is not an address:port (or empty for none)"))?;
            }
        }
        let gc = &self.image_garbage_collection;
        crate::gc::Schedule::parse(gc).map_err(|(key, reason)| ConfigProblem { key, reason })?;
        Ok(())
    }

    /// Where the key file of `[device] key_file` is, if any (for checks).
    pub fn key_file(&self) -> Option<&Path> {
        self.device.key_file.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let config: Config = outpost_daemon::config::parse_config(text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn the_printed_default_is_the_default() {
        let config = parse(DEFAULT_CONFIG).unwrap();
        let minimal = parse("[device]\nid = \"my-device\"\nhub_hostname = \"outpost.local\"\n").unwrap();
        assert_eq!(config, minimal);
    }

    #[test]
    fn the_installed_template_is_the_default() {
        assert_eq!(
            include_str!("../../../deploy/config/config.toml"),
            DEFAULT_CONFIG,
            "copy default-config.toml to deploy/config/config.toml"
        );
    }

    #[test]
    fn mistakes_name_their_key() {
        let base = "[device]\nid = \"d1\"\nhub_hostname = \"h\"\n";
        let cases = [
            ("[device]\nhub_hostname = \"h\"\n", "missing field `id`"),
            (&format!("{base}[runtime]\nmode = \"vm\"\n") as &str, "runtime.mode"),
            (&format!("{base}[watchdog]\nfailures = 0\n"), "watchdog"),
            (&format!("{base}[watchdog]\ntimeout_secs = 20\n"), "watchdog.timeout_secs"),
            (&format!("{base}[cloud]\nurl = \"http://x\"\n"), "cloud.url"),
            (&format!("{base}[paths]\nstate_dir = \"var\"\n"), "paths.state_dir"),
            (&format!("{base}[hub]\nmqtt_bind = \"1883\"\n"), "hub.mqtt_bind"),
            (&format!("{base}[containerd]\nsystem_namespace = \"outpost\"\n"), "containerd.system_namespace"),
            (&format!("{base}[image_garbage_collection]\ncleanup_time = \"25:00\"\n"), "cleanup_time"),
            (&format!("{base}[image_garbage_collection]\nimage_age_cleanup_threshold = \"7 days\"\n"), "threshold"),
            (&format!("{base}[services.nope]\nx = 1\n"), "services.nope"),
            (&format!("{base}[unknown]\n"), "unknown"),
            ("[device]\nid = \"bad id\"\nhub_hostname = \"h\"\n", "device.id"),
            ("[device]\nid = \"d\"\nhub_hostname = \"h\"\nkey = \"!!\"\n", "device.key"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err:?} lacks {expected:?}");
        }
    }
}
