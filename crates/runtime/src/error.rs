//! Errors of the runtime layer.

use std::path::PathBuf;

/// What went wrong talking to containerd or handling images.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// containerd's socket cannot be reached.
    #[error("cannot connect to containerd at {path}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// containerd refused or failed a call.
    #[error("containerd {operation} failed: {}", status.message())]
    Containerd {
        /// The call.
        operation: &'static str,
        /// containerd's status.
        #[source]
        status: tonic::Status,
    },
    /// An image archive or blob is unusable.
    #[error("image {what} is invalid: {reason}")]
    InvalidImage {
        /// Which file or blob.
        what: String,
        /// Why.
        reason: String,
    },
    /// A blob's content does not match its digest.
    #[error("blob {expected} has digest {actual}")]
    DigestMismatch {
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// An image cannot be pulled.
    #[error("cannot pull {image}: {reason}")]
    Pull {
        /// The image reference.
        image: String,
        /// Why, for people.
        reason: String,
    },
    /// The source of a blob failed while it was streamed into containerd.
    #[error("reading blob {digest} failed: {source}")]
    Source {
        /// The blob.
        digest: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A container specification cannot be run.
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// No container with that id.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// Reading or writing a local file failed.
    #[error("I/O on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// Wraps a containerd status for `operation`.
    pub fn containerd(operation: &'static str) -> impl FnOnce(tonic::Status) -> Self {
        move |status| Self::Containerd { operation, status }
    }

    /// Wraps an I/O error on `path`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_owned(), source }
    }
}

/// An error with its causes, `a: b: c`, for messages that reach people.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
