//! Outpost's sample modules and the module client they share.
//!
//! The client speaks to the hub as Azure's module SDKs do: identity from the `IOTEDGE_*`
//! environment the agent sets, SAS tokens signed by the workload API, MQTT 3.1.1 with IoT
//! Hub's client id, user name and topics, outputs (`$.on`), inputs, and twin desired
//! properties. It is deliberately small: enough for the samples, not an SDK.
//!
//! - [`env`]: the module's environment;
//! - [`workload`]: the workload API over its Unix socket (sign, trust bundle);
//! - [`message`]: messages and IoT Hub property bags;
//! - [`client`]: the MQTT session with reconnection and token renewal.

pub mod client;
pub mod env;
pub mod message;
pub mod workload;

/// Why the module client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An environment variable is missing or invalid.
    #[error("environment variable {name}: {reason}")]
    Environment {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The workload API failed.
    #[error("workload API {what}: {reason}")]
    Workload {
        /// The call.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The MQTT client refused a request (its event loop is gone).
    #[error("MQTT: {0}")]
    Mqtt(String),
}

/// Logging for the sample binaries: `RUST_LOG`-style filter from `OUTPOST_LOG` (default
/// `info`), human-readable lines on stderr (colours only on a terminal: logs are files).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OUTPOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}
