//! `outpost-agent`: loads the configuration, binds the management socket, reconciles the
//! deployment with containerd until SIGTERM/SIGINT. Modules keep running when it stops.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use outpost_agent::config::{Config, DEFAULT_CONFIG};
use outpost_daemon::{DaemonArgs, ExitCode, Shutdown};

/// The default configuration file.
const DEFAULT_CONFIG_PATH: &str = "/etc/outpost/agent.toml";

/// Outpost agent: applies deployments to containers through containerd and keeps them running.
#[derive(Debug, Parser)]
#[command(version, after_help = outpost_daemon::exit::EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.daemon.print_default_config {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::Ok.into();
    }
    outpost_daemon::logging::init();
    let path = args.daemon.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let config: Config = match outpost_daemon::load_config(&path) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::Config.into();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::Failure.into();
        }
    };
    runtime.block_on(serve(path, config)).into()
}

async fn serve(path: PathBuf, config: Config) -> ExitCode {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %path.display(), "starting outpost-agent");
    let listener = match outpost_rpc::bind(&config.paths.socket, config.management.socket_mode) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::IoError;
        }
    };
    tracing::info!(socket = %config.paths.socket.display(), containerd = %config.containerd.socket.display(), "ready");
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.on_signals() {
        tracing::error!(error = %e, "cannot install signal handlers");
        return ExitCode::Failure;
    }
    let task = shutdown.spawn(outpost_agent::run(config, listener, shutdown.child()));
    let result = task.await;
    if !shutdown.drain(Duration::from_secs(10)).await {
        return ExitCode::ShutdownTimeout;
    }
    match result {
        Ok(Ok(())) => ExitCode::Ok,
        Ok(Err(e)) => {
            tracing::error!("{e}");
            match e {
                outpost_agent::StartError::Socket(_) => ExitCode::Failure,
                _ => ExitCode::IoError,
            }
        }
        Err(_) => ExitCode::Failure,
    }
}
