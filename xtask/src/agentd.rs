//! Starting and stopping outpost-agent for the benchmarks and the image smoke test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::daemon::Identityd;

/// A running outpost-agent child process with its configuration under a root directory.
pub struct Agentd {
    child: Child,
    /// Its management socket.
    pub socket: PathBuf,
}

impl Agentd {
    /// Starts `binary` with state, sockets and logs under `root`, identityd's socket and
    /// workload directory from `identityd`, on containerd at `containerd` in `namespace`, and
    /// waits until its socket answers.
    pub fn start(
        binary: &Path,
        root: &Path,
        identityd: &Identityd,
        containerd: &Path,
        namespace: &str,
    ) -> anyhow::Result<Self> {
        Self::start_with(binary, root, identityd, containerd, namespace, "")
    }

    /// As [`start`](Self::start), with `extra` TOML appended to the configuration.
    pub fn start_with(
        binary: &Path,
        root: &Path,
        identityd: &Identityd,
        containerd: &Path,
        namespace: &str,
        extra: &str,
    ) -> anyhow::Result<Self> {
        let config = root.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[paths]\nstate_dir = \"{r}/agent\"\nsocket = \"{r}/run/agent.sock\"\nidentity_socket = \"{i}\"\n\
                 workload_dir = \"{w}\"\nlog_dir = \"{r}/logs\"\n[containerd]\nsocket = \"{s}\"\nnamespace = \"{namespace}\"\n{extra}",
                r = root.display(),
                i = identityd.socket.display(),
                w = identityd.workload_dir.display(),
                s = containerd.display()
            ),
        )?;
        let log = root.join("agent.log");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut agent = Self { child, socket: root.join("run/agent.sock") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&agent.socket).is_err() {
            if let Some(status) = agent.child.try_wait()? {
                bail!("outpost-agent exited with {status}; see {}", log.display());
            }
            if Instant::now() > deadline {
                bail!("outpost-agent did not open {} within 20 s; see {}", agent.socket.display(), log.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(agent)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        crate::util::sh(Command::new("kill").args(["-TERM", &self.pid().to_string()]))?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Agentd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
