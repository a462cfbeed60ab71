//! `outpost-cloud`: loads the configuration, opens the store, binds the operator API and the
//! broker auth endpoint, and serves until SIGTERM/SIGINT.

use std::time::Duration;

use clap::Parser;
use outpost_cloud::config::{Config, DEFAULT_CONFIG};
use outpost_daemon::bootstrap::{ExitCodeOf as _, Prepared, prepare, run_until_signal, runtime};
use outpost_daemon::{DaemonArgs, ExitCode};

/// Outpost cloud: the fleet control plane (device registry, twins, broker authentication).
#[derive(Debug, Parser)]
#[command(version, after_help = outpost_daemon::exit::EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

async fn bind(what: &str, addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, ExitCode> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        tracing::error!(%addr, "cannot listen for the {what}: {e}");
        ExitCode::IoError
    })
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let (path, config): (_, Config) = match prepare(&args.daemon, DEFAULT_CONFIG, "/etc/outpost/cloud.toml") {
        Prepared::Exit(code) => return code.into(),
        Prepared::Run(path, config) => (path, config),
    };
    let runtime = match runtime(2) {
        Ok(rt) => rt,
        Err(code) => return code.into(),
    };
    runtime
        .block_on(async move {
            let opened = match outpost_cloud::open(&config) {
                Ok(opened) => opened,
                Err(e) => {
                    tracing::error!("{e}");
                    return e.exit_code();
                }
            };
            let listeners = match (
                bind("operator API", config.api.bind).await,
                bind("broker auth endpoint", config.broker_auth.bind).await,
            ) {
                (Ok(api), Ok(broker_auth)) => outpost_cloud::Listeners { api, broker_auth },
                (Err(code), _) | (_, Err(code)) => return code,
            };
            tracing::info!(api = %config.api.bind, tls = config.api.tls, broker_auth = %config.broker_auth.bind,
                state_dir = %config.cloud.state_dir.display(),
                admin_token = ?opened.admin_token_file, "ready");
            run_until_signal("outpost-cloud", &path, Duration::from_secs(10), move |shutdown| {
                outpost_cloud::run(opened, listeners, shutdown)
            })
            .await
        })
        .into()
}
