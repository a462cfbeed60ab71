//! `cargo xtask e2e`: the whole system as a fleet under docker-compose (`deploy/compose/`):
//! RabbitMQ, outpost-cloud and two devices, each device a container running its own
//! containerd and outpostd. The images are built here from this machine's files and the
//! workspace's binaries (no registry). The scenarios run in order — each leaves the fleet
//! as the next expects — and the fleet is removed at the end unless `--keep`.

pub mod fleet;
pub mod images;
mod rootfs;
pub mod scenarios;
mod telemetry;

use std::time::Duration;

use anyhow::Context as _;

use crate::util::{cargo, sh, target_dir};
use fleet::{Fleet, step};

/// Flags of `cargo xtask e2e`.
#[derive(Debug, Clone, clap::Args)]
pub struct E2eArgs {
    /// Leave the fleet running afterwards, passed or failed (remove it with
    /// `cargo xtask e2e --down`).
    #[arg(long)]
    pub keep: bool,
    /// Only remove a fleet left running.
    #[arg(long)]
    pub down: bool,
    /// How long a device stays cut off from the network, in seconds.
    #[arg(long, default_value_t = 120)]
    pub offline_secs: u64,
    /// Use the images already built (skip building binaries and images).
    #[arg(long)]
    pub no_build: bool,
}

/// A free TCP port on loopback.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Builds the binaries (debug) and the fleet's images from them.
pub fn build(bin: &std::path::Path, work: &std::path::Path) -> anyhow::Result<()> {
    step("building the binaries (debug)");
    let packages = [
        "outpost-identity",
        "outpost-agent",
        "outpost-hub",
        "outpost-watchdog",
        "outpost-host",
        "outpost-cli",
        "outpost-cloud",
        "outpost-samples",
    ];
    let mut command = cargo();
    command.args(["build", "--quiet", "--bins"]);
    for package in packages {
        command.args(["-p", package]);
    }
    sh(&mut command)?;
    step("building the images: device, cloud, rabbitmq");
    let started = std::time::Instant::now();
    images::device(bin, work)?;
    images::cloud(bin, work)?;
    images::rabbitmq(work)?;
    eprintln!("images built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs the end-to-end test.
pub fn run(args: &E2eArgs) -> anyhow::Result<()> {
    let work = target_dir().join("e2e");
    let bin = target_dir().join("debug");
    let fleet =
        Fleet { project: "outpost-e2e", dir: work.join("run"), api_port: free_port()?, outpost: bin.join("outpost") };
    // Whatever a previous run left goes first.
    let _ = fleet.compose().args(["down", "--volumes", "--remove-orphans", "--timeout", "5"]).status();
    if args.down {
        return Ok(());
    }
    if !args.no_build {
        build(&bin, &work)?;
    }
    if fleet.dir.exists() {
        std::fs::remove_dir_all(&fleet.dir).with_context(|| format!("cannot empty {}", fleet.dir.display()))?;
    }
    std::fs::create_dir_all(fleet.dir.join("cloud"))?;
    let result = scenarios::run(&fleet, Duration::from_secs(args.offline_secs));
    if let Err(e) = &result {
        eprintln!("\nend-to-end test failed: {e:#}\n\n--- the fleet's last output ---\n{}", fleet.logs());
    }
    if args.keep {
        eprintln!(
            "\nthe fleet keeps running: docker-compose -p {} -f deploy/compose/docker-compose.yml ps; \
             `cargo xtask e2e --down` removes it",
            fleet.project
        );
    } else {
        step("removing the fleet");
        let _ = fleet.compose().args(["down", "--volumes", "--remove-orphans", "--timeout", "30"]).status();
    }
    result
}
