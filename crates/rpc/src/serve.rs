//! Running a tonic router on a Unix listener until shutdown.

use std::path::Path;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::auth::{AuthorizeLayer, Policy};
use crate::error::RpcError;

/// Serves `routes` on `listener` (bound at `path`) behind the authorisation `policy`, until
/// `shutdown` is cancelled; in-flight calls are drained before it returns.
pub async fn serve(
    path: &Path,
    listener: UnixListener,
    routes: Routes,
    policy: Policy,
    shutdown: CancellationToken,
) -> Result<(), RpcError> {
    tracing::info!(socket = %path.display(), "serving gRPC");
    tonic::transport::Server::builder()
        .layer(AuthorizeLayer::new(policy))
        .add_routes(routes)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown.cancelled_owned())
        .await
        .map_err(|source| RpcError::Serve { path: path.to_owned(), source })
}
