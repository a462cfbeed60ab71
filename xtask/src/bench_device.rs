//! `cargo xtask bench device`: a device's footprint with release binaries on a private
//! containerd — boot time (outpostd started → every service serving → the deployed module
//! running, after a reboot with the deployment in place; and the very first boot, which
//! imports the images), the idle resident memory of every Outpost process together (and of
//! the containerd shims that container mode adds), and the programs' and images' sizes. Both
//! modes: services as containers and as processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::daemon::rss_kib;
use crate::util::{cargo, sh, target_dir};

const PROGRAMS: [&str; 7] =
    ["outpostd", "outpost-identityd", "outpost-agent", "outpost-hub", "outpost-watchdog", "outpost-logger", "outpost"];

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Device {
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

impl Device {
    fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    fn cli(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let run = self.dir.join("run");
        let out = Command::new(self.bin.join("outpost"))
            .arg("--host-socket")
            .arg(run.join("host.sock"))
            .arg("--agent-socket")
            .arg(run.join("agent.sock"))
            .args(args)
            .args(["-o", "json"])
            .output()?;
        if !out.status.success() {
            bail!("outpost {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    fn start(&mut self) -> anyhow::Result<Instant> {
        let started = Instant::now();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("outpostd.log"))?;
        self.child = Some(
            Command::new(self.bin.join("outpostd"))
                .arg("--config")
                .arg(self.config())
                .env("OUTPOST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("cannot start outpostd")?,
        );
        Ok(started)
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            sh(Command::new("kill").args(["-TERM", &child.id().to_string()]))?;
            child.wait()?;
        }
        Ok(())
    }

    /// The services' pids once every one serves.
    fn services_serving(&self) -> Option<Vec<u32>> {
        let status = self.cli(&["system", "status"]).ok()?;
        let services = status["services"].as_array()?;
        let running = services.len() == 4 && services.iter().all(|s| s["state"] == "running");
        running.then(|| services.iter().filter_map(|s| s["pid"].as_u64().and_then(|p| u32::try_from(p).ok())).collect())
    }

    fn module_running(&self) -> bool {
        self.cli(&["list"])
            .ok()
            .and_then(|l| l.as_array().cloned())
            .is_some_and(|modules| modules.iter().any(|m| m["name"] == "tempSensor" && m["status"] == "running"))
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn poll<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn manifest() -> String {
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:0.1.0"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "outpost/hub:0.1.0"}}
            },
            "modules": {"tempSensor": {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
                "settings": {"image": "outpost/simulated-temperature-sensor:0.1.0", "createOptions": "{}"},
                "env": {"SendInterval": {"value": "5"}}}}
        }},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}}}
    }})
    .to_string()
}

/// One mode's figures.
struct Boot {
    first_services: f64,
    services: f64,
    module: f64,
    rss_kib: Vec<(String, u64)>,
    shims_kib: u64,
}

fn shims_kib(containerd_socket: &Path) -> u64 {
    let address = containerd_socket.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("containerd-shim") && cmdline.contains(&address)
        })
        .filter_map(|pid| rss_kib(pid).ok())
        .sum()
}

