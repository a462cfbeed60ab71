//! outpost-identityd: the device's identity and security service.
//!
//! It holds the device key and a master key in a [`keys::KeyStore`] (files or a TPM 2.0),
//! keeps module identities with their generation ids, issues and verifies SAS tokens in
//! IoT Hub's format, runs a device CA that issues the hub's server certificate, and serves
//! Azure IoT Edge's workload API to every module on its own Unix socket.
//!
//! [`open`] builds the service from configuration; [`run`] serves it until shutdown.

pub mod certs;
pub mod clock;
pub mod config;
pub mod error;
pub mod grpc;
pub mod keys;
pub mod modules;
pub mod service;
pub mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use outpost_proto::identity::v1::identity_server::IdentityServer;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::certs::{CertError, DeviceCa};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigProblem, KeyStoreKind};
use crate::keys::{KeyError, KeyInit, KeyStore};
use crate::modules::{Registry, RegistryError};
use crate::service::{DeviceInfo, IdentityService};
use crate::workload::WorkloadSockets;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigProblem),
    /// The device key in the configuration cannot be used.
    #[error("device key from {source_name} is unusable: {reason}")]
    DeviceKey {
        /// `device.key` or the key file's path.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// The key store cannot be opened.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The identity registry cannot be loaded.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The device CA cannot be loaded or created.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// A socket cannot be served.
    #[error(transparent)]
    Socket(#[from] outpost_rpc::RpcError),
}

impl outpost_daemon::bootstrap::ExitCodeOf for StartError {
    fn exit_code(&self) -> outpost_daemon::ExitCode {
        match self {
            Self::Config(_) | Self::DeviceKey { .. } => outpost_daemon::ExitCode::Config,
            _ => outpost_daemon::ExitCode::IoError,
        }
    }
}

fn device_key(config: &Config) -> Result<KeyInit, StartError> {
    let (source_name, text) = match (&config.device.key, &config.device.key_file) {
        (Some(key), _) => ("device.key".to_owned(), key.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| StartError::DeviceKey {
                source_name: path.display().to_string(),
                reason: e.to_string(),
            })?;
            (path.display().to_string(), text)
        }
        (None, None) => return Ok(KeyInit::Generate),
    };
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| StartError::DeviceKey { source_name: source_name.clone(), reason: format!("not base64 ({e})") })?;
    if bytes.len() < 16 {
        return Err(StartError::DeviceKey {
            source_name,
            reason: format!("{} bytes; at least 16 are needed", bytes.len()),
        });
    }
    Ok(KeyInit::Import(bytes))
}

/// Opens the configured key store under the state directory.
pub fn open_key_store(config: &Config) -> Result<Arc<dyn KeyStore>, StartError> {
    Ok(match config.key_store.kind {
        KeyStoreKind::File => Arc::new(keys::file::FileKeyStore::open(&config.paths.state_dir.join("keys"))?),
        KeyStoreKind::Tpm => {
            Arc::new(keys::tpm::TpmKeyStore::open(&config.key_store.tcti, &config.paths.state_dir.join("tpm"))?)
        }
    })
}

/// Builds the identity service: opens keys (creating the device and master keys on first
/// start), the registry and the device CA. Refuses corrupt state, naming the file.
pub fn open(config: &Config) -> Result<IdentityService, StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.paths.state_dir)
        .map_err(|source| StartError::Key(KeyError::Io { path: config.paths.state_dir.clone(), source }))?;
    let keys = open_key_store(config)?;
    keys.ensure(keys::ids::DEVICE, device_key(config)?)?;
    keys.ensure(keys::ids::MASTER, KeyInit::Generate)?;
    let registry = Registry::open(&config.paths.state_dir.join("identities.json"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ca = DeviceCa::open(
        &config.paths.state_dir.join("certs"),
        config.device.id.as_str(),
        &config.certificates,
        clock.now_secs() as i64,
    )?;
    let info = DeviceInfo {
        device: config.device.id.clone(),
        hub: config.device.hub_hostname.clone(),
        gateway: config.device.gateway_hostname.clone(),
    };
    Ok(IdentityService::new(info, keys, registry, ca, config.tokens.clone(), config.certificates.clone(), clock))
}

/// Serves the management API on `listener` and a workload socket per module until
/// `shutdown` is cancelled, then drains.
pub async fn run(
    config: &Config,
    service: IdentityService,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let service = Arc::new(service);
    let tracker = TaskTracker::new();
    let sockets = Arc::new(WorkloadSockets::new(
        &config.paths.workload_dir,
        config.workload.socket_mode,
        config.workload.max_concurrent_requests,
        service.clone(),
        shutdown.child_token(),
        tracker.clone(),
    ));
    for identity in service.modules() {
        sockets.start(&identity.module_id)?;
    }
    tracker.spawn(renew_ca(
        service.clone(),
        Duration::from_secs(config.certificates.renew_check_interval_secs.max(1)),
        shutdown.child_token(),
    ));

    let (health, health_service) = outpost_rpc::health::service();
    health.set_serving::<IdentityServer<grpc::IdentityGrpc>>().await;
    let routes = tonic::service::Routes::new(health_service)
        .add_service(IdentityServer::new(grpc::IdentityGrpc::new(service.clone(), sockets.clone())));
    let policy = outpost_rpc::Policy::for_current_user(config.principal.clone());
    let socket: PathBuf = config.paths.socket.clone();
    let result = outpost_rpc::serve::serve(&socket, listener, routes, policy, shutdown.clone()).await;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    for identity in service.modules() {
        let _ = std::fs::remove_file(sockets.path(&identity.module_id));
    }
    let _ = std::fs::remove_file(&socket);
    result.map_err(StartError::from)
}

async fn renew_ca(service: Arc<IdentityService>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = SystemClock.now_secs() as i64;
        if let Err(e) = service.ca().renew_if_due(now) {
            tracing::error!(error = %e, "device CA renewal failed; will retry");
        }
    }
}

/// [`run`] taking its configuration by value, for spawning.
pub async fn run_owned(
    config: Config,
    service: IdentityService,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    run(&config, service, listener, shutdown).await
}
