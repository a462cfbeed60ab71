//! outpost-agent: makes a device run the modules its deployment asks for and keeps them
//! running.
//!
//! - [`planner`] (desired deployment + observed containers → ordered plan) and [`restart`]
//!   (restart policies and the cool-off schedule): the sans-IO core;
//! - [`module_container`]: a module as a container (IOTEDGE_* environment, workload socket);
//! - [`reconcile`]: one pass over containerd, with images from [`pulls`] (in the background); [`daemon`]: the loop, deployment and overrides;
//! - [`grpc`]: the management API `outpost.agent.v1`; [`run`] serves it all.

pub mod cloud;
pub mod config;
pub mod daemon;
pub mod deployment;
pub mod grpc;
pub mod hub_routes;
pub mod identity;
pub mod logs;
pub mod module_container;
pub mod planner;
pub mod pulls;
pub mod reconcile;
pub mod reported;
pub mod restart;
pub mod runtime_update;
pub mod source;
pub mod status;
#[cfg(test)]
mod test_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use outpost_proto::agent::v1::agent_server::AgentServer;
use outpost_proto::identity::v1 as identity_pb;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::daemon::Agent;
use crate::deployment::{DeploymentError, DeploymentStore};
use crate::module_container::DeviceContext;
use crate::reconcile::Reconciler;

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// containerd cannot be used.
    #[error(transparent)]
    Runtime(#[from] outpost_runtime::RuntimeError),
    /// identityd cannot be reached or refused.
    #[error("cannot get the device identity from outpost-identityd at {path}: {reason}")]
    Identity {
        /// Its socket.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The stored deployment cannot be loaded.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// The module logger is missing.
    #[error("module logger {path} does not exist; install outpost-logger there or set [logs] logger")]
    Logger {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The management socket failed.
    #[error(transparent)]
    Socket(#[from] outpost_rpc::RpcError),
    /// `[cloud] ca_file` cannot be read.
    #[error("cannot read [cloud] ca_file {path}: {source}")]
    CloudCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl outpost_daemon::bootstrap::ExitCodeOf for StartError {
    fn exit_code(&self) -> outpost_daemon::ExitCode {
        match self {
            Self::Socket(_) => outpost_daemon::ExitCode::Failure,
            _ => outpost_daemon::ExitCode::IoError,
        }
    }
}

async fn device_context(config: &Config) -> Result<DeviceContext, StartError> {
    let socket = &config.paths.identity_socket;
    let failed = |reason: String| StartError::Identity { path: socket.clone(), reason };
    let channel = outpost_rpc::connect(socket).await.map_err(|e| failed(e.to_string()))?;
    let device = identity_pb::identity_client::IdentityClient::new(channel)
        .get_device(identity_pb::GetDeviceRequest {})
        .await
        .map_err(|e| failed(e.message().to_owned()))?
        .into_inner();
    Ok(DeviceContext {
        device_id: outpost_core::DeviceId::new(device.device_id).map_err(|e| failed(e.to_string()))?,
        hub_hostname: device.hub_hostname,
        gateway_hostname: device.gateway_hostname,
        workload_dir: config.paths.workload_dir.clone(),
        hosts_file: config.paths.state_dir.join("hosts"),
        api_version: outpost_core::api_version::DEFAULT_WORKLOAD_API_VERSION.to_owned(),
    })
}

/// Connects to containerd and identityd, loads the stored deployment, then reconciles and
/// serves the management API on `listener` until `shutdown`.
pub async fn run(config: Config, listener: UnixListener, shutdown: CancellationToken) -> Result<(), StartError> {
    let runtime: Arc<dyn outpost_runtime::ContainerRuntime> = Arc::new(
        outpost_runtime::containerd::Containerd::connect(&config.containerd.socket, &config.containerd.namespace)
            .await?,
    );
    let device = device_context(&config).await?;
    let device_id = device.device_id.to_string();
    let restart = config.restart.settings();
    let logs = config.logs.module_logs(&config.paths.log_dir);
    if !logs.logger.is_file() {
        return Err(StartError::Logger { path: logs.logger });
    }
    let pulls = pulls::Pulls::new(
        runtime.clone(),
        config.registry.settings(),
        restart.cool_off_unit,
        restart.max_cool_off,
        Arc::default(),
    );
    let reconciler = Reconciler::new(
        runtime,
        Arc::new(identity::IdentityService::new(&config.paths.identity_socket)),
        device,
        logs,
        restart,
        pulls,
    );
    let store = DeploymentStore::new(&config.paths.state_dir.join("deployment.json"));
    let mut agent = Agent::new(store, reconciler)?;
    if !config.paths.hub_socket.as_os_str().is_empty() {
        agent = agent.with_hub(config.paths.hub_socket.clone());
    }
    let agent = Arc::new(agent);
    let interval = Duration::from_secs(config.reconcile.interval_secs.max(1));
    let reconcile = tokio::spawn(agent.clone().run(interval, shutdown.child_token()));
    if !config.host.socket.as_os_str().is_empty() {
        tokio::spawn(runtime_update::run(
            agent.clone(),
            config.host.socket.clone(),
            agent.system_modules(),
            interval,
            shutdown.child_token(),
        ));
    }
    if !config.deployment.file.as_os_str().is_empty() {
        let watched = source::WatchedFile::new(
            config.deployment.file.clone(),
            Duration::from_secs(config.deployment.poll_secs.max(1)),
        );
        tokio::spawn(source::feed(agent.clone(), Box::new(watched), shutdown.child_token()));
    }
    let cloud = if config.cloud.url.is_empty() {
        None
    } else {
        let settings = cloud::CloudSettings {
            url: config.cloud.url.clone(),
            vhost: config.cloud.vhost.clone(),
            device_id: device_id.clone(),
            cache_file: config.paths.state_dir.join("cloud.json"),
            report_interval: Duration::from_secs(config.cloud.report_interval_secs.max(1)),
            ca_pem: if config.cloud.ca_file.as_os_str().is_empty() {
                None
            } else {
                Some(
                    std::fs::read_to_string(&config.cloud.ca_file)
                        .map_err(|source| StartError::CloudCa { path: config.cloud.ca_file.clone(), source })?,
                )
            },
        };
        let tokens = Arc::new(outpost_upstream::IdentitydTokens::new(&config.paths.identity_socket));
        Some(tokio::spawn(cloud::run(settings, agent.clone(), tokens, shutdown.child_token())))
    };

    let (health, health_service) = outpost_rpc::health::service();
    health.set_serving::<AgentServer<grpc::AgentGrpc>>().await;
    let routes = tonic::service::Routes::new(health_service).add_service(AgentServer::new(grpc::AgentGrpc::new(agent)));
    let policy = outpost_rpc::Policy::for_current_user(config.principal.clone());
    let result = outpost_rpc::serve::serve(&config.paths.socket, listener, routes, policy, shutdown.clone()).await;
    shutdown.cancel();
    let _ = reconcile.await;
    if let Some(cloud) = cloud {
        match cloud.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the cloud link could not start"),
            Err(e) => tracing::error!(error = %e, "the cloud link failed"),
            Ok(Ok(())) => {}
        }
    }
    let _ = std::fs::remove_file(&config.paths.socket);
    Ok(result?)
}
