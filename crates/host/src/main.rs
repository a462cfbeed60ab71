//! `outpostd`: reads the device configuration, writes the services' files, binds the host
//! socket and runs the device's services until SIGTERM/SIGINT.

use std::time::Duration;

use clap::Parser;
use outpost_daemon::bootstrap::{Prepared, prepare, run_until_signal, runtime};
use outpost_daemon::{DaemonArgs, ExitCode};
use outpost_host::config::{Config, DEFAULT_CONFIG, DEFAULT_PATH, Mode};

/// Outpost host daemon: runs the device's services (identityd, agent, hub, watchdog) as
/// containers or processes, restarts them, and replaces them with rollback.
#[derive(Debug, Parser)]
#[command(version, after_help = outpost_daemon::exit::EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Run the services as containers or child processes, whatever the configuration says.
    #[arg(long, value_parser = ["container", "process"])]
    mode: Option<String>,
    /// Check the configuration, write the services' files, and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let (path, mut config): (_, Config) = match prepare(&args.daemon, DEFAULT_CONFIG, DEFAULT_PATH) {
        Prepared::Exit(code) => return code.into(),
        Prepared::Run(path, config) => (path, config),
    };
    match args.mode.as_deref() {
        Some("process") => config.runtime.mode = Mode::Process,
        Some("container") => config.runtime.mode = Mode::Container,
        _ => {}
    }
    if let Err(e) = config.validate() {
        tracing::error!("invalid configuration {}: {e}", path.display());
        return ExitCode::Config.into();
    }
    if let Err(e) = outpost_host::prepare_dirs(&config) {
        tracing::error!("{e}");
        return ExitCode::IoError.into();
    }
    match outpost_host::write_configs(&config, &path) {
        Ok(changed) => tracing::debug!(?changed, "services' configuration written"),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::IoError.into();
        }
    }
    if args.check {
        println!(
            "{} is valid; services' files are in {}",
            path.display(),
            config.paths.host_dir().join("config").display()
        );
        return ExitCode::Ok.into();
    }
    let runtime = match runtime(2) {
        Ok(rt) => rt,
        Err(code) => return code.into(),
    };
    runtime
        .block_on(async move {
            let socket = config.paths.host_socket();
            let listener = match outpost_rpc::bind(&socket, 0o660) {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::IoError;
                }
            };
            tracing::info!(socket = %socket.display(), device = %config.device.id, mode = config.runtime.mode.as_str(), "ready");
            // Services get their own grace period each; the whole stop may take the modules'
            // grace plus every service's.
            let grace = Duration::from_secs(
                u64::from(config.runtime.module_stop_grace_secs) + 4 * u64::from(config.runtime.stop_grace_secs) + 10,
            );
            let source = path.clone();
            run_until_signal("outpostd", &path, grace, move |shutdown| {
                outpost_host::run(config, source, listener, shutdown)
            })
            .await
        })
        .into()
}
