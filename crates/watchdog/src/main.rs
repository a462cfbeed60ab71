//! `outpost-watchdog`: loads the configuration, binds its socket (and metrics) and watches
//! the services until SIGTERM/SIGINT.

use std::time::Duration;

use clap::Parser;
use outpost_daemon::bootstrap::{Prepared, prepare, run_until_signal, runtime};
use outpost_daemon::{DaemonArgs, ExitCode};
use outpost_watchdog::config::{Config, DEFAULT_CONFIG};

/// Outpost watchdog: health-checks the device's services and asks outpostd to restart, then
/// recreate, those that fail.
#[derive(Debug, Parser)]
#[command(version, after_help = outpost_daemon::exit::EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let (path, config): (_, Config) = match prepare(&args.daemon, DEFAULT_CONFIG, "/etc/outpost/watchdog.toml") {
        Prepared::Exit(code) => return code.into(),
        Prepared::Run(path, config) => (path, config),
    };
    if let Err(e) = config.validate() {
        tracing::error!("invalid configuration {}: {e}", path.display());
        return ExitCode::Config.into();
    }
    let runtime = match runtime(1) {
        Ok(rt) => rt,
        Err(code) => return code.into(),
    };
    runtime
        .block_on(async move {
            let listener = match outpost_rpc::bind(&config.paths.socket, 0o660) {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::IoError;
                }
            };
            let metrics = if config.metrics.bind.is_empty() {
                None
            } else {
                match tokio::net::TcpListener::bind(&config.metrics.bind).await {
                    Ok(listener) => Some(listener),
                    Err(e) => {
                        tracing::error!("cannot listen on metrics.bind {}: {e}", config.metrics.bind);
                        return ExitCode::IoError;
                    }
                }
            };
            let services: Vec<&str> = config.service.iter().map(|s| s.name.as_str()).collect();
            tracing::info!(socket = %config.paths.socket.display(), ?services, "ready");
            run_until_signal("outpost-watchdog", &path, Duration::from_secs(5), move |shutdown| {
                outpost_watchdog::run(config, listener, metrics, shutdown)
            })
            .await
        })
        .into()
}
