//! `cargo xtask`: the project's automation. `ci` is what continuous integration runs;
//! `quickstart` is the guided demo; `bench` measures; `tidy` checks the crate graph.

#[cfg(feature = "containers")]
mod agentd;
mod bench;
#[cfg(feature = "containers")]
mod bench_agent;
#[cfg(feature = "containers")]
mod bench_cloud;
#[cfg(feature = "containers")]
mod bench_device;
mod bench_hub;
mod ci;
#[cfg(feature = "containers")]
mod cloudd;
mod daemon;
#[cfg(feature = "containers")]
mod e2e;
#[cfg(feature = "containers")]
mod images;
#[cfg(feature = "containers")]
mod quickstart;
mod tidy;
mod util;

use clap::{Parser, Subcommand};

/// Outpost project tasks.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install test dependencies, then fmt check, clippy -D warnings and the test suite.
    Ci,
    /// The whole system on this machine under docker-compose: RabbitMQ, outpost-cloud and one
    /// device running outpostd, a deployment targeted by tag, the sensor's telemetry
    /// streaming to the terminal; it keeps running until `quickstart --down`.
    Quickstart(QuickstartArgs),
    /// Run a benchmark and print its figures.
    Bench {
        #[command(subcommand)]
        which: bench::Bench,
    },
    /// Check that crates depend on each other only in the allowed direction.
    Tidy,
    /// Build Outpost's OCI images (sample modules, services) into target/images; optionally
    /// push them, or run them end to end (--smoke).
    Images(ImagesArgs),
    /// The fleet end to end under docker-compose: RabbitMQ, the cloud, two devices running
    /// outpostd (deploy/compose/).
    #[cfg(feature = "containers")]
    E2e(e2e::E2eArgs),
    /// The fleet end to end (re-runs xtask with the containers feature).
    #[cfg(not(feature = "containers"))]
    E2e {
        /// Arguments for the e2e task.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Options of `cargo xtask quickstart`.
#[derive(Debug, clap::Args)]
pub struct QuickstartArgs {
    /// Stop and remove the demo.
    #[arg(long)]
    pub down: bool,
}

/// Options of `cargo xtask images`.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Build from debug binaries (faster; for tests) instead of release ones.
    #[arg(long)]
    pub debug: bool,
    /// Push every image to this registry (`host[:port]`) as `<registry>/outpost/<name>:<version>`.
    #[arg(long)]
    pub push: Option<String>,
    /// Afterwards, run the images end to end on a private containerd, registry and broker.
    #[arg(long)]
    pub smoke: bool,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Ci => ci::run(),
        #[cfg(feature = "containers")]
        Task::Quickstart(args) => quickstart::run(&args),
        #[cfg(not(feature = "containers"))]
        Task::Quickstart(args) => {
            util::with_containers(if args.down { &["quickstart", "--down"] } else { &["quickstart"] })
        }
        Task::Bench { which } => bench::run(which),
        Task::Tidy => tidy::run(),
        #[cfg(feature = "containers")]
        Task::E2e(args) => e2e::run(&args),
        #[cfg(not(feature = "containers"))]
        Task::E2e { args } => {
            let mut all = vec!["e2e"];
            all.extend(args.iter().map(String::as_str));
            util::with_containers(&all)
        }
        #[cfg(feature = "containers")]
        Task::Images(options) => images::run(&options),
        #[cfg(not(feature = "containers"))]
        Task::Images(options) => {
            let mut args = vec!["images".to_owned()];
            args.extend(options.debug.then(|| "--debug".to_owned()));
            if let Some(registry) = options.push {
                args.extend(["--push".to_owned(), registry]);
            }
            args.extend(options.smoke.then(|| "--smoke".to_owned()));
            util::with_containers(&args.iter().map(String::as_str).collect::<Vec<_>>())
        }
    }
}
