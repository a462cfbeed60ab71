//! `outpost.agent.v1.Agent`: a thin adapter from gRPC to [`Agent`].

use std::sync::Arc;

use outpost_core::ModuleId;
use outpost_proto::agent::v1 as pb;
use tonic::{Request, Response, Status};

use crate::daemon::Agent;
use crate::deployment::DeploymentError;
use crate::status::ModuleStatus;

/// The gRPC face of the agent.
#[derive(Debug, Clone)]
pub struct AgentGrpc {
    agent: Arc<Agent>,
}

impl AgentGrpc {
    /// An adapter over `agent`.
    pub fn new(agent: Arc<Agent>) -> Self {
        Self { agent }
    }

    #[allow(clippy::result_large_err)]
    fn module(&self, id: &str) -> Result<ModuleId, Status> {
        let module = ModuleId::new(id).map_err(|e| Status::invalid_argument(format!("module_id: {e}")))?;
        if !self.agent.has_module(&module) {
            return Err(Status::not_found(format!("module {module} is not in the deployment")));
        }
        Ok(module)
    }

    #[allow(clippy::result_large_err)]
    fn status_of(&self, module: &ModuleId) -> Result<Response<pb::ModuleStatus>, Status> {
        self.agent
            .statuses()
            .into_iter()
            .find(|s| &s.module == module)
            .map(|s| Response::new(to_pb(s)))
            .ok_or_else(|| Status::not_found(format!("module {module} has no status yet")))
    }
}

fn to_pb(status: ModuleStatus) -> pb::ModuleStatus {
    pb::ModuleStatus {
        module_id: status.module.to_string(),
        image: status.image,
        desired_status: match status.desired {
            Some(outpost_core::manifest::DesiredStatus::Running) => "running".into(),
            Some(outpost_core::manifest::DesiredStatus::Stopped) => "stopped".into(),
            None => String::new(),
        },
        runtime_status: status.runtime_status.into(),
        status_description: status.description,
        exit_code: status.exit_code,
        restart_count: status.restart_count,
    }
}

#[tonic::async_trait]
impl pb::agent_server::Agent for AgentGrpc {
    async fn apply_deployment(
        &self,
        req: Request<pb::ApplyDeploymentRequest>,
    ) -> Result<Response<pb::ApplyDeploymentResponse>, Status> {
        match self.agent.apply(&req.into_inner().manifest_json) {
            Ok(modules) => Ok(Response::new(pb::ApplyDeploymentResponse { modules: modules as u32 })),
            Err(DeploymentError::Invalid(e)) => Err(Status::invalid_argument(e.to_string())),
            Err(e) => {
                tracing::error!(error = %e, "cannot store the deployment");
                Err(Status::internal("internal error"))
            }
        }
    }

    async fn get_deployment(
        &self,
        _: Request<pb::GetDeploymentRequest>,
    ) -> Result<Response<pb::GetDeploymentResponse>, Status> {
        Ok(Response::new(pb::GetDeploymentResponse { manifest_json: self.agent.deployment_text() }))
    }

    async fn list_modules(
        &self,
        _: Request<pb::ListModulesRequest>,
    ) -> Result<Response<pb::ListModulesResponse>, Status> {
        let modules = self.agent.statuses().into_iter().map(to_pb).collect();
        Ok(Response::new(pb::ListModulesResponse { modules }))
    }

    async fn start_module(&self, req: Request<pb::ModuleRequest>) -> Result<Response<pb::ModuleStatus>, Status> {
        let module = self.module(&req.into_inner().module_id)?;
        self.agent.set_stopped(&module, false);
        self.agent.pass().await;
        self.status_of(&module)
    }

    async fn stop_module(&self, req: Request<pb::ModuleRequest>) -> Result<Response<pb::ModuleStatus>, Status> {
        let module = self.module(&req.into_inner().module_id)?;
        self.agent.set_stopped(&module, true);
        self.agent.pass().await;
        self.status_of(&module)
    }

    async fn restart_module(&self, req: Request<pb::ModuleRequest>) -> Result<Response<pb::ModuleStatus>, Status> {
        let module = self.module(&req.into_inner().module_id)?;
        self.agent.restart(&module).await.map_err(|e| Status::failed_precondition(e.to_string()))?;
        self.status_of(&module)
    }
}
