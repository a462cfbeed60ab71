//! The link's connection state, as watched through [`Upstream::state`](crate::Upstream::state).

use std::sync::Arc;

use crate::error::ConnectError;

/// Where the link stands.
#[derive(Debug, Clone)]
pub enum LinkState {
    /// Signing in, or waiting (backing off) to try again.
    Connecting {
        /// The attempt under way or next, from 1; reset once a connection has stayed up.
        attempt: u32,
        /// Why the previous attempt failed or the previous connection was lost.
        last_error: Option<Arc<ConnectError>>,
    },
    /// Signed in, publishing and consuming.
    Connected,
    /// Shut down for good.
    Stopped,
}

impl LinkState {
    /// Whether the link is connected.
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected)
    }
}
