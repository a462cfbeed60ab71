//! `outpost-agent`: loads the configuration, binds the management socket, reconciles the
//! deployment with containerd until SIGTERM/SIGINT. Modules keep running when it stops.

use std::time::Duration;

use clap::Parser;
use outpost_agent::config::{Config, DEFAULT_CONFIG};
use outpost_daemon::bootstrap::{Prepared, prepare, run_until_signal, runtime};
use outpost_daemon::{DaemonArgs, ExitCode};

/// Outpost agent: applies deployments to containers through containerd and keeps them running.
#[derive(Debug, Parser)]
#[command(version, after_help = outpost_daemon::exit::EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let (path, config): (_, Config) = match prepare(&args.daemon, DEFAULT_CONFIG, "/etc/outpost/agent.toml") {
        Prepared::Exit(code) => return code.into(),
        Prepared::Run(path, config) => (path, config),
    };
    let runtime = match runtime(1) {
        Ok(rt) => rt,
        Err(code) => return code.into(),
    };
    runtime
        .block_on(async move {
            let listener = match outpost_rpc::bind(&config.paths.socket, config.management.socket_mode) {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::IoError;
                }
            };
            tracing::info!(socket = %config.paths.socket.display(), containerd = %config.containerd.socket.display(), "ready");
            run_until_signal("outpost-agent", &path, Duration::from_secs(10), move |shutdown| {
                outpost_agent::run(config, listener, shutdown)
            })
            .await
        })
        .into()
}
