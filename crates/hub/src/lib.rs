//! outpost-hub: the device's message hub — an MQTT 3.1.1 and 5.0 broker that speaks IoT
//! Hub's dialect, routes messages between modules and upstream, and keeps every message it
//! acknowledged until it is delivered.
//!
//! - [`mqtt`]: the sans-IO protocol layer: a strict packet codec for both protocol versions
//!   and topic names and filters;
//! - [`broker`]: the broker's state machine (sessions, subscriptions, retained messages,
//!   wills, QoS flows), also without I/O.

pub mod broker;
pub mod mqtt;
