//! One task per service: starts it, waits on it, starts it again after a cool-off when it
//! exits ([`crate::backoff`]), and carries out operators' and the watchdog's requests —
//! restart, recreate, stop, start, and replacing its image with rollback. Its state is
//! published on a watch channel for `ListServices`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::images::ImageJournal;
use crate::launch::{Instance, Launcher};
use crate::services::ServiceName;

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Started, not yet answering health checks.
    Starting,
    /// Answering health checks.
    Running,
    /// Exited; waiting out its cool-off.
    Backoff,
    /// Stopped on request.
    Stopped,
    /// Cannot be started; retried after a cool-off.
    Failed,
}

/// A service's published state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The state.
    pub state: State,
    /// What happened last.
    pub description: String,
    /// The image (program) it runs.
    pub image: String,
    /// The running instance's pid, 0 if none.
    pub pid: u32,
    /// When the running instance started (Unix ms), 0 if none.
    pub started_at_ms: i64,
    /// Starts after the first.
    pub restart_count: u32,
    /// The last exit status, -1 if none.
    pub last_exit_code: i32,
    /// When it last exited (Unix ms), 0 if never.
    pub last_exit_at_ms: i64,
    /// The last replacement that was rolled back, and why; cleared by one that succeeds.
    pub failed_update: Option<(String, String)>,
}

/// A request to a service's task.
#[derive(Debug)]
pub enum Command {
    /// Stop and start (or recreate) it; answered once the new instance is started.
    Restart {
        /// Make it anew.
        recreate: bool,
        /// Who asks and why.
        reason: String,
        /// Leave it alone if it was stopped on request.
        unless_stopped: bool,
        /// The state after.
        reply: oneshot::Sender<ServiceStatus>,
    },
    /// Stop it until started again.
    Stop {
        /// The state after.
        reply: oneshot::Sender<ServiceStatus>,
    },
    /// Start it if stopped.
    Start {
        /// The state after.
        reply: oneshot::Sender<ServiceStatus>,
    },
    /// Replace its image; roll back if the new one is not healthy within `within`.
    Update {
        /// The new image.
        image: String,
        /// How long it has.
        within: Duration,
        /// `(new, previous)` or why it was rolled back.
        reply: oneshot::Sender<Result<(String, String), String>>,
    },
}

/// What a service's task needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which service.
    pub service: ServiceName,
    /// Its health socket.
    pub socket: PathBuf,
    /// SIGTERM → SIGKILL.
    pub stop_grace: Duration,
    /// The image (program) configured for it.
    pub configured_image: String,
    /// outpostd checks this service's health itself (for the watchdog, which watches the
    /// others): every `interval`, restarting after `failures` consecutive failed checks.
    pub self_watch: Option<(Duration, u32)>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A running supervisor's handle.
#[derive(Debug, Clone)]
pub struct Handle {
    /// Requests.
    pub commands: mpsc::Sender<Command>,
    /// Its state.
    pub status: watch::Receiver<ServiceStatus>,
}

