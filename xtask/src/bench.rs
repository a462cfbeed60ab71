//! `cargo xtask bench …`.

/// Which benchmark.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Sign throughput and latency of outpost-identityd.
    Identity,
}

/// Runs a benchmark.
pub fn run(_which: Bench) -> anyhow::Result<()> {
    anyhow::bail!("bench is being assembled")
}
