//! `outpost.host.v1` over outpostd's socket: service states, restarts, stops, logs, image
//! replacement and shutdown, each forwarded to the service's supervising task.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use outpost_proto::host::v1 as pb;
use outpost_proto::host::v1::host_server::{Host as HostApi, HostServer};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use crate::Host;
use crate::services::ServiceName;
use crate::supervise::{Command, ServiceStatus, State};

/// The health and host services, ready to serve.
pub async fn routes(host: Arc<Host>) -> tonic::service::Routes {
    let (health, health_service) = outpost_rpc::health::service();
    health.set_serving::<HostServer<HostGrpc>>().await;
    tonic::service::Routes::new(health_service).add_service(HostServer::new(HostGrpc { host }))
}

/// The gRPC face of [`Host`].
#[derive(Debug)]
pub struct HostGrpc {
    host: Arc<Host>,
}

fn service_name(name: &str) -> Result<ServiceName, Status> {
    name.parse().map_err(Status::invalid_argument)
}

fn to_proto(service: ServiceName, status: &ServiceStatus, host: &Host) -> pb::Service {
    let state = match status.state {
        State::Starting => pb::ServiceState::Starting,
        State::Running => pb::ServiceState::Running,
        State::Backoff => pb::ServiceState::Backoff,
        State::Stopped => pb::ServiceState::Stopped,
        State::Failed => pb::ServiceState::Failed,
    };
    pb::Service {
        name: service.as_str().to_owned(),
        state: state.into(),
        description: status.description.clone(),
        image: status.image.clone(),
        pid: status.pid,
        started_at_ms: status.started_at_ms,
        restart_count: status.restart_count,
        last_exit_code: status.last_exit_code,
        last_exit_at_ms: status.last_exit_at_ms,
        socket: service.socket(&host.config().paths).display().to_string(),
        failed_update_image: status.failed_update.as_ref().map(|f| f.0.clone()).unwrap_or_default(),
        failed_update_reason: status.failed_update.as_ref().map(|f| f.1.clone()).unwrap_or_default(),
    }
}

impl HostGrpc {
    fn handle(&self, service: ServiceName) -> Result<crate::supervise::Handle, Status> {
        self.host.handle(service).ok_or_else(|| Status::unavailable(format!("{service} has not been started yet")))
    }

    async fn ask(
        &self,
        service: ServiceName,
        command: impl FnOnce(oneshot::Sender<ServiceStatus>) -> Command,
    ) -> Result<Response<pb::Service>, Status> {
        let handle = self.handle(service)?;
        let (reply, answer) = oneshot::channel();
        handle.commands.send(command(reply)).await.map_err(|_| Status::unavailable("outpostd is stopping"))?;
        let status = answer.await.map_err(|_| Status::unavailable("outpostd is stopping"))?;
        Ok(Response::new(to_proto(service, &status, &self.host)))
    }
}

type LogStream = Pin<Box<dyn Stream<Item = Result<pb::LogLine, Status>> + Send>>;

#[tonic::async_trait]
impl HostApi for HostGrpc {
    async fn get_system_info(&self, _: Request<pb::GetSystemInfoRequest>) -> Result<Response<pb::SystemInfo>, Status> {
        let config = self.host.config();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Ok(Response::new(pb::SystemInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            device_id: config.device.id.to_string(),
            mode: config.runtime.mode.as_str().to_owned(),
            uptime_secs: self.host.uptime().as_secs(),
            config_path: self.host.config_path().display().to_string(),
            os: std::env::consts::OS.to_owned(),
            architecture: std::env::consts::ARCH.to_owned(),
            kernel_version: kernel.trim().to_owned(),
        }))
    }

    async fn list_services(
        &self,
        _: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let services = ServiceName::ALL
            .into_iter()
            .map(|service| match self.host.handle(service) {
                Some(handle) => to_proto(service, &handle.status.borrow(), &self.host),
                None => pb::Service {
                    name: service.as_str().to_owned(),
                    state: pb::ServiceState::Unspecified.into(),
                    description: "waiting for the services before it".into(),
                    last_exit_code: -1,
                    socket: service.socket(&self.host.config().paths).display().to_string(),
                    ..pb::Service::default()
                },
            })
            .collect();
        Ok(Response::new(pb::ListServicesResponse { services }))
    }

    async fn restart_service(
        &self,
        request: Request<pb::RestartServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        let request = request.into_inner();
        let service = service_name(&request.name)?;
        let reason = if request.reason.is_empty() { "requested over the host API".to_owned() } else { request.reason };
        let unless_stopped = request.unless_stopped;
        self.ask(service, |reply| Command::Restart { recreate: request.recreate, reason, unless_stopped, reply }).await
    }

    async fn stop_service(&self, request: Request<pb::ServiceRequest>) -> Result<Response<pb::Service>, Status> {
        let service = service_name(&request.into_inner().name)?;
        self.ask(service, |reply| Command::Stop { reply }).await
    }

    async fn start_service(&self, request: Request<pb::ServiceRequest>) -> Result<Response<pb::Service>, Status> {
        let service = service_name(&request.into_inner().name)?;
        self.ask(service, |reply| Command::Start { reply }).await
    }

    async fn shutdown(&self, _: Request<pb::ShutdownRequest>) -> Result<Response<pb::ShutdownResponse>, Status> {
        tracing::info!("shutdown requested over the host API");
        self.host.request_shutdown();
        Ok(Response::new(pb::ShutdownResponse {}))
    }

    type StreamLogsStream = LogStream;

    async fn stream_logs(&self, request: Request<pb::StreamLogsRequest>) -> Result<Response<LogStream>, Status> {
        let request = request.into_inner();
        let service = service_name(&request.name)?;
        let path = service.log_path(&self.host.config().paths);
        let (lines, end) = crate::logs::tail(&path, request.tail as usize)
            .map_err(|e| Status::internal(format!("cannot read {}: {e}", path.display())))?;
        let (tx, rx) = mpsc::channel::<String>(256);
        let follow = request.follow;
        tokio::spawn(async move {
            for line in lines {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            if follow {
                crate::logs::follow(path, end, tx).await;
            }
        });
        let stream =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|line| (Ok(pb::LogLine { line }), rx)) },
            );
        Ok(Response::new(Box::pin(stream) as LogStream))
    }

    async fn update_service(
        &self,
        request: Request<pb::UpdateServiceRequest>,
    ) -> Result<Response<pb::UpdateServiceResponse>, Status> {
        let request = request.into_inner();
        let service = service_name(&request.name)?;
        if !service.updatable() {
            return Err(Status::invalid_argument(format!(
                "{service} cannot be replaced by a deployment; change [runtime.images] and run `outpost config apply`"
            )));
        }
        if request.image.trim().is_empty() {
            return Err(Status::invalid_argument("image is empty"));
        }
        let within = match request.healthy_within_secs {
            0 => Duration::from_secs(self.host.config().runtime.update_healthy_within_secs.into()),
            secs => Duration::from_secs(secs.into()),
        };
        let handle = self.handle(service)?;
        let _one_at_a_time = self.host.update_lock().await;
        let (reply, answer) = oneshot::channel();
        handle
            .commands
            .send(Command::Update { image: request.image, within, reply })
            .await
            .map_err(|_| Status::unavailable("outpostd is stopping"))?;
        match answer.await.map_err(|_| Status::unavailable("outpostd is stopping"))? {
            Ok((image, previous_image)) => Ok(Response::new(pb::UpdateServiceResponse { image, previous_image })),
            Err(why) => Err(Status::aborted(why)),
        }
    }
}
