//! `cargo xtask`: the project's automation. `ci` is what continuous integration runs;
//! `quickstart` is the guided demo; `bench` measures; `tidy` checks the crate graph.

mod bench;
#[cfg(feature = "containers")]
mod bench_agent;
mod ci;
mod daemon;
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
    /// Build, start outpost-identityd in a temporary state dir, create a module identity,
    /// print a SAS token and the workload socket, and stop.
    Quickstart,
    /// Run a benchmark and print its figures.
    Bench {
        #[command(subcommand)]
        which: bench::Bench,
    },
    /// Check that crates depend on each other only in the allowed direction.
    Tidy,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Ci => ci::run(),
        Task::Quickstart => quickstart::run(),
        Task::Bench { which } => bench::run(which),
        Task::Tidy => tidy::run(),
    }
}
