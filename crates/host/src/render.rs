//! Splitting the device configuration into each service's own file: pure functions from
//! [`Config`] to TOML text, so that `outpost config apply` and outpostd write the same bytes
//! and a changed file tells which services must restart.

use std::path::Path;

use toml::{Table, Value};

use crate::config::{Config, KeyStoreKind};
use crate::services::ServiceName;

fn table<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Table(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn s(text: impl AsRef<str>) -> Value {
    Value::String(text.as_ref().to_owned())
}

fn p(path: impl AsRef<Path>) -> Value {
    Value::String(path.as_ref().display().to_string())
}

fn int(n: impl Into<i64>) -> Value {
    Value::Integer(n.into())
}

/// The generated configuration of `service`, overrides applied, as TOML text with a header
/// naming its source. `logger` is outpost-logger's path on the host (module output).
pub fn render(config: &Config, source: &Path, service: ServiceName, logger: &Path) -> String {
    let mut doc = match service {
        ServiceName::Identityd => identityd(config),
        ServiceName::Agent => agent(config, logger),
        ServiceName::Hub => hub(config),
        ServiceName::Watchdog => watchdog(config),
    };
    let overrides = match service {
        ServiceName::Identityd => &config.services.identityd,
        ServiceName::Agent => &config.services.agent,
        ServiceName::Hub => &config.services.hub,
        ServiceName::Watchdog => &config.services.watchdog,
    };
    outpost_daemon::config::merge(&mut doc, overrides.clone());
    let body = toml::to_string(&doc).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"));
    format!(
        "# outpost-{service} configuration, written by outpostd from {}.\n# Edit that file (and run `outpost config apply`), not this one.\n\n{body}",
        source.display()
    )
}

fn cloud(config: &Config) -> Value {
    table([("url", s(&config.cloud.url)), ("vhost", s(&config.cloud.vhost)), ("ca_file", s(&config.cloud.ca_file))])
}

fn identityd(config: &Config) -> Table {
    let paths = &config.paths;
    let d = &config.device;
    let mut device = Table::new();
    device.insert("id".into(), s(d.id.as_str()));
    device.insert("hub_hostname".into(), s(&d.hub_hostname));
    device.insert("gateway_hostname".into(), s(&d.gateway_hostname));
    if let Some(key) = &d.key {
        device.insert("key".into(), s(key));
    }
    if let Some(file) = &d.key_file {
        device.insert("key_file".into(), p(file));
    }
    let kind = match config.key_store.kind {
        KeyStoreKind::File => "file",
        KeyStoreKind::Tpm => "tpm",
    };
    Table::from_iter([
        ("device".to_owned(), Value::Table(device)),
        (
            "paths".to_owned(),
            table([
                ("state_dir", p(paths.state_dir.join("identity"))),
                ("socket", p(ServiceName::Identityd.socket(paths))),
                ("workload_dir", p(paths.run_dir.join("mnt"))),
            ]),
        ),
        ("key_store".to_owned(), table([("kind", s(kind)), ("tcti", s(&config.key_store.tcti))])),
    ])
}

fn agent(config: &Config, logger: &Path) -> Table {
    let paths = &config.paths;
    Table::from_iter([
        (
            "paths".to_owned(),
            table([
                ("state_dir", p(paths.state_dir.join("agent"))),
                ("socket", p(ServiceName::Agent.socket(paths))),
                ("identity_socket", p(ServiceName::Identityd.socket(paths))),
                ("workload_dir", p(paths.run_dir.join("mnt"))),
                ("log_dir", p(paths.log_dir.join("modules"))),
                ("hub_socket", p(ServiceName::Hub.socket(paths))),
            ]),
        ),
        (
            "containerd".to_owned(),
            table([("socket", p(&config.containerd.socket)), ("namespace", s(&config.containerd.namespace))]),
        ),
        ("cloud".to_owned(), cloud(config)),
        ("logs".to_owned(), table([("logger", p(logger))])),
        ("host".to_owned(), table([("socket", p(paths.host_socket()))])),
    ])
}

fn hub(config: &Config) -> Table {
    let paths = &config.paths;
    let h = &config.hub;
    Table::from_iter([
        ("mqtt".to_owned(), table([("bind", s(&h.mqtt_bind)), ("tls_bind", s(&h.mqtts_bind))])),
        ("https".to_owned(), table([("bind", s(&h.https_bind))])),
        ("admin".to_owned(), table([("socket", p(ServiceName::Hub.socket(paths)))])),
        (
            "metrics".to_owned(),
            if h.metrics_bind.is_empty() {
                table([("enabled", Value::Boolean(false))])
            } else {
                table([("enabled", Value::Boolean(true)), ("bind", s(&h.metrics_bind))])
            },
        ),
        ("identity".to_owned(), table([("socket", p(ServiceName::Identityd.socket(paths)))])),
        (
            "store".to_owned(),
            table([
                ("dir", p(paths.state_dir.join("hub/store"))),
                ("max_bytes", int(i64::try_from(h.store_max_bytes).unwrap_or(i64::MAX))),
            ]),
        ),
        (
            "routes".to_owned(),
            // Looked at every second: the agent waits for the hub to have a new deployment's
            // routes before it starts the deployment's modules.
            table([("deployment_file", p(paths.state_dir.join("agent/deployment.json"))), ("poll_secs", int(1))]),
        ),
        ("cloud".to_owned(), cloud(config)),
    ])
}

fn watchdog(config: &Config) -> Table {
    let paths = &config.paths;
    let w = &config.watchdog;
    let watched = [ServiceName::Identityd, ServiceName::Agent, ServiceName::Hub]
        .into_iter()
        .map(|service| table([("name", s(service.as_str())), ("socket", p(service.socket(paths)))]))
        .collect();
    Table::from_iter([
        (
            "watchdog".to_owned(),
            table([
                ("interval_secs", int(w.interval_secs)),
                ("timeout_secs", int(w.timeout_secs)),
                ("failures", int(w.failures)),
                ("max_backoff_secs", int(w.max_backoff_secs)),
            ]),
        ),
        (
            "paths".to_owned(),
            table([("socket", p(ServiceName::Watchdog.socket(paths))), ("host_socket", p(paths.host_socket()))]),
        ),
        ("metrics".to_owned(), table([("bind", s(&w.metrics_bind))])),
        ("service".to_owned(), Value::Array(watched)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[device]\nid = \"d1\"\nhub_hostname = \"hub.example\"\nkey = \"AAAAAAAAAAAAAAAAAAAAAA==\"\n{extra}"
        );
        outpost_daemon::config::parse_config(&text).unwrap()
    }

    #[test]
    fn every_service_gets_the_shared_paths() {
        let config = config("[paths]\nstate_dir = \"/data\"\nrun_dir = \"/r\"\n[cloud]\nurl = \"amqp://c:5672\"\n");
        let source = Path::new("/etc/outpost/config.toml");
        let logger = Path::new("/usr/lib/outpost/outpost-logger");
        let agent = render(&config, source, ServiceName::Agent, logger);
        assert!(agent.contains("state_dir = \"/data/agent\""), "{agent}");
        assert!(agent.contains("identity_socket = \"/r/identity.sock\""), "{agent}");
        assert!(agent.contains("url = \"amqp://c:5672\""), "{agent}");
        let hub = render(&config, source, ServiceName::Hub, logger);
        assert!(hub.contains("deployment_file = \"/data/agent/deployment.json\""), "{hub}");
        let identityd = render(&config, source, ServiceName::Identityd, logger);
        assert!(identityd.contains("id = \"d1\"") && identityd.contains("workload_dir = \"/r/mnt\""), "{identityd}");
        let watchdog = render(&config, source, ServiceName::Watchdog, logger);
        assert!(watchdog.contains("host_socket = \"/r/host.sock\"") && watchdog.contains("[[service]]"), "{watchdog}");
        assert!(agent.starts_with("# outpost-agent configuration, written by outpostd from /etc/outpost/config.toml"));
    }

    #[test]
    fn overrides_are_merged_key_by_key() {
        let config = config("[services.hub.auth]\nallow_anonymous = true\n[services.hub.mqtt]\nmax_inflight = 7\n");
        let hub = render(&config, Path::new("/c"), ServiceName::Hub, Path::new("/l"));
        let doc: Table = hub.parse().unwrap();
        assert_eq!(doc["auth"]["allow_anonymous"].as_bool(), Some(true));
        assert_eq!(doc["mqtt"]["max_inflight"].as_integer(), Some(7));
        assert_eq!(doc["mqtt"]["bind"].as_str(), Some("0.0.0.0:1883"));
    }
}
