//! A control plane for the benchmarks and the demo: a private RabbitMQ node (its users
//! checked by the cloud) and outpost-cloud as a child process, plaintext on loopback, with
//! the `outpost cloud` CLI pointed at it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use outpost_testkit::RabbitMq;

/// The hub host name devices sign tokens for.
pub const HUB: &str = "outpost.local";

/// RabbitMQ and outpost-cloud.
pub struct Cloudd {
    /// The broker.
    pub rabbit: RabbitMq,
    child: Child,
    /// The operator API's port on 127.0.0.1.
    pub api_port: u16,
    /// The generated admin token's file.
    pub token_file: PathBuf,
    outpost: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Cloudd {
    /// Starts both with their state under `root`; `bin` holds the release binaries.
    pub fn start(bin: &Path, root: &Path) -> anyhow::Result<Self> {
        let (api_port, auth_port) = (free_port()?, free_port()?);
        let rabbit = RabbitMq::start(&format!("http://127.0.0.1:{auth_port}"), "outpost");
        let config = root.join("cloud.toml");
        std::fs::write(
            &config,
            format!(
                "[cloud]\nhub_hostname = \"{HUB}\"\nstate_dir = \"{state}\"\n[api]\nbind = \"127.0.0.1:{api_port}\"\ntls = false\n\
                 [broker_auth]\nbind = \"127.0.0.1:{auth_port}\"\n[amqp]\nurl = \"amqp://127.0.0.1:{amqp}\"\n",
                state = root.join("cloud").display(),
                amqp = rabbit.port()
            ),
        )?;
        let log = root.join("cloud.log");
        let child = Command::new(bin.join("outpost-cloud"))
            .arg("--config")
            .arg(&config)
            .env("OUTPOST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("cannot start outpost-cloud")?;
        let mut cloud =
            Self { rabbit, child, api_port, token_file: root.join("cloud/admin.token"), outpost: bin.join("outpost") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", api_port)).is_err() || !cloud.token_file.exists() {
            if let Some(status) = cloud.child.try_wait()? {
                bail!("outpost-cloud exited with {status}; see {}", log.display());
            }
            if Instant::now() > deadline {
                bail!("outpost-cloud did not listen within 20 s; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(cloud)
    }

    /// The cloud's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The operator API's URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// The broker URL devices use.
    pub fn amqp_url(&self) -> String {
        format!("amqp://127.0.0.1:{}", self.rabbit.port())
    }

    /// Runs `outpost cloud ARGS`; its standard output.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.outpost)
            .args(["cloud", "--endpoint", &self.endpoint(), "--token-file"])
            .arg(&self.token_file)
            .args(args)
            .output()
            .context("cannot run outpost")?;
        if !out.status.success() {
            bail!("outpost cloud {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Registers `device` with `tags` (JSON); its primary key.
    pub fn create_device(&self, device: &str, tags: &str) -> anyhow::Result<String> {
        let created: serde_json::Value =
            serde_json::from_str(&self.cli(&["device", "create", device, "--tags", tags, "-o", "json"])?)?;
        Ok(created["authentication"]["symmetricKey"]["primaryKey"].as_str().context("no key")?.to_owned())
    }
}

impl Drop for Cloudd {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}
