//! Starting and stopping outpost-identityd for the demo and the benchmarks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A running outpost-identityd child process.
pub struct Identityd {
    child: Child,
    /// Its management socket.
    pub socket: PathBuf,
    /// Its workload socket directory.
    pub workload_dir: PathBuf,
}

/// Writes a configuration for a daemon whose state and sockets live under `root`.
pub fn write_config(root: &Path, key_store: &str, tcti: &str) -> anyhow::Result<PathBuf> {
    write_device_config(root, "quickstart-device", "outpost.local", None, key_store, tcti)
}

/// As [`write_config`], for device `device` of hub `hub`, with the device key `key` (base64,
/// as registered in the cloud) or a generated one.
pub fn write_device_config(
    root: &Path,
    device: &str,
    hub: &str,
    key: Option<&str>,
    key_store: &str,
    tcti: &str,
) -> anyhow::Result<PathBuf> {
    let path = root.join("identityd.toml");
    let key = key.map(|k| format!("key = \"{k}\"\n")).unwrap_or_default();
    let text = format!(
        r#"# Written by cargo xtask: everything lives under {root}.
[device]
id = "{device}"
hub_hostname = "{hub}"
gateway_hostname = "localhost"
{key}
[paths]
state_dir = "{root}/state"
socket = "{root}/run/identity.sock"
workload_dir = "{root}/run/mnt"

[key_store]
kind = "{key_store}"
tcti = "{tcti}"
"#,
        root = root.display()
    );
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

impl Identityd {
    /// Starts `binary` with `config` and waits until its socket answers.
    pub fn start(binary: &Path, config: &Path, root: &Path, log: &Path) -> anyhow::Result<Self> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut daemon = Self { child, socket: root.join("run/identity.sock"), workload_dir: root.join("run/mnt") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&daemon.socket).is_err() {
            if let Some(status) = daemon.child.try_wait()? {
                bail!("outpost-identityd exited with {status}; see {}", log.display());
            }
            if Instant::now() > deadline {
                bail!("outpost-identityd did not open {} within 20 s", daemon.socket.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid())
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        crate::util::sh(Command::new("kill").args(["-TERM", &self.pid().to_string()]))?;
        Ok(self.child.wait()?)
    }
}

/// Resident set size of process `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

impl Drop for Identityd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU seconds (user + system) process `pid` has used, from /proc (100 ticks a second).
#[cfg(feature = "containers")]
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("unexpected /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).context("unexpected /proc stat");
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    Ok((ticks(11)? + ticks(12)?) as f64 / 100.0)
}
