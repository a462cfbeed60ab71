//! gRPC over Unix domain sockets, the transport of every device-internal Outpost API.
//!
//! - [`listen`] binds a socket file safely (restrictive mode, stale files replaced,
//!   live sockets never stolen);
//! - [`connect`] dials one from a tonic client;
//! - [`auth`] authorises callers by their peer credentials against `[[principal]]` entries
//!   and hands the [`auth::Caller`] to handlers;
//! - [`health`] is the `grpc.health.v1` service every daemon serves;
//! - [`serve`] runs a router on a listener until shutdown.

pub mod auth;
pub mod connect;
pub mod error;
pub mod health;
pub mod listen;
pub mod serve;

pub use auth::{AuthorizeLayer, Caller, Policy, Principal};
pub use connect::connect;
pub use error::RpcError;
pub use listen::bind;
