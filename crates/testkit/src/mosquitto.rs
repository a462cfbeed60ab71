//! A private Mosquitto broker for tests: Debian's `mosquitto` on a free loopback port,
//! anonymous, no persistence, logging everything to a file the test can wait on. Stopped on
//! drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running broker.
pub struct Mosquitto {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Mosquitto {
    /// Starts the broker and waits until it accepts connections.
    pub fn start() -> Mosquitto {
        let dir = tempfile::Builder::new().prefix("mosquitto").tempdir_in("/tmp").expect("a temporary directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest file {}\nlog_type all\n",
                dir.path().join("mosquitto.log").display()
            ),
        )
        .expect("write mosquitto.conf");
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mosquitto ({e}); these tests need it: apt-get install mosquitto"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mosquitto exited ({status}) before listening");
            }
            assert!(Instant::now() < deadline, "mosquitto did not listen on port {port} within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto { child, dir, port }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Waits until the log contains `text`.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(text) {
            assert!(Instant::now() < deadline, "mosquitto never logged {text:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
