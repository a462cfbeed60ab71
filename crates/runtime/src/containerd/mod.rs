//! A client for containerd's gRPC API, working in one namespace (default `outpost`).

mod containers;
mod content;
mod images;
mod metrics;
mod pull;

use std::path::{Path, PathBuf};

use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{CreateNamespaceRequest, Namespace};
use tonic::transport::Channel;

use crate::error::RuntimeError;

pub use images::ImportedImage;
pub use pull::PullProgress;

/// containerd's usual socket.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";
/// Outpost's namespace.
pub const DEFAULT_NAMESPACE: &str = "outpost";
/// The snapshotter images are unpacked with.
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

/// A connection to containerd, scoped to a namespace.
#[derive(Debug, Clone)]
pub struct Containerd {
    channel: Channel,
    socket: PathBuf,
    namespace: String,
    snapshotter: String,
}

impl Containerd {
    /// Connects to `socket` and makes sure `namespace` exists.
    pub async fn connect(socket: &Path, namespace: &str) -> Result<Self, RuntimeError> {
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|source| RuntimeError::Connect { path: socket.to_owned(), source })?;
        let client = Self {
            channel,
            socket: socket.to_owned(),
            namespace: namespace.to_owned(),
            snapshotter: DEFAULT_SNAPSHOTTER.to_owned(),
        };
        let request = CreateNamespaceRequest {
            namespace: Some(Namespace { name: namespace.to_owned(), labels: Default::default() }),
        };
        // The namespace header is needed even here: containerd publishes the creation event
        // in it.
        match NamespacesClient::new(client.channel.clone()).create(client.request(request, None)).await {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::AlreadyExists => {}
            Err(status) => return Err(RuntimeError::Containerd { operation: "create namespace", status }),
        }
        Ok(client)
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// containerd's version string.
    pub async fn version(&self) -> Result<String, RuntimeError> {
        let response =
            VersionClient::new(self.channel.clone()).version(()).await.map_err(RuntimeError::containerd("version"))?;
        Ok(response.into_inner().version)
    }

    /// A request carrying the namespace (and a lease, when given).
    fn request<T>(&self, message: T, lease: Option<&str>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        if let Ok(ns) = self.namespace.parse() {
            metadata.insert("containerd-namespace", ns);
        }
        if let Some(lease) = lease.and_then(|l| l.parse().ok()) {
            metadata.insert("containerd-lease", lease);
        }
        request
    }
}
