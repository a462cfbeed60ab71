//! A private RabbitMQ node for tests: Debian's rabbitmq-server on free loopback ports with
//! its own epmd, data and logs in a temporary directory, authenticating through the HTTP
//! auth backend at a URL the test gives (outpost-cloud's endpoint). It can be stopped and
//! started again on the same data (a broker restart); it is stopped on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The RabbitMQ server start script run directly (Debian's /usr/sbin wrapper switches user).
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// rabbitmqctl, run directly for the same reason.
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// A running (or stopped) node.
pub struct RabbitMq {
    dir: tempfile::TempDir,
    server: Option<Child>,
    epmd: Child,
    port: u16,
    tls_port: Option<u16>,
    epmd_port: u16,
    dist_port: u16,
    node: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

impl RabbitMq {
    /// Starts a node whose virtual host `vhost` exists and whose users are checked by the
    /// HTTP auth backend at `auth_base` (e.g. `http://127.0.0.1:7480`, paths `/auth/…`):
    /// every sign-in, and permission checks once per 5 minutes (they depend only on names).
    /// Connection events go to `amq.rabbitmq.event` in `vhost`.
    pub fn start(auth_base: &str, vhost: &str) -> RabbitMq {
        Self::start_with(auth_base, vhost, None)
    }

    /// As [`start`](Self::start), with an AMQPS listener too, serving `tls` = (CA, certificate
    /// chain, key) PEM files.
    pub fn start_with(auth_base: &str, vhost: &str, tls: Option<(&Path, &Path, &Path)>) -> RabbitMq {
        let dir = tempfile::Builder::new().prefix("rabbitmq").tempdir_in("/tmp").expect("a temporary directory");
        let (port, epmd_port, dist_port) = (free_port(), free_port(), free_port());
        let node = format!("outpost-test-{port}@localhost");
        let mut config = format!(
            "listeners.tcp.1 = 127.0.0.1:{port}\n\
             loopback_users = none\n\
             default_vhost = {vhost}\n\
             event_exchange.vhost = {vhost}\n\
             auth_backends.1.authn = http\n\
             auth_backends.1.authz = cache\n\
             auth_cache.cached_backend = http\n\
             auth_cache.cache_ttl = 300000\n\
             auth_http.http_method = post\n\
             auth_http.user_path = {auth_base}/auth/user\n\
             auth_http.vhost_path = {auth_base}/auth/vhost\n\
             auth_http.resource_path = {auth_base}/auth/resource\n\
             auth_http.topic_path = {auth_base}/auth/topic\n\
             log.file.level = info\n"
        );
        let tls_port = tls.map(|(ca, cert, key)| {
            let tls_port = free_port();
            config.push_str(&format!(
                "listeners.ssl.1 = 127.0.0.1:{tls_port}\nssl_options.cacertfile = {}\nssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\nssl_options.verify = verify_none\n",
                ca.display(),
                cert.display(),
                key.display()
            ));
            tls_port
        });
        std::fs::write(dir.path().join("rabbitmq.conf"), config).expect("write rabbitmq.conf");
        std::fs::write(
            dir.path().join("enabled_plugins"),
            "[rabbitmq_auth_backend_http,rabbitmq_auth_backend_cache,rabbitmq_event_exchange].\n",
        )
        .expect("write plugins");
        let epmd = Command::new("epmd")
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run epmd ({e}); these tests need apt-get install rabbitmq-server"));
        let mut node = RabbitMq { dir, server: None, epmd, port, tls_port, epmd_port, dist_port, node };
        node.start_again();
        node
    }

    fn env(&self, command: &mut Command) {
        let dir = self.dir.path();
        command
            .env("HOME", dir)
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"));
    }

    /// Starts the node (again) and waits until it accepts AMQP connections.
    pub fn start_again(&mut self) {
        assert!(self.server.is_none(), "the node is running");
        let mut command = Command::new(SERVER);
        self.env(&mut command);
        let mut child =
            command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| {
                panic!("cannot run {SERVER} ({e}); these tests need apt-get install rabbitmq-server")
            });
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("rabbitmq-server exited ({status}) before listening:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "rabbitmq-server did not listen within 60 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        self.server = Some(child);
    }

    /// Stops the node gracefully (`rabbitmqctl stop`), keeping its data.
    pub fn stop(&mut self) {
        let Some(mut child) = self.server.take() else { return };
        let mut command = Command::new(CTL);
        self.env(&mut command);
        let stopped = command.arg("stop").stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !stopped.is_ok_and(|s| s.success()) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Runs `rabbitmqctl` with `args` against this node; its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut command = Command::new(CTL);
        self.env(&mut command);
        let output = command.args(args).output().expect("run rabbitmqctl");
        assert!(output.status.success(), "rabbitmqctl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The AMQP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The AMQPS port on 127.0.0.1, when started with TLS.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// `amqp://{user}:{password}@127.0.0.1:{port}/{vhost}`, user and password URL-encoded.
    pub fn url(&self, user: &str, password: &str, vhost: &str) -> String {
        format!("amqp://{}:{}@127.0.0.1:{}/{}", encode(user), encode(password), self.port, encode(vhost))
    }

    /// The node's log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The node's main log so far.
    pub fn log(&self) -> String {
        read_logs(&self.log_dir())
    }
}

fn read_logs(dir: &Path) -> String {
    let mut out = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "log") {
                out.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            // A test ending does not need a graceful stop: the data goes with the directory.
            let pid = self.dir.path().join("rabbitmq.pid");
            if let Ok(pid) = std::fs::read_to_string(pid) {
                let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
    }
}
