//! `outpost-identityd`: loads the configuration, opens keys and state, binds the management
//! socket and serves until SIGTERM/SIGINT.

use std::time::Duration;

use clap::Parser;
use outpost_daemon::bootstrap::{ExitCodeOf as _, Prepared, prepare, run_until_signal, runtime};
use outpost_daemon::{DaemonArgs, ExitCode};
use outpost_identity::config::{Config, DEFAULT_CONFIG};

/// Outpost identity service: keys, module identities, SAS tokens, certificates and the
/// workload API.
#[derive(Debug, Parser)]
#[command(version, after_help = outpost_daemon::exit::EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let (path, config): (_, Config) = match prepare(&args.daemon, DEFAULT_CONFIG, "/etc/outpost/identityd.toml") {
        Prepared::Exit(code) => return code.into(),
        Prepared::Run(path, config) => (path, config),
    };
    let runtime = match runtime(2) {
        Ok(rt) => rt,
        Err(code) => return code.into(),
    };
    runtime
        .block_on(async move {
            // Opening keys and state and binding happen before serving, so that a refusal names
            // its file and exits with its own code.
            let service = match outpost_identity::open(&config) {
                Ok(service) => service,
                Err(e) => {
                    tracing::error!("{e}");
                    return e.exit_code();
                }
            };
            let listener = match outpost_rpc::bind(&config.paths.socket, config.management.socket_mode) {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::IoError;
                }
            };
            tracing::info!(socket = %config.paths.socket.display(), workload_dir = %config.paths.workload_dir.display(),
                key_store = service.key_store_kind(), device = %config.device.id, "ready");
            run_until_signal("outpost-identityd", &path, Duration::from_secs(10), move |shutdown| {
                outpost_identity::run_owned(config, service, listener, shutdown)
            })
            .await
        })
        .into()
}
