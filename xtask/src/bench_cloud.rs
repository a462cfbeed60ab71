//! `cargo xtask bench cloud`: the control plane on this machine with a private RabbitMQ.
//!
//! 1. **Upstream drain**: a hub holding a backlog of N module messages routed to
//!    `$upstream` (filled while the broker is down) drains it to RabbitMQ with publisher
//!    confirms once the broker is back; time and rate until the hub's upstream queue is empty.
//! 2. **Deployment → running**: N devices (each outpost-identityd + outpost-agent on its own
//!    containerd namespace) follow the cloud; time from `outpost cloud deployment create` to
//!    the module running on every device, and to every agent reporting success.
//! 3. **Fleet**: K simulated devices (AMQP connections authenticated by the cloud, telemetry
//!    every 60 s each): the cloud's RSS and CPU while they sign in and while they hold.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use outpost_runtime::oci::{ImageBuilder, write_archive};

use crate::agentd::Agentd;
use crate::cloudd::{Cloudd, HUB};
use crate::daemon::{Identityd, cpu_seconds, rss_kib, write_device_config};
use crate::util::{cargo, sh, target_dir};

const IMAGE: &str = "outpost.bench/busybox:1";
const SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

fn system_modules(modules: &str) -> String {
    format!(
        r#"{{"modulesContent": {{
        "$edgeAgent": {{"properties.desired": {{"schemaVersion": "1.1", "runtime": {{"type": "docker", "settings": {{}}}},
            "systemModules": {{"edgeAgent": {{"type": "docker", "settings": {{"image": "outpost/agent:1"}}}},
                "edgeHub": {{"type": "docker", "status": "running", "restartPolicy": "always", "settings": {{"image": "outpost/hub:1"}}}}}},
            "modules": {{ {modules} }} }}}},
        "$edgeHub": {{"properties.desired": {{"schemaVersion": "1.1", "routes": {{"up": "FROM /messages/modules/sensor/* INTO $upstream"}},
            "storeAndForwardConfiguration": {{"timeToLiveSecs": 86400}}}}}}}}}}"#
    )
}

