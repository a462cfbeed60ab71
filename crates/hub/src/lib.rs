//! outpost-hub: the device's message hub — an MQTT 3.1.1 and 5.0 broker that speaks IoT
//! Hub's dialect, routes messages between modules and upstream, and keeps every message it
//! acknowledged until it is delivered.
//!
//! - [`mqtt`]: the sans-IO protocol layer: a strict packet codec for both protocol versions
//!   and topic names and filters;
//! - [`broker`]: the broker's state machine (sessions, subscriptions, retained messages,
//!   wills, QoS flows), also without I/O;
//! - [`server`]: the tokio loops that move bytes between sockets and the broker.

pub mod auth;
pub mod broker;
pub mod config;
pub mod mqtt;
pub mod server;

use tokio_util::sync::CancellationToken;

/// Why the hub stopped.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A listener failed.
    #[error("MQTT listener: {0}")]
    Listener(#[from] std::io::Error),
    /// identityd could not tell the device's hub name.
    #[error("cannot get the device's identity from outpost-identityd at {path}: {reason}")]
    Identity {
        /// Its socket.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

impl outpost_daemon::bootstrap::ExitCodeOf for HubError {
    fn exit_code(&self) -> outpost_daemon::ExitCode {
        outpost_daemon::ExitCode::IoError
    }
}

/// Serves MQTT on `listener` until `shutdown`.
pub async fn run(
    config: config::Config,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), HubError> {
    let iothub = if config.identity.socket.as_os_str().is_empty() {
        None
    } else {
        let socket = config.identity.socket.clone();
        let failed = |reason: String| HubError::Identity { path: socket.clone(), reason };
        let channel = outpost_rpc::connect(&socket).await.map_err(|e| failed(e.to_string()))?;
        let device = outpost_proto::identity::v1::identity_client::IdentityClient::new(channel)
            .get_device(outpost_proto::identity::v1::GetDeviceRequest {})
            .await
            .map_err(|e| failed(e.message().to_owned()))?
            .into_inner();
        let verifier: std::sync::Arc<dyn auth::verify::TokenVerifier> =
            std::sync::Arc::new(auth::verify::IdentitydVerifier::new(socket));
        Some((device.hub_hostname, verifier))
    };
    let authenticator = std::sync::Arc::new(auth::Authenticator::new(config.auth.clone(), iothub));
    Ok(server::serve(listener, config.mqtt.limits(), authenticator, shutdown).await?)
}
