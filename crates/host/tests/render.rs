//! Every file outpostd writes is accepted by the service it is for.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use outpost_host::config::Config;
use outpost_host::render::render;
use outpost_host::services::ServiceName;

#[test]
fn each_service_accepts_its_generated_configuration() {
    let text = "[device]\nid = \"d1\"\nhub_hostname = \"hub.example\"\nkey = \"AAAAAAAAAAAAAAAAAAAAAA==\"\n\
                [cloud]\nurl = \"amqps://cloud:5671\"\nca_file = \"/etc/outpost/ca.pem\"\n\
                [services.hub.auth]\nallow_anonymous = true\n";
    let config: Config = outpost_daemon::config::parse_config(text).unwrap();
    config.validate().unwrap();
    let source = Path::new("/etc/outpost/config.toml");
    let logger = Path::new("/usr/lib/outpost/outpost-logger");
    let file = |service| render(&config, source, service, logger);

    let identity: outpost_identity::config::Config =
        outpost_daemon::config::parse_config(&file(ServiceName::Identityd)).unwrap();
    identity.validate().unwrap();
    assert_eq!(identity.device.id.as_str(), "d1");
    assert_eq!(identity.paths.socket, Path::new("/run/outpost/identity.sock"));

    let agent: outpost_agent::config::Config = outpost_daemon::config::parse_config(&file(ServiceName::Agent)).unwrap();
    assert_eq!(agent.cloud.url, "amqps://cloud:5671");
    assert_eq!(agent.host.socket, Path::new("/run/outpost/host.sock"));
    assert_eq!(agent.logs.logger, logger);

    let hub: outpost_hub::config::Config = outpost_daemon::config::parse_config(&file(ServiceName::Hub)).unwrap();
    assert!(hub.auth.allow_anonymous);
    assert_eq!(hub.routes.deployment_file, Path::new("/var/lib/outpost/agent/deployment.json"));

    let watchdog: outpost_watchdog::config::Config =
        outpost_daemon::config::parse_config(&file(ServiceName::Watchdog)).unwrap();
    watchdog.validate().unwrap();
    let watched: Vec<_> = watchdog.service.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(watched, ["identityd", "agent", "hub"]);
}
