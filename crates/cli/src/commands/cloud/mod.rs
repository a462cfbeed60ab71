//! `outpost cloud …`: fleet commands against outpost-cloud's operator API (gRPC over TLS with
//! a bearer token). The endpoint, token and CA come from flags, then `OUTPOST_CLOUD_*`
//! variables, then the CLI's config file (`~/.config/outpost/cloud.toml`).

mod connection;
mod deployments;
mod devices;
mod messaging;
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
    /// Print telemetry as it arrives.
    MonitorEvents(messaging::MonitorArgs),
    /// Call a module's direct method (e.g. $edgeAgent ping) and print its answer.
    InvokeMethod(messaging::InvokeArgs),
    /// Queue a cloud-to-device message for a device.
    SendC2d(messaging::SendArgs),
}

/// Runs `command`.
pub async fn run(command: CloudCommand, format: Format) -> anyhow::Result<ExitCode> {
    let client = command.connection.connect().await?;
    match command.command {
        Sub::Device(cmd) => devices::run(cmd, &client, format).await,
        Sub::Twin(cmd) => twins::run(cmd, &client, format).await,
        Sub::Deployment(cmd) => deployments::run(cmd, &client, format).await,
        Sub::MonitorEvents(args) => messaging::monitor(args, &client, format).await,
        Sub::InvokeMethod(args) => messaging::invoke(args, &client, format).await,
        Sub::SendC2d(args) => messaging::send(args, &client, format).await,
    }
}
