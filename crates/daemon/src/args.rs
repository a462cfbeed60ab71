//! Command-line flags shared by every daemon.

use std::path::PathBuf;

/// Flags every Outpost daemon accepts; flatten into the daemon's own `clap` parser.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// The configuration file; drop-ins are read from `config.d/*.toml` beside it.
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print the complete default configuration, with comments, and exit.
    #[arg(long)]
    pub print_default_config: bool,
}
