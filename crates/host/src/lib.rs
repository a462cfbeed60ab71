//! outpostd: the host daemon that makes a machine an Outpost device.
//!
//! From one device configuration ([`config`]) it writes each service's own file
//! ([`render`]), prepares the state, socket and log directories, and runs outpost-identityd,
//! outpost-agent, outpost-hub and outpost-watchdog — in that order, each started once the one
//! before it serves — as containers of Outpost's images or as child processes ([`launch`]).
//! Each service has a supervising task ([`supervise`]) that restarts it after a cool-off
//! ([`backoff`]) and carries out restarts, recreations and image replacements with rollback
//! asked for over `outpost.host.v1` ([`grpc`]). On SIGTERM it stops the watchdog and the
//! agent, then the modules (gracefully), then the hub and identityd.

pub mod backoff;
pub mod config;
pub mod gc;
pub mod grpc;
pub mod images;
pub mod launch;
pub mod logs;
pub mod notify;
pub mod render;
pub mod services;
pub mod supervise;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use outpost_runtime::containerd::Containerd;
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Mode};
use crate::images::ImageJournal;
use crate::launch::Launcher;
use crate::launch::container::ContainerLauncher;
use crate::launch::process::ProcessLauncher;
use crate::services::ServiceName;
use crate::supervise::{Command, Handle, Settings, State};

/// How long a service has to serve before the next one is started anyway.
const START_WAIT: Duration = Duration::from_secs(60);
/// Services' output files are rotated above this size, three kept.
const LOG_MAX_BYTES: u64 = 10 << 20;

/// Why outpostd could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A directory or file could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The management socket failed.
    #[error(transparent)]
    Rpc(#[from] outpost_rpc::RpcError),
}

impl outpost_daemon::bootstrap::ExitCodeOf for HostError {
    fn exit_code(&self) -> outpost_daemon::ExitCode {
        outpost_daemon::ExitCode::IoError
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HostError + '_ {
    move |source| HostError::Io { path: path.to_owned(), source }
}

/// The directory of outpostd's own program: where process mode finds the services'
/// programs and where outpost-logger is, unless configured otherwise.
pub fn program_dir(config: &Config) -> PathBuf {
    if !config.runtime.bin_dir.as_os_str().is_empty() {
        return config.runtime.bin_dir.clone();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
        .unwrap_or_else(|| PathBuf::from("/usr/lib/outpost"))
}

/// Creates the state, socket and log directories.
pub fn prepare_dirs(config: &Config) -> Result<(), HostError> {
    let p = &config.paths;
    let dirs = [
        p.state_dir.join("identity"),
        p.state_dir.join("agent"),
        p.state_dir.join("hub"),
        p.host_dir().join("config"),
        p.host_dir().join("pids"),
        p.host_dir().join("watchdog"),
        p.run_dir.join("mnt"),
        p.log_dir.join("modules"),
    ];
    for dir in dirs {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    }
    Ok(())
}

/// Writes every service's configuration; returns the services whose file changed.
pub fn write_configs(config: &Config, source: &Path) -> Result<Vec<ServiceName>, HostError> {
    let logger = program_dir(config).join("outpost-logger");
    let mut changed = Vec::new();
    for service in ServiceName::ALL {
        let path = service.config_path(&config.paths);
        let text = render::render(config, source, service, &logger);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            // The identity service's file may hold the device key.
            outpost_daemon::atomic::write_atomic(&path, text.as_bytes(), 0o600).map_err(io(&path))?;
            changed.push(service);
        }
    }
    Ok(changed)
}

/// The running daemon, shared with the gRPC service.
#[derive(Debug)]
pub struct Host {
    config: Config,
    config_path: PathBuf,
    started: Instant,
    supervisors: RwLock<BTreeMap<ServiceName, Handle>>,
    update: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

impl Host {
    /// The configuration outpostd runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The file it was read from.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Time since outpostd started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The supervisor of `service`, once it has been started.
    pub fn handle(&self, service: ServiceName) -> Option<Handle> {
        self.supervisors.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&service).cloned()
    }

