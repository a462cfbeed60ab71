//! A software TPM 2.0 (swtpm) for tests, on free loopback ports with its own state.
//! Tests that need it fail loudly when swtpm is not installed.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway swtpm on loopback ports with its own state, killed on drop.
pub struct Swtpm {
    child: Child,
    port: u16,
    _state: tempfile::TempDir,
}

impl Swtpm {
    /// Starts swtpm and waits until it accepts connections.
    pub fn start() -> Swtpm {
        let state = tempfile::tempdir().expect("a temporary directory for the TPM state");
        // The swtpm TCTI finds the control channel on the server port + 1.
        let port = (0..100)
            .find_map(|_| {
                let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
                TcpListener::bind(("127.0.0.1", port.checked_add(1)?)).ok().map(|_| port)
            })
            .expect("no two adjacent free loopback ports");
        let mut child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate", &format!("dir={}", state.path().display())])
            .args(["--server", &format!("type=tcp,port={port},bindaddr=127.0.0.1")])
            .args(["--ctrl", &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1)])
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run swtpm ({e}); these tests need it: apt-get install swtpm"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("swtpm exited ({status}) before listening on port {port}");
            }
            assert!(Instant::now() < deadline, "swtpm did not listen on port {port} within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        Swtpm { child, port, _state: state }
    }

    /// The TCTI string for this TPM.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
