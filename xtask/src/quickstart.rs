//! `cargo xtask quickstart`: the guided demo.

/// Runs the demo.
pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("quickstart is being assembled")
}
