//! The process kit every Outpost daemon is built from:
//!
//! - [`config`]: a base TOML file plus sorted `config.d/*.toml` drop-ins, merged and
//!   deserialised with errors that name the key;
//! - [`args`]: the common `--config` / `--print-default-config` flags;
//! - [`logging`]: tracing set-up (`OUTPOST_LOG` filter, text or JSON);
//! - [`shutdown`]: SIGTERM/SIGINT → one cancellation tree, tracked tasks, bounded drain;
//! - [`exit`]: the documented exit codes;
//! - [`bootstrap`]: a daemon's `main` in three calls;
//! - [`atomic`]: crash-safe file writes;
//! - [`metrics`]: the Prometheus `/metrics` endpoint.

pub mod args;
pub mod atomic;
pub mod bootstrap;
pub mod config;
pub mod exit;
pub mod logging;
pub mod metrics;
pub mod shutdown;

pub use args::DaemonArgs;
pub use config::{ConfigError, load_config};
pub use exit::ExitCode;
pub use shutdown::Shutdown;
