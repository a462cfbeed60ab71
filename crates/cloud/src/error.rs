//! What can go wrong in the control plane's operations, and how each failure reaches an
//! operator as a gRPC status: caller mistakes carry their detail, internal failures are
//! logged in full and go out as "internal error".

use crate::registry::CredentialsError;
use crate::store::StoreError;
use crate::twin::PatchError;

/// A failed operation.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// An id breaks IoT Hub's rules.
    #[error(transparent)]
    Id(#[from] outpost_core::IdError),
    /// No such device or twin.
    #[error("{what} {id:?} does not exist")]
    NotFound {
        /// `device`, `twin`.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A device of this id is registered already.
    #[error("device {0:?} exists already")]
    AlreadyExists(String),
    /// A deployment of this id exists.
    #[error("deployment {0:?} exists already")]
    DeploymentExists(String),
    /// A deployment is refused.
    #[error(transparent)]
    Deployment(#[from] crate::deployments::DeploymentError),
    /// The caller's etag is not the current one.
    #[error("{what} {id:?} has changed: its etag is {current}, not {given}")]
    EtagMismatch {
        /// `device`, `twin`.
        what: &'static str,
        /// Its id.
        id: String,
        /// The etag the caller had.
        given: String,
        /// The current etag.
        current: String,
    },
    /// Credentials given are unusable.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// A twin patch is refused.
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// A request field is missing or out of range.
    #[error("{field}: {problem}")]
    Field {
        /// The request field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CloudError> for tonic::Status {
    fn from(error: CloudError) -> Self {
        let message = error.to_string();
        match error {
            CloudError::Id(_)
            | CloudError::Credentials(CredentialsError::Key { .. })
            | CloudError::Credentials(CredentialsError::Thumbprint { .. })
            | CloudError::Patch(_)
            | CloudError::Field { .. }
            | CloudError::Deployment(_) => tonic::Status::invalid_argument(message),
            CloudError::NotFound { .. } => tonic::Status::not_found(message),
            CloudError::AlreadyExists(_) | CloudError::DeploymentExists(_) => tonic::Status::already_exists(message),
            CloudError::EtagMismatch { .. } => tonic::Status::failed_precondition(message),
            CloudError::Credentials(CredentialsError::Random) | CloudError::Store(_) => {
                tracing::error!(error = %message, "operation failed");
                tonic::Status::internal("internal error")
            }
        }
    }
}
