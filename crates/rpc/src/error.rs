//! Errors of the UDS transport.

use std::path::PathBuf;

/// What went wrong binding, serving or dialling a socket.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The socket's directory could not be created.
    #[error("cannot create socket directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another process is serving on the socket.
    #[error("socket {path} is in use by another process")]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// The path exists and is not a socket: refusing to replace it.
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Binding, setting the mode or moving the socket into place failed.
    #[error("cannot bind socket {path}")]
    Bind {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Dialling the socket failed.
    #[error("cannot connect to {path}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// The server stopped with an error.
    #[error("gRPC server on {path} failed")]
    Serve {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
}
