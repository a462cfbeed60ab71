//! Outpost's container runtime layer.
//!
//! - [`runtime::ContainerRuntime`]: the seam the agent uses, implemented by containerd (and,
//!   with the `fake` feature, by a recording in-memory fake for unit tests);
//! - [`oci`]: OCI image types, a builder that assembles small images from files (for sample
//!   modules and Outpost's own services, no Docker needed), and OCI layout archives;
//! - [`containerd`]: a client for containerd 1.6+ in a namespace of our own: image import
//!   (content store, image records, unpacking into snapshots) and containers with their
//!   tasks (create, start, stop with a grace period, wait, remove, list);
//! - [`registry`]: resolving and fetching images from OCI/Docker registries, which
//!   [`containerd::Containerd::pull`] streams into containerd;
//! - [`spec`]: the OCI runtime spec built from an image and a [`container::ContainerSpec`].

pub mod container;
pub mod containerd;
pub mod create_options;
pub mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod oci;
pub mod registry;
pub mod runtime;
pub mod spec;

pub use error::RuntimeError;
pub use runtime::ContainerRuntime;
