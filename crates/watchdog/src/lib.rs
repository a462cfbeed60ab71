//! outpost-watchdog: checks every service's `grpc.health.v1` on its socket, one task per
//! service, every `interval`; what to do about failures is decided by [`escalation`] and
//! asked of outpostd over `outpost.host.v1` (restart, then recreate). Every check and
//! action is logged and counted ([`metrics`]). The watchdog serves `grpc.health.v1` itself,
//! so that outpostd can watch it in turn.

pub mod config;
pub mod escalation;
pub mod metrics;

use std::time::Instant;

use outpost_proto::host::v1::host_client::HostClient;
use outpost_proto::host::v1::{RestartServiceRequest, ServiceState};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Timing, Watched};
use crate::escalation::{Action, Escalation};
use crate::metrics::Figures;

/// Why the watchdog stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    /// Its socket failed.
    #[error(transparent)]
    Rpc(#[from] outpost_rpc::RpcError),
}

impl outpost_daemon::bootstrap::ExitCodeOf for WatchdogError {}

/// Asks outpostd to carry out `action` on `service`: `Ok(true)` if it did, `Ok(false)` if
/// the service was stopped on request and left alone.
async fn act(host_socket: &std::path::Path, service: &str, action: Action, reason: String) -> Result<bool, String> {
    let channel = outpost_rpc::connect(host_socket).await.map_err(|e| e.to_string())?;
    let after = HostClient::new(channel)
        .restart_service(RestartServiceRequest {
            name: service.to_owned(),
            recreate: action == Action::Recreate,
            reason,
            unless_stopped: true,
        })
        .await
        .map_err(|e| e.message().to_owned())?
        .into_inner();
    Ok(after.state() != ServiceState::Stopped)
}

/// Watches one service until `shutdown`.
async fn watch(
    watched: Watched,
    timing: Timing,
    host_socket: std::path::PathBuf,
    figures: Figures,
    shutdown: CancellationToken,
) {
    let name = watched.name.clone();
    let mut escalation = Escalation::new(timing.failures, timing.interval(), timing.max_backoff());
    let mut ticks = tokio::time::interval(timing.interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let result = outpost_rpc::health::check(&watched.socket, timing.timeout()).await;
        let healthy = result.is_ok();
        let action = escalation.observe(healthy, Instant::now());
        let consecutive = escalation.consecutive_failures();
        figures.update(&name, |f| {
            if healthy {
                f.checks_ok += 1
            } else {
                f.checks_failed += 1
            }
            f.healthy = healthy;
            f.consecutive_failures = consecutive;
        });
        if let Err(e) = &result {
            tracing::warn!(service = %name, consecutive, error = %e, "health check failed");
        }
        if let Some(action) = action {
            let reason =
                format!("watchdog: {} failed health checks ({})", timing.failures, result.err().unwrap_or_default());
            tracing::warn!(service = %name, action = action.as_str(), %reason, "asking outpostd");
            let outcome = match act(&host_socket, &name, action, reason).await {
                Ok(true) => {
                    tracing::info!(service = %name, action = action.as_str(), "done");
                    "ok"
                }
                Ok(false) => {
                    tracing::info!(service = %name, "stopped on request; left alone");
                    "skipped"
                }
                Err(e) => {
                    tracing::error!(service = %name, action = action.as_str(), error = %e, "outpostd could not do it");
                    "error"
                }
            };
            figures.update(&name, |f| *f.actions.entry((action.as_str(), outcome)).or_default() += 1);
        }
    }
}

/// Runs the watchdog until `shutdown`: its health service on `listener`, metrics on
/// `metrics` (if any), one checking task per service.
pub async fn run(
    config: Config,
    listener: UnixListener,
    metrics: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), WatchdogError> {
    let figures = Figures::default();
    let mut tasks = tokio::task::JoinSet::new();
    for watched in config.service.clone() {
        tasks.spawn(watch(
            watched,
            config.watchdog,
            config.paths.host_socket.clone(),
            figures.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(listener) = metrics {
        tasks.spawn(metrics::serve(listener, figures.clone(), shutdown.clone()));
    }
    let (_health, health_service) = outpost_rpc::health::service();
    let routes = tonic::service::Routes::new(health_service);
    let policy = outpost_rpc::Policy::for_current_user(Vec::new());
    let result = outpost_rpc::serve::serve(&config.paths.socket, listener, routes, policy, shutdown.clone()).await;
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    let _ = std::fs::remove_file(&config.paths.socket);
    Ok(result?)
}
