//! The hub's way upstream: whatever carries `$upstream` messages to the cloud implements
//! [`Uplink`]. The hub hands it batches from the upstream queue, highest priority first, and
//! forgets a batch only when [`Uplink::send`] says the other side has it; a failed batch is
//! sent again after a backoff (1 s doubling to 60 s, as edgeHub's). A device without a cloud
//! has no uplink: its upstream queue fills and expires as designed.

use crate::mqtt::Publish;

/// Why a batch did not go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UplinkError {
    /// The cloud cannot be reached or refused the batch for now.
    #[error("uplink unavailable: {0}")]
    Unavailable(String),
}

/// Carries messages upstream.
#[async_trait::async_trait]
pub trait Uplink: Send + std::fmt::Debug {
    /// Sends `batch` — each message as stored, its telemetry topic carrying the property bag
    /// with the sender (`$.cdid`, `$.cmid`) and output (`$.on`) — and returns once the other
    /// side holds every message durably.
    async fn send(&mut self, batch: &[Publish]) -> Result<(), UplinkError>;
}
