//! `outpost-hub`: loads the configuration, binds the MQTT listener and serves until
//! SIGTERM/SIGINT.

use std::time::Duration;

use clap::Parser;
use outpost_daemon::bootstrap::{Prepared, prepare, run_until_signal, runtime};
use outpost_daemon::{DaemonArgs, ExitCode};
use outpost_hub::config::{Config, DEFAULT_CONFIG};

/// Outpost hub: the device's MQTT broker.
#[derive(Debug, Parser)]
#[command(version, after_help = outpost_daemon::exit::EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let (path, config): (_, Config) = match prepare(&args.daemon, DEFAULT_CONFIG, "/etc/outpost/hub.toml") {
        Prepared::Exit(code) => return code.into(),
        Prepared::Run(path, config) => (path, config),
    };
    let runtime = match runtime(2) {
        Ok(rt) => rt,
        Err(code) => return code.into(),
    };
    runtime
        .block_on(async move {
            let listener = match tokio::net::TcpListener::bind(config.mqtt.bind).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!(bind = %config.mqtt.bind, "cannot listen: {e}");
                    return ExitCode::IoError;
                }
            };
            tracing::info!(mqtt = %config.mqtt.bind, "ready");
            run_until_signal("outpost-hub", &path, Duration::from_secs(5), move |shutdown| {
                outpost_hub::run(config, listener, shutdown)
            })
            .await
        })
        .into()
}
