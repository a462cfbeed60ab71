//! `outpost.agent.v1.Agent`: a thin adapter from gRPC to [`Agent`].

use std::sync::Arc;

use outpost_core::ModuleId;
use outpost_proto::agent::v1 as pb;
use tonic::{Request, Response, Status};

use crate::daemon::Agent;
use crate::deployment::DeploymentError;
use crate::pulls::PullWatch;
use crate::status::ModuleStatus;
use outpost_runtime::ContainerRuntime;
use outpost_runtime::containerd::PullProgress;

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

    async fn status_of(&self, module: &ModuleId) -> Result<Response<pb::ModuleStatus>, Status> {
        let status = self
            .agent
            .statuses()
            .into_iter()
            .find(|s| &s.module == module)
            .ok_or_else(|| Status::not_found(format!("module {module} has no status yet")))?;
        Ok(Response::new(with_usage(self.agent.runtime().as_ref(), to_pb(status)).await))
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
        last_start_time: status.start_time.map(|t| outpost_core::time::rfc3339(t as i64)).unwrap_or_default(),
        last_exit_time: status.exit_time.map(|t| outpost_core::time::rfc3339(t as i64)).unwrap_or_default(),
        image_digest: status.image_digest,
        ..Default::default()
    }
}

/// Adds the running module's resource usage to `status`.
async fn with_usage(runtime: &dyn ContainerRuntime, mut status: pb::ModuleStatus) -> pb::ModuleStatus {
    if status.runtime_status == "running"
        && let Ok(Some(stats)) = runtime.stats(&status.module_id).await
    {
        status.memory_bytes = stats.memory_bytes;
        status.memory_limit_bytes = stats.memory_limit.unwrap_or(0);
        status.cpu_seconds = stats.cpu_ns as f64 / 1e9;
        status.pids = stats.pids;
    }
    status
}

fn progress_pb(progress: &PullProgress, digest: String) -> pb::PullImageProgress {
    pb::PullImageProgress {
        layers_total: progress.layers_total as u32,
        layers_done: progress.layers_done as u32,
        bytes_total: progress.bytes_total,
        bytes_done: progress.bytes_done,
        digest,
    }
}

/// Progress messages until the pull ends: its digest, or its failure as the stream's error.
fn progress_stream(watch: PullWatch) -> ProgressStream {
    let stream = futures::stream::unfold(Some(watch), |state| async move {
        let mut watch = state?;
        loop {
            let outcome = watch.outcome.borrow_and_update().clone();
            if let Some(outcome) = outcome {
                let last = match outcome {
                    Ok(digest) => Ok(progress_pb(&watch.progress.borrow(), digest)),
                    Err(reason) => Err(Status::unavailable(reason)),
                };
                return Some((last, None));
            }
            tokio::select! {
                changed = watch.progress.changed() => if changed.is_ok() {
                    let message = progress_pb(&watch.progress.borrow_and_update(), String::new());
                    return Some((Ok(message), Some(watch)));
                },
                changed = watch.outcome.changed() => if changed.is_err() {
                    return Some((Err(Status::aborted("the pull was cancelled")), None));
                },
            }
        }
    });
    Box::pin(stream)
}

type LogStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::LogLine, Status>> + Send>>;

type ProgressStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::PullImageProgress, Status>> + Send>>;

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
        let last = self.agent.last_desired_status();
        Ok(Response::new(pb::GetDeploymentResponse {
            manifest_json: self.agent.deployment_text(),
            last_desired_status: Some(pb::LastDesiredStatus { code: last.code.into(), description: last.description }),
            reported_properties_json: self.agent.reported_properties().to_string(),
        }))
    }

    async fn list_modules(
        &self,
        _: Request<pb::ListModulesRequest>,
    ) -> Result<Response<pb::ListModulesResponse>, Status> {
        let runtime = self.agent.runtime();
        let mut modules = Vec::new();
        for status in self.agent.statuses() {
            modules.push(with_usage(runtime.as_ref(), to_pb(status)).await);
        }
        Ok(Response::new(pb::ListModulesResponse { modules }))
    }

    async fn get_module(&self, req: Request<pb::ModuleRequest>) -> Result<Response<pb::ModuleStatus>, Status> {
        let id = req.into_inner().module_id;
        let module = ModuleId::new(id).map_err(|e| Status::invalid_argument(format!("module_id: {e}")))?;
        self.status_of(&module).await
    }

    type StreamLogsStream = LogStream;

    async fn stream_logs(
        &self,
        req: Request<pb::StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let req = req.into_inner();
        let module = ModuleId::new(req.module_id).map_err(|e| Status::invalid_argument(format!("module_id: {e}")))?;
        let logs = self.agent.module_logs();
        if !self.agent.has_module(&module) && !crate::logs::current(&logs.dir, module.as_str()).exists() {
            return Err(Status::not_found(format!("module {module} is not in the deployment and has no logs")));
        }
        let query = crate::logs::reader::Query {
            tail: req.tail.map(|n| n as usize),
            since: (req.since_unix > 0).then_some(req.since_unix),
            follow: req.follow,
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::LogLine, Status>>(256);
        tokio::task::spawn_blocking(move || {
            let mut emit = |line: crate::logs::reader::Line| {
                let line = pb::LogLine { time: line.time, stream: line.stream, text: line.text };
                tx.blocking_send(Ok(line)).is_ok()
            };
            let alive = || !tx.is_closed();
            if let Err(e) = crate::logs::reader::stream(&logs.dir, module.as_str(), query, &mut emit, &alive) {
                let _ = tx.blocking_send(Err(Status::internal(format!("reading the logs of {module}: {e}"))));
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn import_image(
        &self,
        req: Request<pb::ImportImageRequest>,
    ) -> Result<Response<pb::ImportImageResponse>, Status> {
        let req = req.into_inner();
        let path = std::path::PathBuf::from(&req.path);
        if !path.is_absolute() {
            return Err(Status::invalid_argument(format!("path: {:?} is not absolute", req.path)));
        }
        let name = (!req.name.is_empty()).then_some(req.name.as_str());
        let imported = self
            .agent
            .runtime()
            .import_archive(&path, name)
            .await
            .map_err(|e| Status::failed_precondition(outpost_runtime::error::chain(&e)))?;
        Ok(Response::new(pb::ImportImageResponse { name: imported.name, digest: imported.manifest_digest }))
    }

    type PullImageStream = ProgressStream;

    async fn pull_image(&self, req: Request<pb::PullImageRequest>) -> Result<Response<Self::PullImageStream>, Status> {
        let image = req.into_inner().image;
        if image.is_empty() {
            return Err(Status::invalid_argument("image: give an image reference"));
        }
        let watch = self.agent.pull_image(&image).map_err(Status::failed_precondition)?;
        Ok(Response::new(progress_stream(watch)))
    }

    async fn start_module(&self, req: Request<pb::ModuleRequest>) -> Result<Response<pb::ModuleStatus>, Status> {
        let module = self.module(&req.into_inner().module_id)?;
        self.agent.set_stopped(&module, false);
        self.agent.pass().await;
        self.status_of(&module).await
    }

    async fn stop_module(&self, req: Request<pb::ModuleRequest>) -> Result<Response<pb::ModuleStatus>, Status> {
        let module = self.module(&req.into_inner().module_id)?;
        self.agent.set_stopped(&module, true);
        self.agent.pass().await;
        self.status_of(&module).await
    }

    async fn restart_module(&self, req: Request<pb::ModuleRequest>) -> Result<Response<pb::ModuleStatus>, Status> {
        let module = self.module(&req.into_inner().module_id)?;
        self.agent.restart(&module).await.map_err(|e| Status::failed_precondition(e.to_string()))?;
        self.status_of(&module).await
    }
}
