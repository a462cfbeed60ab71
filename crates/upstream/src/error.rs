//! What can go wrong publishing ([`PublishError`]) and connecting ([`ConnectError`]).

use lapin::ErrorKind;
use lapin::protocol::AMQPSoftError;

use crate::message::InvalidMessage;
use crate::token::TokenError;

/// Why a message was not confirmed by the broker. Every error but [`Shutdown`] and
/// [`Invalid`] is worth retrying (see [`is_retryable`]); after [`Unconfirmed`] the broker may
/// hold the message already, so a retry can duplicate it (delivery is at least once).
///
/// [`Shutdown`]: PublishError::Shutdown
/// [`Invalid`]: PublishError::Invalid
/// [`Unconfirmed`]: PublishError::Unconfirmed
/// [`is_retryable`]: PublishError::is_retryable
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The link is shut down.
    #[error("the upstream link is shut down")]
    Shutdown,
    /// The message cannot be put on the wire.
    #[error("invalid message")]
    Invalid(#[from] InvalidMessage),
    /// The broker refused the message (`basic.nack`).
    #[error("the broker refused message {routing_key} (nack)")]
    Nacked {
        /// Its routing key.
        routing_key: String,
    },
    /// No queue is bound for the routing key: the broker returned the message.
    #[error("no queue takes routing key {routing_key}: the broker returned it ({reply_code} {reply_text})")]
    Unroutable {
        /// Its routing key.
        routing_key: String,
        /// The broker's reply code (312 NO_ROUTE).
        reply_code: u16,
        /// The broker's reply text.
        reply_text: String,
    },
    /// The connection closed before the broker confirmed the message.
    #[error("the connection closed before message {routing_key} was confirmed")]
    Unconfirmed {
        /// Its routing key.
        routing_key: String,
        /// The cause.
        #[source]
        source: lapin::Error,
    },
    /// Not sent: an earlier message of the same batch lost the connection.
    #[error("message {routing_key} was not sent: the connection closed earlier in its batch")]
    NotSent {
        /// Its routing key.
        routing_key: String,
    },
}

impl PublishError {
    /// Whether publishing the same message again may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Shutdown | Self::Invalid(_))
    }
}

/// Why a connection attempt failed or a connection was lost (in
/// [`LinkState::Connecting`](crate::LinkState::Connecting)).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The token source failed.
    #[error("cannot get a token for device {device}")]
    Token {
        /// The device.
        device: String,
        /// The cause.
        #[source]
        source: TokenError,
    },
    /// The broker refused the device's sign-in (unknown or disabled device, bad or expired
    /// token).
    #[error("the broker refused the sign-in of device {device}")]
    SignIn {
        /// The device.
        device: String,
        /// The broker's answer.
        #[source]
        source: lapin::Error,
    },
    /// The broker could not be reached, or the connection failed before sign-in.
    #[error("cannot connect to {url}")]
    Connect {
        /// The broker.
        url: String,
        /// The cause.
        #[source]
        source: lapin::Error,
    },
    /// The broker did not complete the sign-in and channel setup in time.
    #[error("no answer from {url} within {} s", timeout.as_secs())]
    TimedOut {
        /// The broker.
        url: String,
        /// How long the link waited.
        timeout: std::time::Duration,
    },
    /// A channel could not be set up.
    #[error("cannot {step} on {url}")]
    Channel {
        /// What was being done.
        step: &'static str,
        /// The broker.
        url: String,
        /// The cause.
        #[source]
        source: lapin::Error,
    },
    /// The device's queue cannot be consumed (not declared yet, or not the device's).
    #[error("cannot consume queue {queue}")]
    Consume {
        /// The queue.
        queue: String,
        /// The cause.
        #[source]
        source: lapin::Error,
    },
    /// An established connection failed.
    #[error("lost the connection to {url}")]
    Lost {
        /// The broker.
        url: String,
        /// The cause, when one was reported (a cancelled consumer has none).
        #[source]
        source: Option<lapin::Error>,
    },
}

impl ConnectError {
    /// Whether the broker refused the device's credentials.
    pub fn is_sign_in_refused(&self) -> bool {
        matches!(self, Self::SignIn { .. })
    }
}

/// Whether `error` is the broker refusing a sign-in (`ACCESS_REFUSED` during the handshake).
pub(crate) fn refuses_sign_in(error: &lapin::Error) -> bool {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => amqp.get_id() == AMQPSoftError::ACCESSREFUSED.get_id(),
        _ => false,
    }
}
