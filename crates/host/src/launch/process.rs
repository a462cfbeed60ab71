//! Services as child processes (`[runtime] mode = "process"`): each program runs with the
//! configuration outpostd wrote for it, its output appended to `{log_dir}/{service}.log`, in
//! a process group of its own (a terminal's Ctrl-C reaches outpostd, which stops them in
//! order). Pid files let a restarted outpostd stop what a crashed one left running.

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::{Instance, LaunchError, Launcher};
use crate::config::PathsConfig;
use crate::services::ServiceName;

/// Starts services as child processes.
#[derive(Debug)]
pub struct ProcessLauncher {
    bin_dir: PathBuf,
    paths: PathsConfig,
}

impl ProcessLauncher {
    /// Programs are looked up in `bin_dir` unless given as a path.
    pub fn new(bin_dir: PathBuf, paths: PathsConfig) -> Self {
        Self { bin_dir, paths }
    }

    fn program(&self, image: &str) -> PathBuf {
        if image.contains('/') { PathBuf::from(image) } else { self.bin_dir.join(image) }
    }

    fn pid_file(&self, service: ServiceName) -> PathBuf {
        self.paths.host_dir().join("pids").join(format!("{service}.pid"))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[async_trait::async_trait]
impl Launcher for ProcessLauncher {
    async fn prepare(&self, _service: ServiceName, image: &str) -> Result<(), LaunchError> {
        let program = self.program(image);
        if is_executable(&program) {
            Ok(())
        } else {
            Err(LaunchError::Missing(format!(
                "{} is not an executable file; build the services (`cargo build --release`) or set runtime.bin_dir",
                program.display()
            )))
        }
    }

    async fn start(&self, service: ServiceName, image: &str, recreate: bool) -> Result<Box<dyn Instance>, LaunchError> {
        self.prepare(service, image).await?;
        if recreate {
            let _ = std::fs::remove_file(service.socket(&self.paths));
        }
        let log_path = service.log_path(&self.paths);
        let io = |e: std::io::Error, what: &str| LaunchError::Runtime(format!("{what}: {e}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| io(e, &format!("cannot open {}", log_path.display())))?;
        let err_log = log.try_clone().map_err(|e| io(e, "cannot duplicate the log file"))?;
        let program = self.program(image);
        let child = Command::new(&program)
            .arg("--config")
            .arg(service.config_path(&self.paths))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .process_group(0)
            .spawn()
            .map_err(|e| io(e, &format!("cannot start {}", program.display())))?;
        let pid = child.id().unwrap_or(0);
        let pid_file = self.pid_file(service);
        if let Some(dir) = pid_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(&pid_file, format!("{pid}\n{}\n", program.display())) {
            tracing::warn!(file = %pid_file.display(), error = %e, "cannot write the pid file");
        }
        Ok(Box::new(Process { child, pid }))
    }

    async fn clean_up(&self, service: ServiceName) -> Result<(), LaunchError> {
        let pid_file = self.pid_file(service);
        let Ok(text) = std::fs::read_to_string(&pid_file) else { return Ok(()) };
        let mut lines = text.lines();
        let (Some(Ok(pid)), Some(program)) = (lines.next().map(str::parse::<i32>), lines.next()) else {
            let _ = std::fs::remove_file(&pid_file);
            return Ok(());
        };
        // Only a process still running that program is ours: pids are reused.
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        if exe.is_some_and(|exe| exe.as_path() == Path::new(program)) {
            tracing::warn!(%service, pid, "stopping the instance a previous outpostd left running");
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            for _ in 0..100 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&pid_file);
        Ok(())
    }
}

/// A service's child process.
#[derive(Debug)]
struct Process {
    child: Child,
    pid: u32,
}

fn status_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    match status {
        Ok(status) => status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(-1),
        Err(_) => -1,
    }
}

#[async_trait::async_trait]
impl Instance for Process {
    fn pid(&self) -> u32 {
        self.pid
    }

    async fn wait(&mut self) -> i32 {
        status_code(self.child.wait().await)
    }

    async fn stop(&mut self, grace: Duration) -> i32 {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status_code(Ok(status));
        }
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status_code(status),
            Err(_) => {
                tracing::warn!(
                    pid = self.pid,
                    grace_secs = grace.as_secs(),
                    "did not stop on SIGTERM; sending SIGKILL"
                );
                let _ = self.child.start_kill();
                status_code(self.child.wait().await)
            }
        }
    }
}
