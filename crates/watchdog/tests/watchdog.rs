//! The outpost-watchdog program against a service whose health the test controls and a
//! stand-in for outpostd that records what it is asked: restart, then recreate, then nothing
//! once healthy; a service stopped on request is left alone; metrics count it all.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_proto::host::v1 as pb;
use outpost_proto::host::v1::host_server::{Host, HostServer};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;

/// What the stand-in was asked, and whether it says the service is stopped.
#[derive(Debug, Default)]
struct Recorder {
    asked: Mutex<Vec<(String, bool, bool)>>,
    stopped: Mutex<bool>,
}

#[derive(Debug, Clone)]
struct FakeHost(Arc<Recorder>);

type Logs = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::LogLine, Status>> + Send>>;

#[tonic::async_trait]
impl Host for FakeHost {
    async fn restart_service(
        &self,
        request: Request<pb::RestartServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        let r = request.into_inner();
        assert!(r.reason.starts_with("watchdog: 2 failed health checks"), "{}", r.reason);
        self.0.asked.lock().unwrap().push((r.name.clone(), r.recreate, r.unless_stopped));
        let state = if *self.0.stopped.lock().unwrap() { pb::ServiceState::Stopped } else { pb::ServiceState::Running };
        Ok(Response::new(pb::Service { name: r.name, state: state.into(), ..pb::Service::default() }))
    }
    async fn get_system_info(&self, _: Request<pb::GetSystemInfoRequest>) -> Result<Response<pb::SystemInfo>, Status> {
        Err(Status::unimplemented("not needed"))
    }
    async fn list_services(
        &self,
        _: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }
    async fn stop_service(&self, _: Request<pb::ServiceRequest>) -> Result<Response<pb::Service>, Status> {
        Err(Status::unimplemented("not needed"))
    }
    async fn start_service(&self, _: Request<pb::ServiceRequest>) -> Result<Response<pb::Service>, Status> {
        Err(Status::unimplemented("not needed"))
    }
    async fn shutdown(&self, _: Request<pb::ShutdownRequest>) -> Result<Response<pb::ShutdownResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }
    type StreamLogsStream = Logs;
    async fn stream_logs(&self, _: Request<pb::StreamLogsRequest>) -> Result<Response<Logs>, Status> {
        Err(Status::unimplemented("not needed"))
    }
    async fn update_service(
        &self,
        _: Request<pb::UpdateServiceRequest>,
    ) -> Result<Response<pb::UpdateServiceResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }
}

fn metrics(port: u16) -> String {
    let out = Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{port}/metrics")]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_services_are_restarted_then_recreated_until_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let policy = || outpost_rpc::Policy::for_current_user(Vec::new());

    let (health, health_service) = outpost_rpc::health::service();
    let service_socket = dir.path().join("svc.sock");
    let listener = outpost_rpc::bind(&service_socket, 0o660).unwrap();
    let routes = tonic::service::Routes::new(health_service);
    let (path, token) = (service_socket.clone(), stop.clone());
    tokio::spawn(async move { outpost_rpc::serve::serve(&path, listener, routes, policy(), token).await });

    let recorder = Arc::new(Recorder::default());
    let host_socket = dir.path().join("host.sock");
    let listener = outpost_rpc::bind(&host_socket, 0o660).unwrap();
    let routes = tonic::service::Routes::new(HostServer::new(FakeHost(recorder.clone())));
    let (path, token) = (host_socket.clone(), stop.clone());
    tokio::spawn(async move { outpost_rpc::serve::serve(&path, listener, routes, policy(), token).await });

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("watchdog.toml");
    std::fs::write(
        &config,
        format!(
            "[watchdog]\ninterval_secs = 1\ntimeout_secs = 1\nfailures = 2\nmax_backoff_secs = 4\n\
             [paths]\nsocket = \"{}\"\nhost_socket = \"{}\"\n[metrics]\nbind = \"127.0.0.1:{port}\"\n\
             [[service]]\nname = \"svc\"\nsocket = \"{}\"\n",
            dir.path().join("watchdog.sock").display(),
            host_socket.display(),
            service_socket.display()
        ),
    )
    .unwrap();
    let mut watchdog = Command::new(env!("CARGO_BIN_EXE_outpost-watchdog"))
        .arg("--config")
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    until("healthy checks counted", || {
        metrics(port).contains("outpost_watchdog_checks_total{service=\"svc\",result=\"ok\"} 2")
    })
    .await;
    assert!(recorder.asked.lock().unwrap().is_empty());

    health.set_service_status("", ServingStatus::NotServing).await;
    until("a restart then a recreate", || recorder.asked.lock().unwrap().len() >= 2).await;
    let asked = recorder.asked.lock().unwrap().clone();
    assert_eq!(asked[..2], [("svc".to_owned(), false, true), ("svc".to_owned(), true, true)]);

    // Healthy again: no more actions.
    health.set_service_status("", ServingStatus::Serving).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = recorder.asked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(recorder.asked.lock().unwrap().len(), settled);

    // Stopped on request: outpostd leaves it alone and the watchdog counts it as skipped.
    *recorder.stopped.lock().unwrap() = true;
    health.set_service_status("", ServingStatus::NotServing).await;
    until("a skipped action", || metrics(port).contains("action=\"restart\",outcome=\"skipped\"} 1")).await;
    let text = metrics(port);
    assert!(
        text.contains("outpost_watchdog_actions_total{service=\"svc\",action=\"restart\",outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("outpost_watchdog_actions_total{service=\"svc\",action=\"recreate\",outcome=\"ok\"}"),
        "{text}"
    );
    assert!(text.contains("outpost_watchdog_service_healthy{service=\"svc\"} 0"), "{text}");

    // Its own health, then a clean stop.
    outpost_rpc::health::check(&dir.path().join("watchdog.sock"), Duration::from_secs(1)).await.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(watchdog.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(watchdog.wait().unwrap().success());
    stop.cancel();
}
