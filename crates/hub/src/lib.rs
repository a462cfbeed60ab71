//! outpost-hub: the device's message hub — an MQTT 3.1.1 and 5.0 broker that speaks IoT
//! Hub's dialect, routes messages between modules and upstream, and keeps every message it
//! acknowledged until it is delivered.
//!
//! - [`mqtt`]: the sans-IO protocol layer: a strict packet codec for both protocol versions
//!   and topic names and filters;
//! - [`broker`]: the broker's state machine (sessions, subscriptions, retained messages,
//!   wills, QoS flows), also without I/O;
//! - [`server`]: the tokio loops that move bytes between sockets and the broker.

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
    Ok(server::serve(listener, config.mqtt.limits(), shutdown).await?)
}
