//! A private containerd for tests: its own root, state and socket under a temporary
//! directory and a namespace of its own, so tests never touch a containerd that is already
//! running, nor each other (runc keeps its state per namespace under /run/containerd/runc,
//! shared by every containerd). On drop it kills the shims it started and clears runc's
//! state for its namespace. Needs root and the `containerd` and `runc` packages; tests fail
//! loudly when they are missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private containerd, stopped on drop.
pub struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    namespace: String,
}

impl Containerd {
    /// Starts containerd and waits until its socket accepts connections.
    pub fn start() -> Containerd {
        let dir = tempfile::Builder::new().prefix("ctd").tempdir_in("/tmp").expect("a temporary directory");
        let root = dir.path();
        std::fs::write(
            root.join("config.toml"),
            format!(
                "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{r}/containerd.sock\"\n[ttrpc]\n  address = \"{r}/containerd.sock.ttrpc\"\n",
                r = root.display()
            ),
        )
        .expect("write containerd config");
        let child = spawn(root);
        let suffix = dir.path().file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        let namespace = format!("test-{}", suffix.trim_start_matches("ctd"));
        Containerd { child, dir, namespace }
    }

    /// Stops containerd (SIGTERM; its shims and their tasks keep running, as in production)
    /// and starts it again on the same root and socket.
    pub fn restart(&mut self) {
        self.terminate();
        self.child = spawn(self.dir.path());
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The namespace tests should use with this containerd.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// The temporary directory holding root, state and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.terminate();
        // Shims outlive containerd by design; ours are recognised by our socket address.
        let address = self.socket().display().to_string();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for entry in procs.flatten() {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains("containerd-shim") && cmdline.contains(&address) {
                    let pid = entry.file_name().to_string_lossy().into_owned();
                    let _ = Command::new("kill").args(["-KILL", &pid]).status();
                }
            }
        }
        // Tests may use namespaces derived from ours (one per simulated device): clean them all.
        let runc_roots: Vec<_> = std::fs::read_dir("/run/containerd/runc")
            .map(|dirs| {
                dirs.flatten()
                    .filter(|d| {
                        let name = d.file_name().to_string_lossy().into_owned();
                        name == self.namespace || name.starts_with(&format!("{}-", self.namespace))
                    })
                    .map(|d| d.path())
                    .collect()
            })
            .unwrap_or_default();
        for runc_root in runc_roots {
            if let Ok(containers) = std::fs::read_dir(&runc_root) {
                for container in containers.flatten() {
                    let _ = Command::new("runc")
                        .arg("--root")
                        .arg(&runc_root)
                        .args(["delete", "-f"])
                        .arg(container.file_name())
                        .stderr(Stdio::null())
                        .status();
                }
            }
            let _ = std::fs::remove_dir_all(&runc_root);
        }
        // Snapshots of containers that were still mounted would keep the directory busy.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let root = self.dir.path().display().to_string();
            for target in mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|t| t.starts_with(&root)) {
                let _ = Command::new("umount").arg("-l").arg(target).status();
            }
        }
    }
}

/// Starts containerd with the configuration in `root` and waits for its socket.
fn spawn(root: &Path) -> Child {
    let _ = std::fs::remove_file(root.join("containerd.sock"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("containerd.log"))
        .expect("open containerd log");
    let mut child = Command::new("containerd")
        .arg("--config")
        .arg(root.join("config.toml"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run containerd ({e}); these tests need it: apt-get install containerd runc")
        });
    let socket = root.join("containerd.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(root.join("containerd.log")).unwrap_or_default();
            panic!("containerd exited ({status}) before listening:\n{log}");
        }
        assert!(Instant::now() < deadline, "containerd did not listen on {} within 30 s", socket.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}
