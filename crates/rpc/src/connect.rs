//! Dialling a gRPC server on a Unix socket.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::RpcError;

/// A channel to the server on `path`. The URI inside is a placeholder: only the socket is
/// dialled. Connects eagerly so that a missing daemon is reported here.
pub async fn connect(path: &Path) -> Result<Channel, RpcError> {
    let socket: PathBuf = path.to_owned();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await
        .map_err(|source| RpcError::Connect { path: path.to_owned(), source })
}
