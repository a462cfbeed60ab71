//! One workload socket per module identity, `{workload_dir}/{module}/workload.sock`: bound
//! when the identity is created (or at start for existing ones), removed when it is deleted.
//! Each socket lives in a directory of its own so that the agent can bind-mount the
//! directory: a socket re-created after a restart of this daemon is then still the one the
//! module sees, which a bind mount of the socket file itself would not be. Each
//! socket answers only for its own module, at most `max_concurrent_requests` connections
//! at a time (more wait for a slot).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use outpost_core::ModuleId;
use outpost_rpc::RpcError;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::service::IdentityService;
use crate::workload::api::{self, MAX_BODY, Response};

/// The socket's file name inside its module directory.
pub const SOCKET_NAME: &str = "workload.sock";

/// How long a connection may take to send a request's headers.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The set of served workload sockets.
#[derive(Debug)]
pub struct WorkloadSockets {
    dir: PathBuf,
    mode: u32,
    max_concurrent: usize,
    service: Arc<IdentityService>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    active: Mutex<HashMap<ModuleId, CancellationToken>>,
}

impl WorkloadSockets {
    /// Sockets under `dir` with permission bits `mode`, stopped by `shutdown`; tasks are
    /// spawned on `tracker`.
    pub fn new(
        dir: &Path,
        mode: u32,
        max_concurrent: usize,
        service: Arc<IdentityService>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            dir: dir.to_owned(),
            mode,
            max_concurrent,
            service,
            shutdown,
            tracker,
            active: Mutex::new(HashMap::new()),
        }
    }

    /// The socket path of `module`.
    pub fn path(&self, module: &ModuleId) -> PathBuf {
        self.dir.join(module.as_str()).join(SOCKET_NAME)
    }

    /// Serves `module`'s socket (no-op if already served); returns its path.
    pub fn start(&self, module: &ModuleId) -> Result<PathBuf, RpcError> {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.path(module);
        if active.contains_key(module) {
            return Ok(path);
        }
        let listener = outpost_rpc::bind(&path, self.mode)?;
        let token = self.shutdown.child_token();
        active.insert(module.clone(), token.clone());
        let ctx = Arc::new(SocketContext {
            module: module.clone(),
            service: self.service.clone(),
            slots: Arc::new(Semaphore::new(self.max_concurrent)),
        });
        self.tracker.spawn(accept_loop(listener, ctx, token, self.tracker.clone(), path.clone()));
        tracing::debug!(module = %module, socket = %path.display(), "workload socket up");
        Ok(path)
    }

    /// Stops serving `module`'s socket and removes the file.
    pub fn stop(&self, module: &ModuleId) {
        let token = self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(module);
        if let Some(token) = token {
            token.cancel();
        }
        let _ = std::fs::remove_file(self.path(module));
        let _ = std::fs::remove_dir(self.dir.join(module.as_str()));
    }
}

#[derive(Debug)]
struct SocketContext {
    module: ModuleId,
    service: Arc<IdentityService>,
    slots: Arc<Semaphore>,
}

async fn accept_loop(
    listener: UnixListener,
    ctx: Arc<SocketContext>,
    token: CancellationToken,
    tracker: TaskTracker,
    path: PathBuf,
) {
    loop {
        let stream = tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(socket = %path.display(), error = %e, "accept failed");
                    continue;
                }
            },
        };
        let ctx = ctx.clone();
        let token = token.clone();
        tracker.spawn(async move {
            let Ok(_slot) = ctx.slots.clone().acquire_owned().await else { return };
            let svc_ctx = ctx.clone();
            let service = service_fn(move |req| {
                let ctx = svc_ctx.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(ctx, req).await) }
            });
            // A client that connects and never sends a request must not hold a slot forever.
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(module = %ctx.module, error = %e, "workload connection ended with an error");
                    }
                }
                () = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    tracing::debug!(socket = %path.display(), "workload socket closed");
}

async fn respond(ctx: Arc<SocketContext>, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let target = req.uri().path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let response = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Err(e) => Response::error(413, format!("request body rejected: {e}")),
        Ok(body) => {
            let body = body.to_bytes();
            let service_ctx = ctx.clone();
            let span_target = target.clone();
            // Key stores may block (a TPM round trip), so requests run off the async workers.
            tokio::task::spawn_blocking(move || {
                api::handle(&service_ctx.service, &service_ctx.module, &method, &span_target, &body)
            })
            .await
            .unwrap_or_else(|_| Response::error(500, "internal error"))
        }
    };
    tracing::debug!(module = %ctx.module, target = %target, status = response.status, "workload request");
    let body = serde_json::to_vec(&response.body).expect("JSON values always serialise");
    hyper::Response::builder()
        .status(response.status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("status and header are valid")
}
