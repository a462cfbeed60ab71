//! Outpost's domain vocabulary, shared by every service: identifiers, SAS tokens and the
//! workload API versions. Pure code: no async runtime, no protobuf, no I/O.
//!
//! [`routes`] is Azure IoT Edge's route language (edgeHub `routes`): parsing, type-checking
//! and evaluating `FROM … WHERE … INTO …` against messages.
//!
//! [`manifest`] reads and validates deployment manifests (`modulesContent`); [`deployment`]
//! decides which automatic deployments apply to a device and merges layered deployments onto
//! their base into the device's effective manifest.
//!
//! [`query`] is IoT Hub's twin query condition (a deployment's `targetCondition`): parsing
//! `tags.environment = 'prod' AND …` and deciding which device and module twins it selects.
//!
//! [`merge_patch`] applies and makes twins' JSON merge patches. [`topology`] names the control plane's exchanges, queues and routing keys on the message
//! broker.

pub mod api_version;
pub mod deployment;
pub mod ids;
pub mod manifest;
pub mod merge_patch;
pub mod query;
pub mod routes;
pub mod sas;
pub mod time;
pub mod topology;

pub use ids::{DeviceId, GenerationId, IdError, ModuleId};
pub use sas::{ParseTokenError, SasToken, TokenScope};