    /// Asks outpostd to stop everything and exit.
    pub fn request_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Serialises image replacements: one at a time.
    pub async fn update_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.update.lock().await
    }
}

/// Connects to containerd's `namespace`, retrying every 5 s (with a message) until it
/// answers or `shutdown` is cancelled.
async fn connect_containerd(socket: &Path, namespace: &str, shutdown: &CancellationToken) -> Option<Containerd> {
    let mut warned = false;
    loop {
        match Containerd::connect(socket, namespace).await {
            Ok(runtime) => {
                if warned {
                    tracing::info!(socket = %socket.display(), "containerd is reachable");
                }
                return Some(runtime);
            }
            Err(e) => {
                tracing::warn!(socket = %socket.display(), error = %e, "containerd is not reachable; retrying in 5 s");
                warned = true;
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Stops every module (the agent's containers) with `grace`, all at once.
async fn stop_modules(config: &Config, grace: Duration) {
    let never = CancellationToken::new();
    let connect = connect_containerd(&config.containerd.socket, &config.containerd.namespace, &never);
    let Ok(Some(runtime)) = tokio::time::timeout(Duration::from_secs(5), connect).await else {
        tracing::warn!("containerd is not reachable; modules are left running");
        return;
    };
    let containers =
        match runtime.list(outpost_runtime::container::LABEL_OWNER, outpost_runtime::container::OWNER_AGENT).await {
            Ok(containers) => containers,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list modules; they are left running");
                return;
            }
        };
    tracing::info!(modules = containers.len(), grace_secs = grace.as_secs(), "stopping modules");
    let stops = containers.iter().map(|c| {
        let runtime = runtime.clone();
        async move {
            if let Err(e) = runtime.stop(&c.id, grace).await {
                tracing::warn!(module = %c.id, error = %e, "cannot stop");
            }
        }
    });
    futures::future::join_all(stops).await;
}

/// Waits until `handle`'s service serves, up to `limit`.
async fn until_running(handle: &Handle, limit: Duration) -> bool {
    let mut status = handle.status.clone();
    tokio::time::timeout(limit, status.wait_for(|s| s.state == State::Running)).await.is_ok_and(|r| r.is_ok())
}

async fn ask(handle: &Handle, command: impl FnOnce(oneshot::Sender<supervise::ServiceStatus>) -> Command) {
    let (reply, answer) = oneshot::channel();
    if handle.commands.send(command(reply)).await.is_ok() {
        let _ = answer.await;
    }
}

/// Runs the services until `shutdown` is cancelled, serving `outpost.host.v1` on `listener`.
pub async fn run(
    config: Config,
    config_path: PathBuf,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<(), HostError> {
    let tracker = TaskTracker::new();
    let host = Arc::new(Host {
        config: config.clone(),
        config_path,
        started: Instant::now(),
        supervisors: RwLock::new(BTreeMap::new()),
        update: tokio::sync::Mutex::new(()),
        shutdown: shutdown.clone(),
    });
    let serving = CancellationToken::new();
    let socket = config.paths.host_socket();
    let routes = grpc::routes(host.clone()).await;
    let policy = outpost_rpc::Policy::for_current_user(Vec::new());
    let stop_serving = serving.clone();
    let server =
        tokio::spawn(async move { outpost_rpc::serve::serve(&socket, listener, routes, policy, stop_serving).await });

    let launcher: Arc<dyn Launcher> = match config.runtime.mode {
        Mode::Process => Arc::new(ProcessLauncher::new(program_dir(&config), config.paths.clone())),
        Mode::Container => {
            match connect_containerd(&config.containerd.socket, &config.containerd.system_namespace, &shutdown).await {
                Some(runtime) => {
                    let logger = program_dir(&config).join("outpost-logger");
                    Arc::new(ContainerLauncher::new(runtime, config.clone(), logger))
                }
                None => {
                    serving.cancel();
                    let _ = server.await;
                    return Ok(());
                }
            }
        }
    };
    let journal = Arc::new(ImageJournal::open(config.paths.host_dir().join("images.json")));
    let supervisors_stop = CancellationToken::new();
    for service in ServiceName::ALL {
        if let Err(e) = launcher.clean_up(service).await {
            tracing::warn!(%service, error = %e, "cannot clean up what a previous outpostd left");
        }
    }
    for service in ServiceName::ALL {
        if shutdown.is_cancelled() {
            break;
        }
        let settings = Settings {
            service,
            socket: service.socket(&config.paths),
            stop_grace: Duration::from_secs(config.runtime.stop_grace_secs.into()),
            configured_image: match config.runtime.mode {
                Mode::Container => service.configured_image(&config).to_owned(),
                Mode::Process => service.program().to_owned(),
            },
            self_watch: (service == ServiceName::Watchdog).then(|| {
                let interval = Duration::from_secs(config.watchdog.interval_secs.into());
                (interval, config.watchdog.failures)
            }),
        };
        let handle = supervise::spawn(settings, launcher.clone(), journal.clone(), supervisors_stop.clone(), &tracker);
        host.supervisors.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(service, handle.clone());
        tokio::select! {
            () = shutdown.cancelled() => {}
            running = until_running(&handle, START_WAIT) => if !running {
                tracing::warn!(%service, "not serving after {} s; starting the next service anyway", START_WAIT.as_secs());
            }
        }
    }
    if !shutdown.is_cancelled() {
        tracing::info!(mode = config.runtime.mode.as_str(), "device runtime started");
        notify::notify("READY=1");
    }
    let housekeeping = tokio::spawn(housekeeping(config.clone(), shutdown.clone()));
    let image_gc = tokio::spawn(image_gc(config.clone(), shutdown.clone()));

    shutdown.cancelled().await;
    notify::notify("STOPPING=1");
    housekeeping.abort();
    image_gc.abort();
    let handles = host.supervisors.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    for service in [ServiceName::Watchdog, ServiceName::Agent] {
        if let Some(handle) = handles.get(&service) {
            ask(handle, |reply| Command::Stop { reply }).await;
        }
    }
    stop_modules(&config, Duration::from_secs(config.runtime.module_stop_grace_secs.into())).await;
    for service in [ServiceName::Hub, ServiceName::Identityd] {
        if let Some(handle) = handles.get(&service) {
            ask(handle, |reply| Command::Stop { reply }).await;
        }
    }
    supervisors_stop.cancel();
    tracker.close();
    tracker.wait().await;
    serving.cancel();
    let _ = server.await;
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Removes modules' images unused for `[image_garbage_collection]`'s threshold, on its
/// schedule.
async fn image_gc(config: Config, shutdown: CancellationToken) {
    let Ok(schedule) = gc::Schedule::parse(&config.image_garbage_collection) else { return };
    if !schedule.enabled {
        return;
    }
    let deployment = config.paths.state_dir.join("agent/deployment.json");
    let journal = config.paths.host_dir().join("gc.json");
    loop {
        let wait = Duration::from_secs(schedule.next_run_in(unix_now()));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let connect = Containerd::connect(&config.containerd.socket, &config.containerd.namespace);
        let runtime = match connect.await {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::warn!(error = %e, "image garbage collection skipped: containerd is not reachable");
                continue;
            }
        };
        match gc::collect(&runtime, &deployment, &journal, schedule.threshold, unix_now()).await {
            Ok(removed) => tracing::info!(removed = removed.len(), "image garbage collection done"),
            Err(e) => tracing::warn!(error = %e, "image garbage collection failed"),
        }
    }
}

/// Periodic chores: systemd's watchdog pings and rotation of the services' output.
async fn housekeeping(config: Config, shutdown: CancellationToken) {
    let ping = notify::watchdog_interval();
    let tick = ping.unwrap_or(Duration::from_secs(60)).min(Duration::from_secs(60));
    let mut last_rotation = Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
        if ping.is_some() {
            notify::notify("WATCHDOG=1");
        }
        if last_rotation.elapsed() >= Duration::from_secs(60) {
            last_rotation = Instant::now();
            for service in ServiceName::ALL {
                let path = service.log_path(&config.paths);
                if let Err(e) = logs::rotate_if_large(&path, LOG_MAX_BYTES, 3) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot rotate");
                }
            }
        }
    }
}