fn measure(mode: &str, bin: &Path, containerd: &outpost_testkit::Containerd, images: &Path) -> anyhow::Result<Boot> {
    let dir = tempfile::Builder::new().prefix("obd").tempdir_in("/tmp")?;
    let root = dir.path();
    let namespace = format!("{}-{mode}", containerd.namespace());
    std::fs::write(
        root.join("config.toml"),
        format!(
            "[device]\nid = \"bench\"\nhub_hostname = \"bench.local\"\n\
             [paths]\nstate_dir = \"{r}/state\"\nrun_dir = \"{r}/run\"\nlog_dir = \"{r}/log\"\n\
             [containerd]\nsocket = \"{sock}\"\nnamespace = \"{namespace}\"\nsystem_namespace = \"{namespace}-system\"\n\
             [runtime]\nmode = \"{mode}\"\nbin_dir = \"{bin}\"\nimage_dir = \"{images}\"\n\
             [watchdog]\nmetrics_bind = \"\"\n\
             [hub]\nmqtt_bind = \"127.0.0.1:{}\"\nmqtts_bind = \"127.0.0.1:{}\"\nhttps_bind = \"127.0.0.1:{}\"\nmetrics_bind = \"\"\n",
            free_port()?,
            free_port()?,
            free_port()?,
            r = root.display(),
            sock = containerd.socket().display(),
            bin = bin.display(),
            images = images.display(),
        ),
    )?;
    // The module's image is on the device already (as after its first deployment).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let runtime = outpost_runtime::containerd::Containerd::connect(&containerd.socket(), &namespace).await?;
        runtime.import_archive(&images.join("modules/simulated-temperature-sensor.tar"), None).await?;
        anyhow::Ok(())
    })?;
    let mut device = Device { dir: root.to_owned(), bin: bin.to_owned(), child: None };

    let started = device.start()?;
    poll("the services serving (first boot)", Duration::from_secs(120), || device.services_serving())?;
    let first_services = started.elapsed().as_secs_f64();
    let file = root.join("deployment.json");
    std::fs::write(&file, manifest())?;
    device.cli(&["deploy", "-f", &file.display().to_string()])?;
    poll("the module running", Duration::from_secs(60), || device.module_running().then_some(()))?;
    device.stop()?;

    // A reboot: the deployment is in place, the images are there.
    let started = device.start()?;
    let pids = poll("the services serving", Duration::from_secs(120), || device.services_serving())?;
    let services = started.elapsed().as_secs_f64();
    poll("the module running", Duration::from_secs(60), || device.module_running().then_some(()))?;
    let module = started.elapsed().as_secs_f64();

    std::thread::sleep(Duration::from_secs(20));
    let mut rss = vec![("outpostd".to_owned(), rss_kib(device.pid())?)];
    for (name, pid) in ["identityd", "agent", "hub", "watchdog"].iter().zip(pids) {
        rss.push(((*name).to_owned(), rss_kib(pid)?));
    }
    let shims = if mode == "container" { shims_kib(&containerd.socket()) } else { 0 };
    device.stop()?;
    Ok(Boot { first_services, services, module, rss_kib: rss, shims_kib: shims })
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Runs the benchmark and prints its tables.
pub fn run() -> anyhow::Result<()> {
    eprintln!("building release binaries");
    sh(cargo()
        .args(["build", "--release", "--quiet", "-p", "outpost-host", "-p", "outpost-identity", "-p", "outpost-agent"])
        .args(["-p", "outpost-hub", "-p", "outpost-watchdog", "-p", "outpost-cli", "-p", "outpost-samples"]))?;
    let bin = target_dir().join("release");
    let work = tempfile::Builder::new().prefix("outpost-bench-device").tempdir()?;
    let images = work.path().join("images");
    crate::images::write_service_archives(&bin, &images)?;
    std::fs::create_dir_all(images.join("modules"))?;
    let sensor = crate::images::sensor_image(&bin)?;
    outpost_runtime::oci::write_archive(
        &sensor,
        "outpost/simulated-temperature-sensor:0.1.0",
        &images.join("modules/simulated-temperature-sensor.tar"),
    )?;
    let containerd = outpost_testkit::Containerd::start();

    println!("| program | size |\n|---|---|");
    for program in PROGRAMS {
        println!("| `{program}` | {} |", mib(std::fs::metadata(bin.join(program))?.len() / 1024));
    }
    println!("\n| image | archive |\n|---|---|");
    for name in ["identityd", "agent", "hub", "watchdog"] {
        println!("| `outpost/{name}` | {} |", mib(std::fs::metadata(images.join(format!("{name}.tar")))?.len() / 1024));
    }

    for mode in ["container", "process"] {
        eprintln!("measuring {mode} mode");
        let boot = measure(mode, &bin, &containerd, &images)?;
        let total: u64 = boot.rss_kib.iter().map(|(_, k)| k).sum();
        println!("\n**{mode} mode**\n\n| measurement | value |\n|---|---|");
        println!(
            "| first boot: outpostd started → 4 services serving (imports the images) | {:.2} s |",
            boot.first_services
        );
        println!("| boot: outpostd started → 4 services serving | {:.2} s |", boot.services);
        println!("| boot: outpostd started → the deployed module running | {:.2} s |", boot.module);
        for (name, kib) in &boot.rss_kib {
            println!("| idle RSS {name} | {} |", mib(*kib));
        }
        println!("| **idle RSS, every Outpost process** | **{}** |", mib(total));
        if mode == "container" {
            println!("| idle RSS, containerd shims of the services and the module | {} |", mib(boot.shims_kib));
        }
    }
    Ok(())
}
