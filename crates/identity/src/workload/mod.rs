//! The Azure IoT Edge-compatible workload API: HTTP/1.1 on one Unix socket per module.
//!
//! [`api`] is the sans-IO part (request in, status and JSON out); [`sockets`] binds one
//! socket per module identity and moves bytes with hyper.

pub mod api;
pub mod sockets;

pub use sockets::WorkloadSockets;
