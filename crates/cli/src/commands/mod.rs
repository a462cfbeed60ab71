//! One module per top-level subcommand.

pub mod check;
pub mod cloud;
pub mod hub;
pub mod identity;
pub mod images;
pub mod logs;
pub mod modules;
pub mod support;
pub mod system;
