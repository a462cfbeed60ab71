//! `cargo xtask quickstart`: the whole system on this machine — a private RabbitMQ and
//! outpost-cloud, one device (outpost-identityd, outpost-agent and outpost-hub as local
//! processes on a private containerd), a sample deployment targeted by tag, and the
//! simulated temperature sensor's telemetry streaming to the terminal. Everything lives in a
//! temporary directory and stops at the end.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use outpost_runtime::oci::write_archive;

use crate::agentd::Agentd;
use crate::cloudd::{Cloudd, HUB};
use crate::daemon::{Identityd, write_device_config};
use crate::util::{cargo, sh, target_dir};

const DEVICE: &str = "demo-device";
const EVENTS: &str = "10";

fn step(n: u32, total: u32, what: &str) {
    eprintln!("\n[{n}/{total}] {what}");
}

/// The sample deployment: the simulated sensor, its telemetry routed to the cloud.
fn manifest(image: &str, hub_port: u16) -> String {
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:0.1.0"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
                    "settings": {"image": "outpost/hub:0.1.0"}}
            },
            "modules": {
                "tempSensor": {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
                    "settings": {"image": image, "createOptions": "{}"},
                    "env": {"OUTPOST_HUB_PORT": {"value": hub_port.to_string()}, "OUTPOST_HUB_TLS": {"value": "false"},
                        "SendInterval": {"value": "1"}, "MessageCount": {"value": "1000"}}}
            }
        }},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1",
            "routes": {"sensorToCloud": "FROM /messages/modules/tempSensor/* INTO $upstream"},
            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}}
    }})
    .to_string()
}

/// Runs the demo.
pub fn run() -> anyhow::Result<()> {
    let total = 7;
    step(1, total, "building the binaries (debug) and the sensor's image");
    sh(cargo()
        .args(["build", "--quiet", "-p", "outpost-cloud", "-p", "outpost-identity", "-p", "outpost-agent"])
        .args(["-p", "outpost-hub", "-p", "outpost-cli", "-p", "outpost-samples"]))?;
    let bin = target_dir().join("debug");
    let dir = tempfile::Builder::new().prefix("outpost-quickstart").tempdir()?;
    let root = dir.path();
    let image_ref = "outpost/simulated-temperature-sensor:0.1.0";
    let image = crate::images::sensor_image(&bin)?;
    let archive = root.join("sensor.tar");
    write_archive(&image, image_ref, &archive)?;

    step(2, total, "starting RabbitMQ and outpost-cloud on loopback");
    let cloud = Cloudd::start(&bin, root)?;
    eprintln!("      operator API {}  broker {}  state {}", cloud.endpoint(), cloud.amqp_url(), root.display());

    step(3, total, &format!("registering {DEVICE} in the cloud, tagged env=demo"));
    let key = cloud.create_device(DEVICE, r#"{"env": "demo"}"#)?;
    print!("{}", cloud.cli(&["device", "list"])?);

    step(4, total, "starting the device: containerd, outpost-identityd, outpost-agent, outpost-hub");
    let containerd = outpost_testkit::Containerd::start();
    let namespace = containerd.namespace().to_owned();
    let device_dir = root.join(DEVICE);
    std::fs::create_dir_all(&device_dir)?;
    let config = write_device_config(&device_dir, DEVICE, HUB, Some(&key), "file", "")?;
    let identityd =
        Identityd::start(&bin.join("outpost-identityd"), &config, &device_dir, &device_dir.join("identityd.log"))?;
    let extra = format!("[cloud]\nurl = \"{}\"\n", cloud.amqp_url());
    let agent = Agentd::start_with(
        &bin.join("outpost-agent"),
        &device_dir,
        &identityd,
        &containerd.socket(),
        &namespace,
        &extra,
    )?;
    let outpost = bin.join("outpost");
    let imported =
        Command::new(&outpost).arg("--agent-socket").arg(&agent.socket).arg("import").arg(&archive).output()?;
    if !imported.status.success() {
        bail!("outpost import failed: {}", String::from_utf8_lossy(&imported.stderr));
    }
    let hub_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let hub_config = device_dir.join("hub.toml");
    std::fs::write(
        &hub_config,
        format!(
            "[mqtt]\nbind = \"127.0.0.1:{hub_port}\"\ntls = false\n[https]\nenabled = false\n[identity]\nsocket = \"{}\"\n\
             [admin]\nsocket = \"{}\"\n[metrics]\nenabled = false\n[store]\ndir = \"{}\"\n[routes]\ndeployment_file = \"{}\"\n\
             [cloud]\nurl = \"{}\"\n",
            identityd.socket.display(),
            device_dir.join("run/hub.sock").display(),
            device_dir.join("hub-store").display(),
            device_dir.join("agent/deployment.json").display(),
            cloud.amqp_url()
        ),
    )?;
    let mut hub = Command::new(bin.join("outpost-hub"))
        .arg("--config")
        .arg(&hub_config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(device_dir.join("hub.log"))?)
        .spawn()
        .context("cannot start outpost-hub")?;
    eprintln!("      logs in {}", device_dir.display());

    step(5, total, "deploying the simulated sensor to every device tagged env=demo");
    let file = root.join("deployment.json");
    std::fs::write(&file, manifest(image_ref, hub_port))?;
    print!(
        "{}",
        cloud.cli(&[
            "deployment",
            "create",
            "demo",
            "-f",
            &file.display().to_string(),
            "--target",
            "tags.env='demo'"
        ])?
    );
    let started = Instant::now();
    loop {
        let listed = Command::new(&outpost).arg("--agent-socket").arg(&agent.socket).arg("list").output()?;
        let text = String::from_utf8_lossy(&listed.stdout).into_owned();
        if text.lines().any(|l| l.starts_with("tempSensor") && l.contains("running")) {
            print!("{text}");
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the sensor did not start within 2 minutes:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    step(6, total, &format!("telemetry arriving in the cloud ({EVENTS} events)"));
    let status = Command::new(&outpost)
        .args(["cloud", "--endpoint", &cloud.endpoint(), "--token-file"])
        .arg(&cloud.token_file)
        .args(["monitor-events", "--device", DEVICE, "-n", EVENTS])
        .status()?;
    if !status.success() {
        bail!("outpost cloud monitor-events failed");
    }
    print!("{}", cloud.cli(&["deployment", "show", "demo"])?);

    step(7, total, "stopping everything");
    let _ = Command::new("kill").args(["-TERM", &hub.id().to_string()]).status();
    let _ = hub.wait();
    agent.stop()?;
    identityd.stop()?;
    drop(containerd);
    drop(cloud);
    eprintln!("      done; see docs/api/cloud.md to run the pieces yourself");
    Ok(())
}