/// The upstream depth of the hub behind `socket` (0 when there is no upstream queue).
fn upstream_depth(outpost: &Path, socket: &Path) -> anyhow::Result<u64> {
    let out = Command::new(outpost).arg("--hub-socket").arg(socket).args(["hub", "status", "-o", "json"]).output()?;
    if !out.status.success() {
        bail!("outpost hub status failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(status["queues"]
        .as_array()
        .map(|queues| {
            queues.iter().filter(|q| q["endpoint"] == "$upstream").filter_map(|q| q["messages"].as_u64()).sum()
        })
        .unwrap_or(0))
}

struct Drain {
    backlog: u64,
    fill_rate: f64,
    /// Broker back → the first messages confirmed (the link's reconnection backoff).
    reconnect: f64,
    /// First messages confirmed → queue empty.
    seconds: f64,
    hub_rss_kib: u64,
}

fn drain(bin: &Path, cloud: &mut Cloudd, root: &Path, backlog: u64) -> anyhow::Result<Drain> {
    let key = cloud.create_device("edge", r#"{"role": "drain"}"#)?;
    let dir = root.join("edge");
    std::fs::create_dir_all(&dir)?;
    let config = write_device_config(&dir, "edge", HUB, Some(&key), "file", "")?;
    let identityd = Identityd::start(&bin.join("outpost-identityd"), &config, &dir, &dir.join("identityd.log"))?;
    let outpost = |args: &[&str]| -> anyhow::Result<String> {
        let out =
            Command::new(bin.join("outpost")).arg("--identity-socket").arg(&identityd.socket).args(args).output()?;
        if !out.status.success() {
            bail!("outpost {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    outpost(&["identity", "create", "sensor"])?;
    let token = outpost(&["identity", "token", "sensor", "--ttl", "3600"])?;
    let deployment = dir.join("deployment.json");
    std::fs::write(&deployment, system_modules(""))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let admin = dir.join("hub.sock");
    let hub_config = dir.join("hub.toml");
    std::fs::write(
        &hub_config,
        format!(
            "[mqtt]\nbind = \"127.0.0.1:{port}\"\ntls = false\n[https]\nenabled = false\n[identity]\nsocket = \"{}\"\n\
             [admin]\nsocket = \"{}\"\n[metrics]\nenabled = false\n[store]\ndir = \"{}\"\n[routes]\ndeployment_file = \"{}\"\n\
             [cloud]\nurl = \"{}\"\n",
            identityd.socket.display(),
            admin.display(),
            dir.join("store").display(),
            deployment.display(),
            cloud.amqp_url()
        ),
    )?;
    // The backlog builds while the broker is down.
    cloud.rabbit.stop();
    let mut hub = Command::new(bin.join("outpost-hub"))
        .arg("--config")
        .arg(&hub_config)
        .env("OUTPOST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("hub.log"))?)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("outpost-hub did not listen");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2));
    eprintln!("filling the hub's upstream queue with {backlog} messages");
    let generator = target_dir().join("release/examples/mqtt_load");
    let out = Command::new(generator)
        .args(["upstream", &port.to_string(), &backlog.to_string(), "edge", "sensor", HUB, &token])
        .output()?;
    if !out.status.success() {
        bail!("mqtt_load upstream failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let filled: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let queued = upstream_depth(&bin.join("outpost"), &admin)?;
    if queued < backlog {
        bail!("only {queued} of {backlog} messages are queued upstream");
    }
    eprintln!("broker back; draining");
    cloud.rabbit.start_again();
    let started = Instant::now();
    let mut hub_rss_kib = 0;
    let mut first_sent = None;
    loop {
        hub_rss_kib = hub_rss_kib.max(rss_kib(hub.id())?);
        let depth = upstream_depth(&bin.join("outpost"), &admin)?;
        if depth < queued && first_sent.is_none() {
            first_sent = Some(Instant::now());
        }
        if depth == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("{depth} messages still queued after 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let first_sent = first_sent.unwrap_or(started);
    let reconnect = first_sent.duration_since(started).as_secs_f64();
    let seconds = first_sent.elapsed().as_secs_f64();
    let _ = Command::new("kill").args(["-TERM", &hub.id().to_string()]).status();
    let _ = hub.wait();
    identityd.stop()?;
    Ok(Drain { backlog, fill_rate: filled["rate"].as_f64().unwrap_or(0.0), reconnect, seconds, hub_rss_kib })
}

struct Rollout {
    devices: usize,
    running: Duration,
    reported: Duration,
}

fn running_on(outpost: &Path, socket: &Path, module: &str) -> bool {
    Command::new(outpost)
        .arg("--agent-socket")
        .arg(socket)
        .args(["list", "-o", "json"])
        .output()
        .ok()
        .and_then(|out| serde_json::from_slice::<serde_json::Value>(&out.stdout).ok())
        .and_then(|list| {
            list.as_array().map(|modules| modules.iter().any(|m| m["name"] == module && m["status"] == "running"))
        })
        .unwrap_or(false)
}

fn rollout(bin: &Path, cloud: &Cloudd, root: &Path, devices: usize) -> anyhow::Result<Rollout> {
    let containerd = outpost_testkit::Containerd::start();
    let image = ImageBuilder::new()
        .file("/bin/busybox", Path::new("/bin/busybox"))?
        .symlink("/bin/sh", "/bin/busybox")
        .symlink("/bin/sleep", "/bin/busybox")
        .entrypoint(&["/bin/sh", "-c"])
        .build()?;
    let archive = root.join("busybox.tar");
    write_archive(&image, IMAGE, &archive)?;
    let mut fleet = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for n in 0..devices {
        let id = format!("line-{n:02}");
        let key = cloud.create_device(&id, r#"{"site": "bench"}"#)?;
        let dir = root.join(&id);
        std::fs::create_dir_all(&dir)?;
        let namespace = format!("{}-{n}", containerd.namespace());
        rt.block_on(async {
            let client = outpost_runtime::containerd::Containerd::connect(&containerd.socket(), &namespace).await?;
            client.import_archive(&archive, None).await?;
            Ok::<_, anyhow::Error>(())
        })?;
        let config = write_device_config(&dir, &id, HUB, Some(&key), "file", "")?;
        let identityd = Identityd::start(&bin.join("outpost-identityd"), &config, &dir, &dir.join("identityd.log"))?;
        let extra = format!("[cloud]\nurl = \"{}\"\nreport_interval_secs = 1\n", cloud.amqp_url());
        let agent =
            Agentd::start_with(&bin.join("outpost-agent"), &dir, &identityd, &containerd.socket(), &namespace, &extra)?;
        fleet.push((identityd, agent));
    }
    // Let every agent sign in before the clock starts.
    std::thread::sleep(Duration::from_secs(3));
    let manifest = root.join("rollout.json");
    let module = format!(
        r#""sensor": {{"version": "1", "type": "docker", "status": "running", "restartPolicy": "always",
            "settings": {{"image": "{IMAGE}", "createOptions": "{{\"Cmd\":[\"{SCRIPT}\"]}}"}}}}"#
    );
    std::fs::write(&manifest, system_modules(&module))?;
    let started = Instant::now();
    cloud.cli(&[
        "deployment",
        "create",
        "bench",
        "-f",
        &manifest.display().to_string(),
        "--target",
        "tags.site='bench'",
    ])?;
    let outpost = bin.join("outpost");
    let mut pending: Vec<&Agentd> = fleet.iter().map(|(_, agent)| agent).collect();
    while !pending.is_empty() {
        pending.retain(|agent| !running_on(&outpost, &agent.socket, "sensor"));
        if started.elapsed() > Duration::from_secs(300) {
            bail!("{} devices never ran the module", pending.len());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let running = started.elapsed();
    loop {
        let shown: serde_json::Value =
            serde_json::from_str(&cloud.cli(&["deployment", "show", "bench", "-o", "json"])?)?;
        if shown["systemMetrics"]["results"]["reportedSuccessfulCount"].as_u64() == Some(devices as u64) {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("not every agent reported success: {shown}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let reported = started.elapsed();
    for (identityd, agent) in fleet {
        agent.stop()?;
        identityd.stop()?;
    }
    Ok(Rollout { devices, running, reported })
}

struct FleetFigures {
    result: serde_json::Value,
    idle_rss_kib: u64,
    peak_rss_kib: u64,
    sign_in_cpu: f64,
    hold_cpu: f64,
    hold_seconds: u64,
}

fn fleet(cloud: &Cloudd, count: usize, hold_seconds: u64) -> anyhow::Result<FleetFigures> {
    let idle_rss_kib = rss_kib(cloud.pid())?;
    let tool = target_dir().join("release/examples/cloud_load");
    let mut child = Command::new(tool)
        .arg(cloud.endpoint())
        .arg(&cloud.token_file)
        .args([&cloud.rabbit.port().to_string(), HUB, &count.to_string(), "60", &hold_seconds.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start cloud_load")?;
    let cpu_start = cpu_seconds(cloud.pid())?;
    let mut lines = std::io::BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let mut peak_rss_kib = idle_rss_kib;
    let Some(first) = lines.next() else {
        let status = child.wait()?;
        bail!("cloud_load ended without a word ({status})");
    };
    let first = first?;
    if !first.starts_with("connected") {
        bail!("cloud_load: {first}");
    }
    let cpu_connected = cpu_seconds(cloud.pid())?;
    peak_rss_kib = peak_rss_kib.max(rss_kib(cloud.pid())?);
    let last = lines.next().context("cloud_load ended early")??;
    let cpu_end = cpu_seconds(cloud.pid())?;
    peak_rss_kib = peak_rss_kib.max(rss_kib(cloud.pid())?);
    let _ = child.wait();
    Ok(FleetFigures {
        result: serde_json::from_str(&last)?,
        idle_rss_kib,
        peak_rss_kib,
        sign_in_cpu: cpu_connected - cpu_start,
        hold_cpu: cpu_end - cpu_connected,
        hold_seconds,
    })
}

fn print_drain(drained: &Drain) {
    println!(
        "| upstream drain, {} messages queued in the hub (filled at {:.0} msg/s), confirms from RabbitMQ | {:.1} s, {:.0} msg/s (first confirms {:.1} s after the broker was back); hub RSS at most {:.0} MiB |",
        drained.backlog,
        drained.fill_rate,
        drained.seconds,
        drained.backlog as f64 / drained.seconds,
        drained.reconnect,
        drained.hub_rss_kib as f64 / 1024.0
    );
}

fn print_rollout(rolled: &Rollout) {
    println!(
        "| deployment create → module running on {} devices | {} ms (every agent reporting success: {} ms) |",
        rolled.devices,
        rolled.running.as_millis(),
        rolled.reported.as_millis()
    );
}

fn print_fleet(fleet: &FleetFigures) {
    let r = &fleet.result;
    println!(
        "| {} simulated devices signing in (auth by the cloud) | {} connected in {} s (registered in {} s); cloud CPU {:.1} s |",
        r["devices"], r["connected"], r["connect_seconds"], r["register_seconds"], fleet.sign_in_cpu
    );
    println!(
        "| holding them, telemetry every 60 s each ({} messages in {} s) | cloud CPU {:.1} % of a core; RSS {:.1} MiB idle, {:.1} MiB at most |",
        r["published"],
        fleet.hold_seconds,
        100.0 * fleet.hold_cpu / fleet.hold_seconds as f64,
        fleet.idle_rss_kib as f64 / 1024.0,
        fleet.peak_rss_kib as f64 / 1024.0
    );
}

/// Runs the measurements (`only`: one of `drain`, `rollout`, `fleet`), each printed as it
/// completes.
pub fn run(
    backlog: u64,
    devices: usize,
    connections: usize,
    hold_seconds: u64,
    only: Option<&str>,
) -> anyhow::Result<()> {
    eprintln!("building release binaries");
    sh(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "outpost-cloud",
        "-p",
        "outpost-hub",
        "-p",
        "outpost-identity",
        "-p",
        "outpost-agent",
        "-p",
        "outpost-cli",
    ]))?;
    sh(cargo().args(["build", "--release", "--quiet", "-p", "outpost-hub", "--example", "mqtt_load"]))?;
    sh(cargo().args(["build", "--release", "--quiet", "-p", "outpost-cloud", "--example", "cloud_load"]))?;
    let bin = target_dir().join("release");
    let dir = tempfile::tempdir_in(target_dir())?;
    let mut cloud = Cloudd::start(&bin, dir.path())?;
    let wanted = |what: &str| only.is_none_or(|only| only == what);

    println!("| measurement | result |");
    println!("|---|---|");
    if wanted("drain") {
        print_drain(&drain(&bin, &mut cloud, dir.path(), backlog)?);
    }
    if wanted("rollout") {
        print_rollout(&rollout(&bin, &cloud, dir.path(), devices)?);
    }
    if wanted("fleet") {
        print_fleet(&fleet(&cloud, connections, hold_seconds)?);
    }
    Ok(())
}
