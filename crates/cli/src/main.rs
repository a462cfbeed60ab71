//! `outpost`: the operator CLI. Device commands talk gRPC over the daemons' Unix sockets;
//! `outpost cloud …` talks to the control plane over TLS.

mod commands;
mod output;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::modules::Action;
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
    /// The agent's management socket.
    #[arg(long, global = true, env = "OUTPOST_AGENT_SOCKET", default_value = "/run/outpost/agent.sock")]
    agent_socket: PathBuf,
    /// The hub's admin socket.
    #[arg(long, global = true, env = "OUTPOST_HUB_SOCKET", default_value = "/run/outpost/hub.sock")]
    hub_socket: PathBuf,
    /// outpostd's socket.
    #[arg(long, global = true, env = "OUTPOST_HOST_SOCKET", default_value = "/run/outpost/host.sock")]
    host_socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Module identities and tokens.
    #[command(subcommand)]
    Identity(commands::identity::IdentityCommand),
    /// The hub: clients, sessions, queues and counters.
    #[command(subcommand)]
    Hub(commands::hub::HubCommand),
    /// The runtime's own services, run by outpostd.
    #[command(subcommand)]
    System(commands::system::SystemCommand),
    /// The device configuration (/etc/outpost/config.toml).
    #[command(subcommand)]
    Config(commands::system::ConfigCommand),
    /// The fleet: devices, twins and deployments in outpost-cloud.
    Cloud(commands::cloud::CloudCommand),
    /// Check the device's configuration and services.
    Check(commands::check::CheckArgs),
    /// Collect checks, versions, states, the redacted configuration and every log into one
    /// archive for whoever helps with this device.
    SupportBundle(commands::support::SupportArgs),
    /// Apply a deployment manifest (Azure `modulesContent` JSON).
    Deploy {
        /// The manifest file.
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    /// How the last deployment fared (Azure's lastDesiredStatus), or its manifest.
    Deployment {
        /// Print the applied manifest JSON instead.
        #[arg(long, conflicts_with = "reported")]
        manifest: bool,
        /// Print the agent's state as Azure's `$edgeAgent` reported properties.
        #[arg(long)]
        reported: bool,
    },
    /// List modules with their status.
    List,
    /// Show one module in full: status, times, image digest.
    Show {
        /// The module.
        module: String,
    },
    /// Print a module's output (stdout and stderr), optionally following it.
    Logs(commands::logs::LogsArgs),
    /// Import an OCI layout archive (e.g. from `cargo xtask images`) into the device's runtime.
    Import {
        /// The archive.
        file: PathBuf,
        /// Name the image this way instead of by the archive's reference.
        #[arg(long)]
        name: Option<String>,
    },
    /// Pull an image now, with progress (the deployment's registry credentials apply).
    Pull {
        /// Image reference, e.g. 127.0.0.1:5000/sensor:1.
        image: String,
    },
    /// Start a stopped module.
    Start {
        /// The module.
        module: String,
    },
    /// Stop a module until it is started again or redeployed.
    Stop {
        /// The module.
        module: String,
    },
    /// Restart a module.
    Restart {
        /// The module.
        module: String,
    },
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
            Command::Hub(cmd) => commands::hub::run(cmd, &cli.hub_socket, cli.output).await,
            Command::Cloud(cmd) => commands::cloud::run(cmd, cli.output).await,
            Command::System(cmd) => commands::system::run(cmd, &cli.host_socket, cli.output).await,
            Command::Config(cmd) => commands::system::config(cmd, &cli.host_socket, cli.output).await,
            Command::Check(args) => {
                commands::check::run(args, &cli.identity_socket, &cli.agent_socket, &cli.host_socket, cli.output).await
            }
            Command::SupportBundle(args) => {
                commands::support::run(args, &cli.identity_socket, &cli.agent_socket, &cli.host_socket, cli.output)
                    .await
            }
            Command::Deploy { file } => commands::modules::deploy(&file, &cli.agent_socket, cli.output).await,
            Command::Deployment { manifest, reported } => {
                commands::modules::deployment(manifest, reported, &cli.agent_socket, cli.output).await
            }
            Command::List => commands::modules::list(&cli.agent_socket, cli.output).await,
            Command::Show { module } => commands::modules::show(module, &cli.agent_socket, cli.output).await,
            Command::Logs(args) => commands::logs::logs(args, &cli.agent_socket, cli.output).await,
            Command::Import { file, name } => {
                commands::images::import(&file, name, &cli.agent_socket, cli.output).await
            }
            Command::Pull { image } => commands::images::pull(image, &cli.agent_socket, cli.output).await,
            Command::Start { module } => {
                commands::modules::control(Action::Start, module, &cli.agent_socket, cli.output).await
            }
            Command::Stop { module } => {
                commands::modules::control(Action::Stop, module, &cli.agent_socket, cli.output).await
            }
            Command::Restart { module } => {
                commands::modules::control(Action::Restart, module, &cli.agent_socket, cli.output).await
            }
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