/// Starts the task of one service; it runs until `stop` is cancelled, then stops the
/// service (the caller orders services' stops through [`Command::Stop`] first).
pub fn spawn(
    settings: Settings,
    launcher: Arc<dyn Launcher>,
    journal: Arc<ImageJournal>,
    stop: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> Handle {
    let image = journal.effective(settings.service, &settings.configured_image);
    let (status_tx, status) = watch::channel(ServiceStatus {
        state: State::Starting,
        description: "starting".into(),
        image,
        pid: 0,
        started_at_ms: 0,
        restart_count: 0,
        last_exit_code: -1,
        last_exit_at_ms: 0,
        failed_update: None,
    });
    let (commands, rx) = mpsc::channel(8);
    let supervisor = Supervisor {
        settings,
        launcher,
        journal,
        status: status_tx,
        instance: None,
        started: None,
        backoff: Backoff::default(),
        want_running: true,
        due: Instant::now(),
        recreate_next: false,
        launches: 0,
        failed_checks: 0,
    };
    tracker.spawn(supervisor.run(rx, stop));
    Handle { commands, status }
}

struct Supervisor {
    settings: Settings,
    launcher: Arc<dyn Launcher>,
    journal: Arc<ImageJournal>,
    status: watch::Sender<ServiceStatus>,
    instance: Option<Box<dyn Instance>>,
    started: Option<Instant>,
    backoff: Backoff,
    want_running: bool,
    due: Instant,
    recreate_next: bool,
    launches: u32,
    failed_checks: u32,
}

enum Event {
    Shutdown,
    Command(Option<Command>),
    Exited(i32),
    Healthy,
    Due,
    Check(Result<(), String>),
}

async fn wait_on(instance: &mut Option<Box<dyn Instance>>) -> i32 {
    match instance {
        Some(instance) => instance.wait().await,
        None => std::future::pending().await,
    }
}

/// Resolves once the service on `socket` answers that it is serving.
async fn until_serving(socket: &std::path::Path) {
    loop {
        if outpost_rpc::health::check(socket, Duration::from_secs(1)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Supervisor {
    fn set(&self, change: impl FnOnce(&mut ServiceStatus)) {
        self.status.send_modify(change);
    }

    fn state(&self) -> State {
        self.status.borrow().state
    }

    fn image(&self) -> String {
        self.status.borrow().image.clone()
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>, stop: CancellationToken) {
        let service = self.settings.service;
        loop {
            if self.want_running && self.instance.is_none() && Instant::now() >= self.due {
                self.launch().await;
            }
            let starting = self.instance.is_some() && self.state() == State::Starting;
            let waiting = self.want_running && self.instance.is_none();
            let watching = self.settings.self_watch.filter(|_| self.state() == State::Running);
            let socket = self.settings.socket.clone();
            let event = tokio::select! {
                _ = stop.cancelled() => Event::Shutdown,
                command = commands.recv() => Event::Command(command),
                code = wait_on(&mut self.instance) => Event::Exited(code),
                () = until_serving(&socket), if starting => Event::Healthy,
                () = tokio::time::sleep_until(self.due.into()), if waiting => Event::Due,
                result = async {
                    let (interval, _) = watching.unwrap_or_default();
                    tokio::time::sleep(interval).await;
                    outpost_rpc::health::check(&socket, interval.min(Duration::from_secs(5))).await
                }, if watching.is_some() => Event::Check(result),
            };
            match event {
                Event::Shutdown | Event::Command(None) => {
                    self.halt("outpostd is stopping").await;
                    return;
                }
                Event::Command(Some(command)) => self.handle(command).await,
                Event::Exited(code) => self.exited(code),
                Event::Healthy => {
                    tracing::info!(%service, pid = self.status.borrow().pid, "serving");
                    self.failed_checks = 0;
                    self.set(|s| {
                        s.state = State::Running;
                        s.description = "serving".into();
                    });
                }
                Event::Due => {}
                Event::Check(Ok(())) => self.failed_checks = 0,
                Event::Check(Err(e)) => {
                    self.failed_checks += 1;
                    let limit = self.settings.self_watch.map_or(u32::MAX, |(_, n)| n);
                    tracing::warn!(%service, failed = self.failed_checks, error = %e, "health check failed");
                    if self.failed_checks >= limit {
                        self.failed_checks = 0;
                        self.restart(true, &format!("outpostd: {limit} failed health checks ({e})")).await;
                    }
                }
            }
        }
    }

    /// Starts an instance of the current image; on failure, schedules the next attempt.
    async fn launch(&mut self) {
        let service = self.settings.service;
        let image = self.image();
        self.set(|s| {
            s.state = State::Starting;
            s.description = "starting".into();
        });
        match self.launcher.start(service, &image, std::mem::take(&mut self.recreate_next)).await {
            Ok(instance) => {
                let pid = instance.pid();
                tracing::info!(%service, %image, pid, "started");
                if self.launches > 0 {
                    self.set(|s| s.restart_count += 1);
                }
                self.launches += 1;
                self.instance = Some(instance);
                self.started = Some(Instant::now());
                self.set(|s| {
                    s.pid = pid;
                    s.started_at_ms = now_ms();
                });
            }
            Err(e) => {
                let delay = self.backoff.after_failure();
                self.due = Instant::now() + delay;
                tracing::error!(%service, %image, error = %e, retry_in_secs = delay.as_secs(), "cannot start");
                self.set(|s| {
                    s.state = State::Failed;
                    s.description = format!("{e}; retrying in {} s", delay.as_secs());
                    s.pid = 0;
                    s.started_at_ms = 0;
                });
            }
        }
    }

    fn exited(&mut self, code: i32) {
        let service = self.settings.service;
        self.instance = None;
        let ran_for = self.started.take().map_or(Duration::ZERO, |t| t.elapsed());
        let delay = self.backoff.after_exit(ran_for);
        self.due = Instant::now() + delay;
        tracing::warn!(%service, code, ran_for_secs = ran_for.as_secs(), restart_in_secs = delay.as_secs(), "exited");
        let hint = if code == i32::from(outpost_daemon::ExitCode::Config.code()) {
            " (its configuration was refused: see `outpost system logs`)"
        } else {
            ""
        };
        self.set(|s| {
            s.state = State::Backoff;
            s.description = format!("exited with {code}{hint}; starting again in {} s", delay.as_secs());
            s.pid = 0;
            s.started_at_ms = 0;
            s.last_exit_code = code;
            s.last_exit_at_ms = now_ms();
        });
    }

    /// Stops the running instance, if any, recording its exit.
    async fn halt(&mut self, why: &str) {
        if let Some(mut instance) = self.instance.take() {
            tracing::info!(service = %self.settings.service, why, "stopping");
            let code = instance.stop(self.settings.stop_grace).await;
            self.started = None;
            self.set(|s| {
                s.last_exit_code = code;
                s.last_exit_at_ms = now_ms();
            });
        }
        self.set(|s| {
            s.state = State::Stopped;
            s.description = why.to_owned();
            s.pid = 0;
            s.started_at_ms = 0;
        });
    }

    async fn restart(&mut self, recreate: bool, reason: &str) {
        tracing::warn!(service = %self.settings.service, recreate, reason, "restarting");
        self.halt(reason).await;
        self.want_running = true;
        self.recreate_next = recreate;
        self.backoff.reset();
        self.launch().await;
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Restart { recreate, reason, unless_stopped, reply } => {
                if unless_stopped && !self.want_running {
                    tracing::info!(service = %self.settings.service, reason, "stopped on request; not restarting");
                } else {
                    self.restart(recreate, &reason).await;
                }
                let _ = reply.send(self.status.borrow().clone());
            }
            Command::Stop { reply } => {
                self.want_running = false;
                self.halt("stopped on request").await;
                let _ = reply.send(self.status.borrow().clone());
            }
            Command::Start { reply } => {
                if !self.want_running || self.instance.is_none() {
                    self.want_running = true;
                    self.backoff.reset();
                    self.launch().await;
                }
                let _ = reply.send(self.status.borrow().clone());
            }
            Command::Update { image, within, reply } => {
                let _ = reply.send(self.update(image, within).await);
            }
        }
    }

    /// Replaces the image; if the new instance does not serve within `within` (or exits),
    /// the previous image is started again.
    async fn update(&mut self, image: String, within: Duration) -> Result<(String, String), String> {
        let service = self.settings.service;
        let previous = self.image();
        if image == previous {
            return Ok((image, previous));
        }
        self.launcher.prepare(service, &image).await.map_err(|e| e.to_string())?;
        tracing::info!(%service, %image, %previous, "replacing the image");
        self.set(|s| s.image = image.clone());
        self.restart(true, &format!("updating to {image}")).await;
        let outcome = match self.instance.as_mut() {
            None => Err(self.status.borrow().description.clone()),
            Some(instance) => {
                let socket = self.settings.socket.clone();
                tokio::select! {
                    () = until_serving(&socket) => Ok(()),
                    code = instance.wait() => Err(format!("it exited with {code}")),
                    () = tokio::time::sleep(within) => Err(format!("it did not report healthy within {} s", within.as_secs())),
                }
            }
        };
        match outcome {
            Ok(()) => {
                self.journal.record(service, &self.settings.configured_image, &image);
                self.set(|s| {
                    s.state = State::Running;
                    s.description = format!("serving (updated from {previous})");
                    s.failed_update = None;
                });
                tracing::info!(%service, %image, "update succeeded");
                Ok((image, previous))
            }
            Err(why) => {
                tracing::error!(%service, %image, %previous, reason = %why, "update failed; rolling back");
                let reason = format!("{image} failed: {why}; rolled back to {previous}");
                self.set(|s| {
                    s.image = previous.clone();
                    s.failed_update = Some((image.clone(), reason.clone()));
                });
                self.restart(true, &format!("rolling back from {image}")).await;
                Err(reason)
            }
        }
    }
}
