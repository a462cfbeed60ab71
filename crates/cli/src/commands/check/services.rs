//! Checks of the services one by one: identityd's configuration, keys, socket and CA;
//! the agent's configuration, socket, containerd, module logger and disk space.

use std::path::Path;

use outpost_agent::config::Config as AgentConfig;
use outpost_identity::config::{Config as IdentityConfig, KeyStoreKind};
use outpost_runtime::containerd::Containerd;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{CheckResult, Outcome, Status, result};

pub fn check_config(path: &Path) -> Outcome {
    let config: IdentityConfig = outpost_daemon::load_config(path).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((Status::Ok, format!("{} is valid", path.display())))
}

pub fn check_keys(config: &IdentityConfig) -> Outcome {
    match config.key_store.kind {
        KeyStoreKind::File => {
            let dir = config.paths.state_dir.join("keys");
            if !dir.exists() {
                return Ok((
                    Status::Warning,
                    format!("{} does not exist yet; outpost-identityd creates it on first start", dir.display()),
                ));
            }
            outpost_identity::keys::file::FileKeyStore::open(&dir).map_err(|e| e.to_string())?;
            Ok((Status::Ok, format!("file key store {} is private and readable", dir.display())))
        }
        KeyStoreKind::Tpm => {
            outpost_identity::open_key_store(config).map_err(|e| e.to_string())?;
            Ok((Status::Ok, format!("TPM reachable through {}", config.key_store.tcti)))
        }
    }
}

pub async fn check_socket(socket: &Path, daemon: &str) -> Outcome {
    let channel = outpost_rpc::connect(socket).await.map_err(|e| format!("{e}; is {daemon} running?"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map_err(|e| format!("health check failed: {}", e.message()))?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok((Status::Ok, format!("{} answers and is serving", socket.display()))),
        other => Err(format!("{} answers but reports {other:?}", socket.display())),
    }
}

pub fn check_ca(config: &IdentityConfig) -> Outcome {
    let path = config.paths.state_dir.join("certs/ca.pem");
    let Ok(pem) = std::fs::read(&path) else {
        return Ok((Status::Warning, format!("{} does not exist yet", path.display())));
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    let cert = pem.parse_x509().map_err(|e| format!("{}: {e}", path.display()))?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let days = (cert.validity().not_after.timestamp() - now).div_euclid(86_400);
    match days {
        d if d < 0 => Err(format!("device CA {} has expired", path.display())),
        d if d < 7 => Ok((
            Status::Warning,
            format!("device CA expires in {d} days; it renews automatically at the configured threshold"),
        )),
        d => Ok((Status::Ok, format!("device CA valid for {d} more days"))),
    }
}

fn check_agent_config(path: &Path) -> Outcome {
    let _: AgentConfig = outpost_daemon::load_config(path).map_err(|e| e.to_string())?;
    Ok((Status::Ok, format!("{} is valid", path.display())))
}

async fn check_containerd(config: &AgentConfig) -> Outcome {
    let socket = &config.containerd.socket;
    let namespace = &config.containerd.namespace;
    let containerd = Containerd::connect(socket, namespace)
        .await
        .map_err(|e| format!("{e}; is containerd running? (apt-get install containerd runc)"))?;
    let version = containerd.version().await.map_err(|e| e.to_string())?;
    // Listing in the namespace proves it exists and is usable.
    let owned = containerd.list("io.outpost.owner", "outpost-agent").await.map_err(|e| e.to_string())?;
    Ok((
        Status::Ok,
        format!(
            "containerd {version} at {}; namespace {namespace} holds {} module containers",
            socket.display(),
            owned.len()
        ),
    ))
}

fn check_logger(config: &AgentConfig) -> Outcome {
    let logger = config.logs.logger();
    if logger.is_file() {
        Ok((
            Status::Ok,
            format!(
                "module logger {}; logs rotate at {} bytes × {} files",
                logger.display(),
                config.logs.max_size_bytes,
                config.logs.max_files
            ),
        ))
    } else {
        Err(format!(
            "module logger {} is missing: modules cannot start; install outpost-logger or set [logs] logger",
            logger.display()
        ))
    }
}

/// Free space under `path` (or the closest existing parent): warning under 1 GiB or 10 %,
/// error under 100 MiB.
pub fn check_disk(what: &str, path: &Path) -> Outcome {
    let existing = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    let stats = rustix::fs::statvfs(existing).map_err(|e| format!("cannot stat {}: {e}", existing.display()))?;
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    let total = stats.f_blocks.saturating_mul(stats.f_frsize).max(1);
    let mib = free / (1024 * 1024);
    let percent = free.saturating_mul(100) / total;
    let detail = format!("{mib} MiB free ({percent} %) for {what} at {}", existing.display());
    if mib < 100 {
        Err(detail)
    } else if mib < 1024 || percent < 10 {
        Ok((Status::Warning, detail))
    } else {
        Ok((Status::Ok, detail))
    }
}

pub const AGENT_CHECKS: [(&str, &str); 6] = [
    ("agent-config", "agent configuration is valid"),
    ("agent-socket", "agent answers on its socket"),
    ("containerd", "containerd is reachable and Outpost's namespace is usable"),
    ("module-logger", "the module logger is installed"),
    ("disk-images", "disk space for images"),
    ("disk-logs", "disk space for module logs"),
];

pub async fn agent_checks(path: &Path, socket: &Path, results: &mut Vec<CheckResult>) {
    let [config_check, socket_check, containerd_check, logger_check, images_check, logs_check] = AGENT_CHECKS;
    results.push(result(config_check.0, config_check.1, check_agent_config(path)));
    let agent: Option<AgentConfig> = outpost_daemon::load_config(path).ok();
    let skipped = || Ok((Status::Skipped, "agent configuration is invalid".to_owned()));
    results.push(result(socket_check.0, socket_check.1, check_socket(socket, "outpost-agent").await));
    let containerd = match &agent {
        Some(config) => check_containerd(config).await,
        None => skipped(),
    };
    results.push(result(containerd_check.0, containerd_check.1, containerd));
    results.push(result(logger_check.0, logger_check.1, agent.as_ref().map_or_else(skipped, check_logger)));
    results.push(result(images_check.0, images_check.1, check_disk("images", Path::new("/var/lib/containerd"))));
    let logs = agent.as_ref().map_or_else(skipped, |c| check_disk("module logs", &c.paths.log_dir));
    results.push(result(logs_check.0, logs_check.1, logs));
}
