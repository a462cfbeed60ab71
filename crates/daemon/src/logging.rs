//! Tracing set-up for daemons: filter from `OUTPOST_LOG` (then `RUST_LOG`, default `info`),
//! text on stderr, or JSON lines when `OUTPOST_LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Calling it twice is harmless (the second is ignored).
pub fn init() {
    let filter =
        std::env::var("OUTPOST_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: under systemd, in containers and in files they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let json = std::env::var("OUTPOST_LOG_FORMAT").is_ok_and(|f| f == "json");
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
