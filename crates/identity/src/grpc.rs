//! `outpost.identity.v1.Identity`: a thin adapter from gRPC to [`IdentityService`].

use std::net::IpAddr;
use std::sync::Arc;

use outpost_core::ModuleId;
use outpost_proto::identity::v1 as pb;
use tonic::{Request, Response, Status};

use crate::certs::LeafRequest;
use crate::modules::ModuleIdentity;
use crate::service::{IdentityService, ServiceError};
use crate::workload::WorkloadSockets;

/// The gRPC face of the identity service.
#[derive(Debug, Clone)]
pub struct IdentityGrpc {
    service: Arc<IdentityService>,
    sockets: Arc<WorkloadSockets>,
}

impl IdentityGrpc {
    /// An adapter over `service` that also manages the modules' workload `sockets`.
    pub fn new(service: Arc<IdentityService>, sockets: Arc<WorkloadSockets>) -> Self {
        Self { service, sockets }
    }

    fn to_pb(&self, m: &ModuleIdentity) -> pb::ModuleIdentity {
        pb::ModuleIdentity {
            module_id: m.module_id.to_string(),
            generation_id: m.generation_id.to_string(),
            managed_by: m.managed_by.clone(),
            created_at: m.created_at,
            workload_socket: self.sockets.path(&m.module_id).display().to_string(),
        }
    }

    /// Runs key-store work off the async workers: a TPM call blocks for milliseconds.
    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&IdentityService) -> Result<T, ServiceError> + Send + 'static,
    {
        let service = self.service.clone();
        tokio::task::spawn_blocking(move || f(&service))
            .await
            .map_err(|_| Status::internal("internal error"))?
            .map_err(Status::from)
    }
}

#[allow(clippy::result_large_err)]
fn module_id(field: &str, value: &str) -> Result<ModuleId, Status> {
    ModuleId::new(value).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

#[tonic::async_trait]
impl pb::identity_server::Identity for IdentityGrpc {
    async fn get_device(&self, _: Request<pb::GetDeviceRequest>) -> Result<Response<pb::DeviceIdentity>, Status> {
        let info = self.service.device();
        Ok(Response::new(pb::DeviceIdentity {
            device_id: info.device.to_string(),
            hub_hostname: info.hub.clone(),
            gateway_hostname: info.gateway.clone(),
            key_store: self.service.key_store_kind().to_owned(),
        }))
    }

    async fn create_module(
        &self,
        req: Request<pb::CreateModuleRequest>,
    ) -> Result<Response<pb::ModuleIdentity>, Status> {
        let caller = outpost_rpc::auth::caller(&req)?.principal.clone();
        let req = req.into_inner();
        let module = module_id("module_id", &req.module_id)?;
        let managed_by = if req.managed_by.is_empty() { caller } else { req.managed_by };
        let (identity, created) = self.service.create_module(&module, &managed_by)?;
        if let Err(e) = self.sockets.start(&module) {
            tracing::error!(module = %module, error = %e, "cannot serve the workload socket");
            return Err(Status::internal(format!("identity created, but its workload socket failed: {e}")));
        }
        tracing::info!(module = %module, generation = %identity.generation_id, ?created, "module identity");
        Ok(Response::new(self.to_pb(&identity)))
    }

    async fn get_module(&self, req: Request<pb::GetModuleRequest>) -> Result<Response<pb::ModuleIdentity>, Status> {
        let module = module_id("module_id", &req.into_inner().module_id)?;
        Ok(Response::new(self.to_pb(&self.service.module(&module)?)))
    }

    async fn list_modules(
        &self,
        _: Request<pb::ListModulesRequest>,
    ) -> Result<Response<pb::ListModulesResponse>, Status> {
        let modules = self.service.modules().iter().map(|m| self.to_pb(m)).collect();
        Ok(Response::new(pb::ListModulesResponse { modules }))
    }

    async fn delete_module(
        &self,
        req: Request<pb::DeleteModuleRequest>,
    ) -> Result<Response<pb::DeleteModuleResponse>, Status> {
        let module = module_id("module_id", &req.into_inner().module_id)?;
        let removed = self.service.delete_module(&module)?;
        self.sockets.stop(&module);
        tracing::info!(module = %module, generation = %removed.generation_id, "module identity deleted");
        Ok(Response::new(pb::DeleteModuleResponse {}))
    }

    async fn issue_token(
        &self,
        req: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let req = req.into_inner();
        let module = if req.module_id.is_empty() { None } else { Some(module_id("module_id", &req.module_id)?) };
        let token = self.blocking(move |s| s.issue_token(module.as_ref(), req.ttl_secs)).await?;
        Ok(Response::new(pb::IssueTokenResponse { token: token.to_string(), expiry: token.expiry }))
    }

    async fn verify_token(
        &self,
        req: Request<pb::VerifyTokenRequest>,
    ) -> Result<Response<pb::VerifyTokenResponse>, Status> {
        let token = req.into_inner().token;
        let verified = self.blocking(move |s| s.verify_token(&token).map_err(ServiceError::from)).await?;
        let (module_id, generation_id) = match verified.module {
            Some((m, g)) => (m.to_string(), g.to_string()),
            None => (String::new(), String::new()),
        };
        Ok(Response::new(pb::VerifyTokenResponse {
            device_id: verified.device.to_string(),
            module_id,
            generation_id,
            expiry: verified.expiry,
        }))
    }

    async fn issue_server_certificate(
        &self,
        req: Request<pb::IssueServerCertificateRequest>,
    ) -> Result<Response<pb::CertificateResponse>, Status> {
        let req = req.into_inner();
        let ip_addresses = req
            .ip_addresses
            .iter()
            .map(|ip| {
                ip.parse::<IpAddr>()
                    .map_err(|_| Status::invalid_argument(format!("ip_addresses: {ip:?} is not an IP address")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let request = LeafRequest::Server { common_name: req.common_name, dns_names: req.dns_names, ip_addresses };
        let issued = self.blocking(move |s| s.issue_server_certificate(&request, req.validity_days)).await?;
        Ok(Response::new(pb::CertificateResponse {
            certificate_chain_pem: issued.chain_pem,
            private_key_pem: issued.key_pem,
            not_after: issued.not_after,
        }))
    }

    async fn get_trust_bundle(
        &self,
        _: Request<pb::GetTrustBundleRequest>,
    ) -> Result<Response<pb::TrustBundle>, Status> {
        Ok(Response::new(pb::TrustBundle { certificate_pem: self.service.trust_bundle() }))
    }
}
