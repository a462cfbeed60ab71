//! Checks of the device as a whole (with `/etc/outpost/config.toml`): the file and the
//! services' files written from it, outpostd and its services, the hub's ports, the cloud
//! (reachable, and the device's sign-in accepted), the clock, and log rotation.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs as _};
use std::path::Path;
use std::time::Duration;

use outpost_host::config::Config;
use outpost_host::services::ServiceName;
use outpost_proto::host::v1 as pb;
use outpost_proto::host::v1::host_client::HostClient;

use super::{Outcome, Status, sntp};

/// The device file is valid.
pub fn config(path: &Path) -> Result<Config, String> {
    let config: Config = outpost_daemon::load_config(path).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(config)
}

/// The services' files are what the device file says.
pub fn applied(config: &Config, path: &Path) -> Outcome {
    let logger = outpost_host::program_dir(config).join("outpost-logger");
    let stale: Vec<String> = ServiceName::ALL
        .into_iter()
        .filter(|service| {
            let expected = outpost_host::render::render(config, path, *service, &logger);
            std::fs::read_to_string(service.config_path(&config.paths)).ok().as_deref() != Some(expected.as_str())
        })
        .map(|s| s.to_string())
        .collect();
    if stale.is_empty() {
        Ok((Status::Ok, format!("every service's file matches {}", path.display())))
    } else {
        Ok((Status::Warning, format!("out of date for {}: run `outpost config apply`", stale.join(", "))))
    }
}

/// outpostd answers and every service runs.
pub async fn services(socket: &Path) -> Outcome {
    let channel = outpost_rpc::connect(socket).await.map_err(|e| format!("{e}; is outpostd running?"))?;
    let services = HostClient::new(channel)
        .list_services(pb::ListServicesRequest {})
        .await
        .map_err(|e| format!("outpostd: {}", e.message()))?
        .into_inner()
        .services;
    let down: Vec<String> = services
        .iter()
        .filter(|s| s.state() != pb::ServiceState::Running)
        .map(|s| format!("{} ({})", s.name, s.description))
        .collect();
    if down.is_empty() {
        Ok((
            Status::Ok,
            format!("outpostd runs {}", services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")),
        ))
    } else {
        Err(format!("not running: {}; see `outpost system status`", down.join("; ")))
    }
}

/// Each of the hub's listeners can be bound, or is bound by the hub itself.
pub async fn hub_ports(config: &Config) -> Outcome {
    let hub_serving =
        outpost_rpc::health::check(&ServiceName::Hub.socket(&config.paths), Duration::from_secs(3)).await.is_ok();
    let mut held = Vec::new();
    for (name, bind) in
        [("MQTT", &config.hub.mqtt_bind), ("MQTT/TLS", &config.hub.mqtts_bind), ("HTTPS", &config.hub.https_bind)]
    {
        let addr: SocketAddr = bind.parse().map_err(|_| format!("{name} listener {bind:?} is not an address"))?;
        match TcpListener::bind(addr) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && hub_serving => held.push(format!("{name} {bind}")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(format!("{name} port {bind} is in use by another program, and outpost-hub is not running"));
            }
            Err(e) => return Err(format!("cannot bind {name} {bind}: {e}")),
        }
    }
    if held.is_empty() {
        Ok((Status::Ok, "MQTT, MQTT/TLS and HTTPS ports are free for outpost-hub".into()))
    } else {
        Ok((Status::Ok, format!("outpost-hub holds {}", held.join(", "))))
    }
}

/// The broker answers, and accepts the device's token.
pub async fn cloud(config: &Config) -> Outcome {
    if config.cloud.url.is_empty() {
        return Ok((Status::Warning, "no [cloud] url: the device runs without a control plane".into()));
    }
    let authority = config.cloud.url.split_once("://").map_or("", |(_, rest)| rest.trim_end_matches('/'));
    let default_port = if config.cloud.url.starts_with("amqps") { 5671 } else { 5672 };
    let target = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:{default_port}") };
    let addresses: Vec<SocketAddr> =
        target.to_socket_addrs().map_err(|e| format!("cannot resolve {target}: {e}"))?.collect();
    let address = addresses.first().ok_or_else(|| format!("{target} resolves to no address"))?;
    tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(address))
        .await
        .map_err(|_| format!("no answer from {target} within 5 s"))?
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let mut link = outpost_upstream::LinkConfig::new(
        &config.cloud.url,
        &config.cloud.vhost,
        config.device.id.as_str(),
        outpost_core::topology::Component::Agent,
    );
    if !config.cloud.ca_file.is_empty() {
        link.ca_pem =
            Some(std::fs::read_to_string(&config.cloud.ca_file).map_err(|e| format!("{}: {e}", config.cloud.ca_file))?);
    }
    let tokens = outpost_upstream::IdentitydTokens::new(&ServiceName::Identityd.socket(&config.paths));
    outpost_upstream::probe(&link, &tokens).await.map_err(|e| {
        let chain = std::iter::successors(std::error::Error::source(&e), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        format!(
            "{e}{}; is the device registered with this key, and the clock right?",
            chain.iter().map(|c| format!(": {c}")).collect::<String>()
        )
    })?;
    Ok((Status::Ok, format!("{target} reached; device {} signed in", config.device.id)))
}

/// The clock against an NTP server: tokens carry expiry times, so a skewed clock is refused.
pub async fn clock(server: &str) -> Outcome {
    let socket =
        tokio::net::UdpSocket::bind("0.0.0.0:0").await.map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    let exchange = async {
        socket.connect(server).await?;
        socket.send(&sntp::request()).await?;
        let mut answer = [0u8; 128];
        let n = socket.recv(&mut answer).await?;
        Ok::<_, std::io::Error>(answer[..n].to_vec())
    };
    let sent = std::time::SystemTime::now();
    let answer = match tokio::time::timeout(Duration::from_secs(3), exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Ok((Status::Warning, format!("cannot ask {server} the time ({e}); offline?"))),
        Err(_) => return Ok((Status::Warning, format!("no answer from {server} within 3 s; offline?"))),
    };
    let received = std::time::SystemTime::now();
    let theirs = sntp::transmit_time(&answer).ok_or_else(|| format!("{server} sent no usable time"))?;
    let ours = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let skew = (ours(sent) + ours(received)) / 2.0 - theirs;
    let detail = format!("{:+.1} s from {server}", skew);
    match skew.abs() {
        s if s > 60.0 => {
            Err(format!("{detail}: tokens will be refused as expired or not yet valid; fix the clock (NTP)"))
        }
        s if s > 5.0 => Ok((Status::Warning, detail)),
        _ => Ok((Status::Ok, detail)),
    }
}

/// Services' logs are rotated and modules' logs are set to be.
pub fn log_rotation(config: &Config, module_max_bytes: u64, module_files: u32) -> Outcome {
    let limit = 2 * (10 << 20);
    let large: Vec<String> = ServiceName::ALL
        .into_iter()
        .filter_map(|s| {
            let path = s.log_path(&config.paths);
            let len = std::fs::metadata(&path).map(|m| m.len()).ok()?;
            (len > limit).then(|| format!("{} ({} MiB)", path.display(), len >> 20))
        })
        .collect();
    if !large.is_empty() {
        return Ok((Status::Warning, format!("not rotated: {}", large.join(", "))));
    }
    if module_max_bytes == 0 || module_files < 2 {
        return Ok((Status::Warning, "modules' logs are not rotated ([services.agent.logs])".into()));
    }
    Ok((
        Status::Ok,
        format!("services' logs rotate at 10 MiB × 3; modules' at {} MiB × {module_files}", module_max_bytes >> 20),
    ))
}
