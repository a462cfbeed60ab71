//! Test harness: runs outpost-identityd in-process on temporary sockets and talks to it
//! over gRPC and the workload API.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use outpost_core::DeviceId;
use outpost_identity::config::Config;
use outpost_proto::identity::v1::identity_client::IdentityClient;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A known device key (base64) so tests can compute signatures independently.
pub const DEVICE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const HUB: &str = "outpost-test-hub.example";
pub const DEVICE: &str = "dev1";

/// A running daemon.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub config: Config,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn config(root: &Path) -> Config {
    let mut config = Config::under(root, DeviceId::new(DEVICE).unwrap(), HUB);
    config.device.key = Some(DEVICE_KEY.to_owned());
    config
}

impl Daemon {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        Self::start_with(dir, config).await
    }

    pub async fn start_with(dir: tempfile::TempDir, config: Config) -> Self {
        let service = outpost_identity::open(&config).unwrap();
        let listener = outpost_rpc::bind(&config.paths.socket, config.management.socket_mode).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(outpost_identity::run_owned(config.clone(), service, listener, shutdown.clone()));
        let task = tokio::spawn(async move { task.await.unwrap().unwrap() });
        Self { dir, config, shutdown, task: Some(task) }
    }

    pub async fn client(&self) -> IdentityClient<Channel> {
        IdentityClient::new(outpost_rpc::connect(&self.config.paths.socket).await.unwrap())
    }

    pub fn workload_socket(&self, module: &str) -> PathBuf {
        self.config.paths.workload_dir.join(module).join("workload.sock")
    }

    /// Stops the daemon and waits for it; returns the temp dir for a restart.
    pub async fn stop(mut self) -> (tempfile::TempDir, Config) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.config.clone())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One HTTP/1.1 request on a workload socket; returns status and JSON body.
pub async fn workload(socket: &Path, method: &str, target: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let stream = UnixStream::connect(socket).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(target)
        .header("host", "localhost")
        .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}
