//! The common life of a daemon's `main`: `--print-default-config` or load the configuration,
//! then run the service until SIGTERM/SIGINT with a bounded drain, and turn the outcome into
//! an exit code.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::{DaemonArgs, ExitCode, Shutdown};

/// Errors that know their exit code.
pub trait ExitCodeOf: std::fmt::Display {
    /// The process exit code for this error.
    fn exit_code(&self) -> ExitCode {
        ExitCode::Failure
    }
}

/// What a daemon should do after reading its flags.
#[derive(Debug)]
pub enum Prepared<C> {
    /// Exit now with this code (the default config was printed, or the config is invalid).
    Exit(ExitCode),
    /// Run with this configuration, read from this path.
    Run(PathBuf, C),
}

/// Handles `--print-default-config`, initialises logging and loads the configuration
/// (`--config`, or `default_path`).
pub fn prepare<C: DeserializeOwned>(args: &DaemonArgs, default_config: &str, default_path: &str) -> Prepared<C> {
    if args.print_default_config {
        print!("{default_config}");
        return Prepared::Exit(ExitCode::Ok);
    }
    crate::logging::init();
    let path = args.config.clone().unwrap_or_else(|| PathBuf::from(default_path));
    match crate::load_config(&path) {
        Ok(config) => Prepared::Run(path, config),
        Err(e) => {
            tracing::error!("{e}");
            Prepared::Exit(ExitCode::Config)
        }
    }
}

/// Logs the start, runs `service` with a cancellation token that SIGTERM/SIGINT cancel, then
/// drains tracked tasks for up to `grace`.
pub async fn run_until_signal<F, E>(
    name: &str,
    config_path: &Path,
    grace: Duration,
    service: impl FnOnce(CancellationToken) -> F,
) -> ExitCode
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: ExitCodeOf + Send + 'static,
{
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %config_path.display(), "starting {name}");
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.on_signals() {
        tracing::error!(error = %e, "cannot install signal handlers");
        return ExitCode::Failure;
    }
    let result = shutdown.spawn(service(shutdown.child())).await;
    if !shutdown.drain(grace).await {
        return ExitCode::ShutdownTimeout;
    }
    match result {
        Ok(Ok(())) => {
            tracing::info!("stopped");
            ExitCode::Ok
        }
        Ok(Err(e)) => {
            tracing::error!("{e}");
            e.exit_code()
        }
        Err(_) => ExitCode::Failure,
    }
}

/// A multi-threaded tokio runtime with `workers` workers, or the reason it cannot start.
pub fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().map_err(|e| {
        tracing::error!(error = %e, "cannot start the async runtime");
        ExitCode::Failure
    })
}
