//! The operator API (`outpost.cloud.v1`) over TCP with TLS: thin adapters from protobuf to
//! the [`Cloud`](crate::service::Cloud) operations, behind bearer-token authentication.

mod deployments;
mod messaging;
pub mod operators;
mod registry;
mod twins;

use std::sync::Arc;

use outpost_proto::cloud::v1::deployments_server::DeploymentsServer;
use outpost_proto::cloud::v1::messaging_server::MessagingServer;
use outpost_proto::cloud::v1::registry_server::RegistryServer;
use outpost_proto::cloud::v1::twins_server::TwinsServer;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::CloudError;
use crate::service::Cloud;
pub use deployments::DeploymentsApi;
pub use messaging::MessagingApi;
pub use operators::{BearerAuth, Operators};
pub use registry::RegistryApi;
pub use twins::TwinsApi;

/// Runs a store operation off the async workers.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, tonic::Status>
where
    F: FnOnce() -> Result<T, CloudError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(tonic::Status::from),
        Err(e) => {
            tracing::error!(error = %e, "operation panicked or was cancelled");
            Err(tonic::Status::internal("internal error"))
        }
    }
}

/// Parses an optional JSON object field of a request.
pub(crate) fn json_object(field: &'static str, text: &str) -> Result<Option<Map<String, Value>>, CloudError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(other) => Err(CloudError::Field {
            field,
            problem: format!("must be a JSON object, not {}", crate::twin::type_name(&other)),
        }),
        Err(e) => Err(CloudError::Field { field, problem: format!("not JSON: {e}") }),
    }
}

/// Serves the API on `listener` (with TLS when `tls` is given) until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    cloud: Arc<Cloud>,
    operators: Arc<Operators>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    // Both of rustls' providers may be compiled in (feature unification): pick ring, as the
    // rest of Outpost does. Failing means one is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let auth = BearerAuth(operators);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .add_service(RegistryServer::with_interceptor(RegistryApi::new(cloud.clone()), auth.clone()))
        .add_service(TwinsServer::with_interceptor(TwinsApi::new(cloud.clone()), auth.clone()))
        .add_service(DeploymentsServer::with_interceptor(DeploymentsApi::new(cloud.clone()), auth.clone()))
        .add_service(MessagingServer::with_interceptor(MessagingApi::new(cloud), auth))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown.cancelled_owned(),
        )
        .await
}
