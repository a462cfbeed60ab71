//! `outpost cloud …`: fleet commands against outpost-cloud's operator API (gRPC over TLS with
//! a bearer token). The endpoint, token and CA come from flags, then `OUTPOST_CLOUD_*`
//! variables, then the CLI's config file (`~/.config/outpost/cloud.toml`).

mod connection;
mod deployments;
mod devices;
mod twins;

use std::process::ExitCode;

pub use connection::CloudArgs;

use crate::output::Format;

/// `outpost cloud …`.
#[derive(Debug, clap::Args)]
pub struct CloudCommand {
    #[command(flatten)]
    connection: CloudArgs,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// The device registry.
    #[command(subcommand)]
    Device(devices::DeviceCommand),
    /// Device and module twins.
    #[command(subcommand)]
    Twin(twins::TwinCommand),
    /// Automatic deployments: modules for every device a condition selects.
    #[command(subcommand)]
    Deployment(deployments::DeploymentCommand),
}

/// Runs `command`.
pub async fn run(command: CloudCommand, format: Format) -> anyhow::Result<ExitCode> {
    let client = command.connection.connect().await?;
    match command.command {
        Sub::Device(cmd) => devices::run(cmd, &client, format).await,
        Sub::Twin(cmd) => twins::run(cmd, &client, format).await,
        Sub::Deployment(cmd) => deployments::run(cmd, &client, format).await,
    }
}
