//! The agent's view of outpost-identityd: module identities by gRPC over its socket.

use std::path::{Path, PathBuf};

use outpost_core::{GenerationId, ModuleId};
use outpost_proto::identity::v1 as pb;
use outpost_proto::identity::v1::identity_client::IdentityClient;

/// Why an identity call failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// identityd cannot be reached.
    #[error("cannot reach outpost-identityd at {path}: {source}")]
    Unreachable {
        /// Its socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: outpost_rpc::RpcError,
    },
    /// identityd answered with an error.
    #[error("outpost-identityd refused {operation} for {module}: {}", status.message())]
    Refused {
        /// The call.
        operation: &'static str,
        /// The module.
        module: ModuleId,
        /// The status.
        #[source]
        status: tonic::Status,
    },
    /// identityd sent a generation id that is not valid.
    #[error("outpost-identityd sent an invalid generation id for {0}")]
    BadGeneration(ModuleId),
}

/// Module identities as the agent needs them (the seam to identityd; tests use an
/// in-memory implementation).
#[async_trait::async_trait]
pub trait ModuleIdentities: Send + Sync + std::fmt::Debug {
    /// The module's identity, created if needed; returns its generation id.
    async fn ensure(&self, module: &ModuleId) -> Result<GenerationId, IdentityError>;
    /// Deletes the module's identity; a missing one is fine.
    async fn remove(&self, module: &ModuleId) -> Result<(), IdentityError>;
}

/// Module identities from identityd: create-or-get, and delete.
#[derive(Debug, Clone)]
pub struct IdentityService {
    socket: PathBuf,
}

impl IdentityService {
    /// A client for identityd on `socket` (connected per call, so an identityd restart is
    /// harmless).
    pub fn new(socket: &Path) -> Self {
        Self { socket: socket.to_owned() }
    }

    async fn client(&self) -> Result<IdentityClient<tonic::transport::Channel>, IdentityError> {
        let channel = outpost_rpc::connect(&self.socket)
            .await
            .map_err(|source| IdentityError::Unreachable { path: self.socket.clone(), source })?;
        Ok(IdentityClient::new(channel))
    }
}

#[async_trait::async_trait]
impl ModuleIdentities for IdentityService {
    async fn ensure(&self, module: &ModuleId) -> Result<GenerationId, IdentityError> {
        let request = pb::CreateModuleRequest { module_id: module.to_string(), managed_by: "outpost-agent".into() };
        let identity = self
            .client()
            .await?
            .create_module(request)
            .await
            .map_err(|status| IdentityError::Refused { operation: "create", module: module.clone(), status })?
            .into_inner();
        GenerationId::new(identity.generation_id).map_err(|_| IdentityError::BadGeneration(module.clone()))
    }

    async fn remove(&self, module: &ModuleId) -> Result<(), IdentityError> {
        let request = pb::DeleteModuleRequest { module_id: module.to_string() };
        match self.client().await?.delete_module(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
            Err(status) => Err(IdentityError::Refused { operation: "delete", module: module.clone(), status }),
        }
    }
}
