//! A private OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on a free
//! loopback port with storage under a temporary directory, optionally behind htpasswd
//! (bcrypt, made with `htpasswd` from apache2-utils). Stopped on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry, stopped on drop.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    address: String,
}

impl Registry {
    /// Starts a registry that anyone may pull from and push to.
    pub fn start() -> Registry {
        Self::start_with(None)
    }

    /// Starts a registry that requires `user` and `password`.
    pub fn start_with_login(user: &str, password: &str) -> Registry {
        Self::start_with(Some((user, password)))
    }

    fn start_with(login: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new().prefix("registry").tempdir_in("/tmp").expect("a temporary directory");
        let root = dir.path();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let address = format!("127.0.0.1:{port}");
        let auth = match login {
            None => String::new(),
            Some((user, password)) => {
                let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().unwrap_or_else(|e| {
                    panic!("cannot run htpasswd ({e}); these tests need it: apt-get install apache2-utils")
                });
                assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
                std::fs::write(root.join("htpasswd"), &out.stdout).expect("write htpasswd");
                format!("auth:\n  htpasswd:\n    realm: test\n    path: {}/htpasswd\n", root.display())
            }
        };
        let config = root.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {r}/data\n  delete:\n    enabled: true\n\
                 http:\n  addr: {address}\n{auth}",
                r = root.display()
            ),
        )
        .expect("write registry config");
        let log = std::fs::File::create(root.join("registry.log")).expect("create registry log");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run docker-registry ({e}); these tests need it: apt-get install docker-registry")
            });
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&address).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(root.join("registry.log")).unwrap_or_default();
                panic!("docker-registry exited ({status}) before listening:\n{log}");
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen on {address} within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Registry { child, dir, address }
    }

    /// `127.0.0.1:<port>`: the registry part of image references.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Stops the registry (a registry going down under a pull).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
