//! Mapping of service errors to gRPC statuses: caller errors carry their detail, internal
//! ones go out as "internal error" and are logged in full.

use crate::service::ServiceError;

impl From<ServiceError> for tonic::Status {
    fn from(e: ServiceError) -> Self {
        match &e {
            ServiceError::UnknownModule(_) => tonic::Status::not_found(e.to_string()),
            ServiceError::StaleGeneration { .. } | ServiceError::DecryptFailed(_) => {
                tonic::Status::failed_precondition(e.to_string())
            }
            ServiceError::InvalidArgument(_) => tonic::Status::invalid_argument(e.to_string()),
            ServiceError::TokenRejected(_) => tonic::Status::unauthenticated(e.to_string()),
            ServiceError::Cert(crate::certs::CertError::InvalidRequest(_)) => {
                tonic::Status::invalid_argument(e.to_string())
            }
            ServiceError::Key(_) | ServiceError::Registry(_) | ServiceError::Cert(_) | ServiceError::Crypto(_) => {
                tracing::error!(error = ?e, "internal error");
                tonic::Status::internal("internal error")
            }
        }
    }
}
