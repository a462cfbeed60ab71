//! outpost-agent: makes a device run the modules its deployment asks for and keeps them
//! running.
//!
//! This crate so far holds the agent's sans-IO core: [`restart`] (restart policies and the
//! cool-off schedule) and [`planner`] (desired deployment + observed containers → ordered
//! plan). The containerd runtime, the management API and the daemon build on them.

pub mod planner;
pub mod restart;
