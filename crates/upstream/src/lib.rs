//! outpost-upstream: a device's link to the control plane over RabbitMQ (ADR 0012), used by
//! the agent (its `agent` queue) and the hub (its `hub` queue).
//!
//! [`Upstream::start`] signs in as the device (user = device id, password = a SAS token from a
//! [`TokenSource`], [`IdentitydTokens`] on a real device), keeps the connection up (jittered
//! exponential backoff from 0.5 s to 60 s, [`Backoff`]) and signs in again with a fresh token
//! at 80 % of its life. Its state is watched through [`Upstream::state`].
//!
//! - **Up**: [`Upstream::publish`] resolves once RabbitMQ confirms the message (persistent,
//!   mandatory, `user_id` = device, on `outpost.d2c`); [`Upstream::publish_batch`] pipelines
//!   up to `confirm_window` messages and answers per message. A nack, an unroutable message
//!   or a connection lost before the confirm is an error the caller retries.
//! - **Down**: [`Downlinks`] yields the component queue's messages (prefetch-limited, manual
//!   acknowledgements). [`Downlink::ack`] once the message is durable on the device;
//!   [`Downlink::reject`] dead-letters it through the queue's dead-letter exchange. Messages of
//!   an unknown type are rejected without reaching the consumer. Unacknowledged messages are
//!   delivered again after a reconnection: consumers must be idempotent.
//! - **Reported properties**: [`ReportedState`] keeps what the cloud confirmed of each twin
//!   and numbers the patches that go up, so the cloud applies each once.

#![forbid(unsafe_code)]

mod backoff;
mod config;
mod downlink;
mod error;
mod gauge;
mod identityd;
mod message;
mod probe;
mod reported;
mod session;
mod state;
mod supervisor;
mod token;
mod upstream;

pub use backoff::{Backoff, INITIAL_DELAY, MAX_DELAY, jitter};
pub use config::{
    ConfigError, LinkConfig, default_confirm_window, default_drain_timeout, default_prefetch, default_token_ttl_secs,
};
pub use downlink::{AckError, Downlink, Downlinks};
pub use error::{ConnectError, PublishError};
pub use identityd::IdentitydTokens;
pub use message::{CREATED_HEADER, InvalidMessage, METHOD_HEADER, MODULE_HEADER, SEQ_HEADER, STATUS_HEADER, UpMessage};
pub use probe::{ProbeError, probe};
pub use reported::{ReportedState, now_ms};
pub use state::LinkState;
pub use token::{FnTokens, MIN_REFRESH_DELAY, StaticTokens, Token, TokenError, TokenSource, refresh_delay};
pub use upstream::{Link, Upstream};
