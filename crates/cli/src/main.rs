//! `outpost`: the operator CLI. Device commands talk gRPC over the daemons' Unix sockets.

mod commands;
mod output;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::output::Format;

/// Operate an Outpost device.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// The identity service's management socket.
    #[arg(long, global = true, env = "OUTPOST_IDENTITY_SOCKET", default_value = "/run/outpost/identity.sock")]
    identity_socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Module identities and tokens.
    #[command(subcommand)]
    Identity(commands::identity::IdentityCommand),
    /// Check the device's configuration and services.
    Check(commands::check::CheckArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Identity(cmd) => commands::identity::run(cmd, &cli.identity_socket, cli.output).await,
            Command::Check(args) => commands::check::run(args, &cli.identity_socket, cli.output).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", output::describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
