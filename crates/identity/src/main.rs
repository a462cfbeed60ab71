//! `outpost-identityd`: loads the configuration, opens keys and state, binds the management
//! socket and serves until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use outpost_daemon::{DaemonArgs, ExitCode, Shutdown};
use outpost_identity::config::{Config, DEFAULT_CONFIG};

/// The default configuration file.
const DEFAULT_CONFIG_PATH: &str = "/etc/outpost/identityd.toml";

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
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::Failure.into();
        }
    };
    runtime.block_on(serve(path, config)).into()
}

async fn serve(path: PathBuf, config: Config) -> ExitCode {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %path.display(), "starting outpost-identityd");
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
    tracing::info!(
        socket = %config.paths.socket.display(),
        workload_dir = %config.paths.workload_dir.display(),
        key_store = service.key_store_kind(),
        device = %config.device.id,
        "ready"
    );
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.on_signals() {
        tracing::error!(error = %e, "cannot install signal handlers");
        return ExitCode::Failure;
    }
    let task = shutdown.spawn(outpost_identity::run_owned(config, service, listener, shutdown.child()));
    let result = task.await;
    if !shutdown.drain(Duration::from_secs(10)).await {
        return ExitCode::ShutdownTimeout;
    }
    match result {
        Ok(Ok(())) => {
            tracing::info!("stopped");
            ExitCode::Ok
        }
        Ok(Err(e)) => {
            tracing::error!("{e}");
            ExitCode::Failure
        }
        Err(_) => ExitCode::Failure,
    }
}
