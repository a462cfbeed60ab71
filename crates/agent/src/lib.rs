//! outpost-agent: makes a device run the modules its deployment asks for and keeps them
//! running.
//!
//! This crate so far holds the agent's core: [`restart`] (restart policies and the cool-off
//! schedule), [`planner`] (desired deployment + observed containers → ordered plan) and
//! [`module_container`] (a module as a container spec). The reconcile loop over
//! `outpost-runtime`, the management API and the daemon build on them.

pub mod identity;
pub mod module_container;
pub mod planner;
pub mod reconcile;
pub mod restart;
