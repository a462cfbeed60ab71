//! The fleet's scenarios, in order: provisioning, a deployment by tag, telemetry, a device
//! cut off from the network (its sensor crashing and restarted offline), a runtime update
//! to a broken hub image rolled back, and a device rebooted with messages queued.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::fleet::{Fleet, step, wait_for};
use super::images::BROKEN_HUB;
use super::telemetry::Telemetry;

const DEVICES: [&str; 2] = ["device-1", "device-2"];
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The sample deployment: the sensor (MQTT over TLS to the hub), one message a second,
/// routed to the cloud; the runtime's images as outpostd runs them (or `hub_image`).
pub fn manifest(hub_image: &str) -> String {
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": format!("outpost/agent:{VERSION}")}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
                    "settings": {"image": hub_image}}
            },
            "modules": {
                "tempSensor": {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
                    "settings": {"image": format!("outpost/simulated-temperature-sensor:{VERSION}"), "createOptions": "{}"},
                    "env": {"SendInterval": {"value": "1"}, "MessageCount": {"value": "0"}}}
            }
        }},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1",
            "routes": {"sensorToCloud": "FROM /messages/modules/tempSensor/* INTO $upstream"},
            "storeAndForwardConfiguration": {"timeToLiveSecs": 86400}}}
    }})
    .to_string()
}

pub fn device_config(device: &str, key: &str) -> String {
    format!(
        "# {device} in the compose fleet (written by cargo xtask e2e).\n\
         [device]\nid = \"{device}\"\nhub_hostname = \"outpost.local\"\nkey = \"{key}\"\n\n\
         [cloud]\nurl = \"amqp://rabbitmq:5672\"\n\n\
         [runtime]\nmode = \"container\"\nupdate_healthy_within_secs = 30\nstop_grace_secs = 10\nmodule_stop_grace_secs = 10\n\n\
         [watchdog]\ninterval_secs = 5\n"
    )
}

pub fn json(text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("not JSON: {text}"))
}

/// Whether every runtime service of `device` is running.
pub fn services_running(fleet: &Fleet, device: &str) -> anyhow::Result<Option<()>> {
    let status = json(&fleet.device_cli(device, &["system", "status", "-o", "json"])?)?;
    let services = status["services"].as_array().context("no services")?;
    let all = services.len() == 4 && services.iter().all(|s| s["state"] == "running");
    if !all {
        bail!(
            "services: {}",
            services.iter().map(|s| format!("{}={}", s["name"], s["state"])).collect::<Vec<_>>().join(" ")
        );
    }
    Ok(Some(()))
}

/// The tempSensor module of `device` as `outpost show -o json` prints it, once it runs.
pub fn sensor_running(fleet: &Fleet, device: &str) -> anyhow::Result<Option<Value>> {
    let module = json(&fleet.device_cli(device, &["show", "tempSensor", "-o", "json"])?)?;
    Ok((module["status"] == "running").then_some(module))
}

/// Messages the hub of `device` still holds for the cloud.
fn upstream_queued(fleet: &Fleet, device: &str) -> anyhow::Result<u64> {
    let status = json(&fleet.device_cli(device, &["hub", "status", "-o", "json"])?)?;
    Ok(status["queues"]
        .as_array()
        .context("no queues")?
        .iter()
        .filter(|q| q["endpoint"] == "$upstream")
        .filter_map(|q| q["messages"].as_u64())
        .sum())
}

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("docker").args(args).output().context("cannot run docker")?;
    if !out.status.success() {
        bail!("docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs every scenario.
pub fn run(fleet: &Fleet, offline: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    provision(fleet)?;
    let telemetry = Telemetry::start(fleet)?;
    deploy_by_tag(fleet, &telemetry)?;
    offline_and_back(fleet, &telemetry, offline)?;
    rollback(fleet, &telemetry)?;
    reboot(fleet, &telemetry)?;
    eprintln!("\nend-to-end: every scenario passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn provision(fleet: &Fleet) -> anyhow::Result<()> {
    step("provisioning: RabbitMQ and the cloud, two devices registered and started");
    fleet.compose_run(&["up", "-d", "rabbitmq", "cloud"])?;
    wait_for("the cloud's API", Duration::from_secs(120), || Ok(fleet.cloud_ready().then_some(())))?;
    for (device, site) in DEVICES.iter().zip(["north", "south"]) {
        let tags = format!("{{\"fleet\": \"e2e\", \"site\": \"{site}\"}}");
        let created = json(&fleet.cloud_cli(&["device", "create", device, "--tags", &tags, "-o", "json"])?)?;
        let key = created["authentication"]["symmetricKey"]["primaryKey"].as_str().context("no key")?;
        std::fs::create_dir_all(fleet.device_dir(device))?;
        std::fs::write(fleet.device_dir(device).join("config.toml"), device_config(device, key))?;
    }
    fleet.compose_run(&["up", "-d", "device-1", "device-2"])?;
    for device in DEVICES {
        let since = Instant::now();
        wait_for(&format!("{device}'s services running"), Duration::from_secs(180), || {
            services_running(fleet, device)
        })?;
        eprintln!("{device}: identityd, agent, hub, watchdog running ({:.1} s)", since.elapsed().as_secs_f64());
        wait_for(&format!("{device} connected to the cloud"), Duration::from_secs(60), || {
            let shown = json(&fleet.cloud_cli(&["device", "show", device, "-o", "json"])?)?;
            Ok((shown["connectionState"] == "connected").then_some(()))
        })?;
    }
    Ok(())
}

fn deploy_by_tag(fleet: &Fleet, telemetry: &Telemetry) -> anyhow::Result<()> {
    step("a deployment targeted by tag reaches both devices; their telemetry reaches the cloud");
    let file = fleet.dir.join("sensor.json");
    std::fs::write(&file, manifest(&format!("outpost/hub:{VERSION}")))?;
    let created = Instant::now();
    fleet.cloud_cli(&[
        "deployment",
        "create",
        "sensor",
        "-f",
        &file.display().to_string(),
        "--target",
        "tags.fleet='e2e'",
        "--priority",
        "10",
    ])?;
    for device in DEVICES {
        wait_for(&format!("tempSensor running on {device}"), Duration::from_secs(120), || {
            sensor_running(fleet, device)
        })?;
        eprintln!("{device}: tempSensor running {:.1} s after the deployment", created.elapsed().as_secs_f64());
    }
    wait_for("both agents reporting success", Duration::from_secs(60), || {
        let shown = json(&fleet.cloud_cli(&["deployment", "show", "sensor", "-o", "json"])?)?;
        let results = &shown["systemMetrics"]["results"];
        Ok((results["reportedSuccessfulCount"] == 2).then_some(()))
    })?;
    for device in DEVICES {
        wait_for(&format!("telemetry from {device}"), Duration::from_secs(60), || {
            Ok((telemetry.count(device) >= 3).then_some(()))
        })?;
        telemetry.no_gaps(device)?;
    }
    Ok(())
}

fn offline_and_back(fleet: &Fleet, telemetry: &Telemetry, offline: Duration) -> anyhow::Result<()> {
    step(&format!(
        "device-1 cut off from the network for {} s; its sensor crashes and is restarted offline",
        offline.as_secs()
    ));
    let device = "device-1";
    let before = telemetry.count(device);
    docker(&["network", "disconnect", &fleet.network(), &fleet.container(device)])?;
    let cut_at = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let sensor = sensor_running(fleet, device)?.context("tempSensor is not running")?;
    let restarts = sensor["restarts"].as_u64().unwrap_or(0);
    fleet.exec(device, &["sh", "-c", "kill -9 $(pidof simulated-temperature-sensor)"])?;
    wait_for("the crashed sensor restarted offline", Duration::from_secs(90), || {
        Ok(sensor_running(fleet, device)?.filter(|m| m["restarts"].as_u64().unwrap_or(0) > restarts))
    })?;
    eprintln!("{device}: tempSensor restarted by the agent while offline");
    let remaining = offline.saturating_sub(cut_at.elapsed());
    std::thread::sleep(remaining);
    let queued = upstream_queued(fleet, device)?;
    eprintln!("{device}: {queued} messages queued for the cloud after {} s offline", cut_at.elapsed().as_secs());
    if telemetry.count(device) > before + 2 {
        bail!("telemetry kept arriving from a device without a network");
    }
    docker(&["network", "connect", "--alias", device, &fleet.network(), &fleet.container(device)])?;
    let back = Instant::now();
    wait_for("the queue drained to the cloud", Duration::from_secs(180), || {
        Ok((upstream_queued(fleet, device)? == 0).then_some(()))
    })?;
    // What the hub sent is in the cloud's stream a moment later.
    std::thread::sleep(Duration::from_secs(3));
    telemetry.no_gaps(device)?;
    let runs = telemetry.runs(device);
    if runs.len() < 2 {
        bail!("the sensor's run after its crash did not reach the cloud (runs: {runs:?})");
    }
    eprintln!(
        "{device}: back online, {} messages delivered in {:.1} s, none missing ({} runs of the sensor)",
        telemetry.count(device) - before,
        back.elapsed().as_secs_f64(),
        runs.len()
    );
    Ok(())
}

fn rollback(fleet: &Fleet, telemetry: &Telemetry) -> anyhow::Result<()> {
    step("a runtime update to a broken hub image on device-2 is rolled back and reported");
    let device = "device-2";
    let file = fleet.dir.join("broken-hub.json");
    std::fs::write(&file, manifest(BROKEN_HUB))?;
    fleet.cloud_cli(&[
        "deployment",
        "create",
        "broken-hub",
        "-f",
        &file.display().to_string(),
        "--target",
        "tags.site='south'",
        "--priority",
        "20",
    ])?;
    let reason = wait_for("the failed update reported to the cloud", Duration::from_secs(180), || {
        let shown = json(&fleet.cloud_cli(&["deployment", "show", "broken-hub", "-o", "json"])?)?;
        if shown["systemMetrics"]["results"]["reportedFailedCount"] != 1 {
            return Ok(None);
        }
        let twin = json(&fleet.cloud_cli(&["twin", "show", device, "--module", "$edgeAgent", "-o", "json"])?)?;
        Ok(twin["properties"]["reported"]["lastDesiredStatus"]["description"].as_str().map(str::to_owned))
    })?;
    if !reason.contains("rolled back") {
        bail!("the failure does not say it was rolled back: {reason}");
    }
    eprintln!("{device}: {reason}");
    wait_for(&format!("{device}'s services running"), Duration::from_secs(60), || services_running(fleet, device))?;
    let status = json(&fleet.device_cli(device, &["system", "status", "-o", "json"])?)?;
    let hub = status["services"].as_array().and_then(|s| s.iter().find(|s| s["name"] == "hub")).context("no hub")?;
    if hub["image"] != format!("outpost/hub:{VERSION}") {
        bail!("the hub runs {} after the rollback", hub["image"]);
    }
    fleet.cloud_cli(&["deployment", "delete", "broken-hub"])?;
    let count = telemetry.count(device);
    wait_for("telemetry after the rollback", Duration::from_secs(60), || {
        Ok((telemetry.count(device) > count + 2).then_some(()))
    })?;
    telemetry.no_gaps(device)
}

fn reboot(fleet: &Fleet, telemetry: &Telemetry) -> anyhow::Result<()> {
    step("device-2 restarted (a reboot) with messages queued: modules and queues come back");
    let device = "device-2";
    docker(&["network", "disconnect", &fleet.network(), &fleet.container(device)])?;
    std::thread::sleep(Duration::from_secs(10));
    let queued = upstream_queued(fleet, device)?;
    if queued == 0 {
        bail!("nothing queued while offline");
    }
    let runs_before = telemetry.runs(device).len();
    fleet.compose_run(&["restart", device])?;
    wait_for(&format!("{device}'s services running after the restart"), Duration::from_secs(180), || {
        services_running(fleet, device)
    })?;
    wait_for("tempSensor running after the restart", Duration::from_secs(120), || sensor_running(fleet, device))?;
    let still = upstream_queued(fleet, device)?;
    eprintln!("{device}: {queued} messages queued before the restart, {still} after it");
    if still < queued {
        bail!("the hub's queue lost messages across the restart ({queued} → {still})");
    }
    docker(&["network", "connect", "--alias", device, &fleet.network(), &fleet.container(device)])?;
    wait_for("the queue drained to the cloud", Duration::from_secs(180), || {
        Ok((upstream_queued(fleet, device)? == 0).then_some(()))
    })?;
    std::thread::sleep(Duration::from_secs(3));
    telemetry.no_gaps(device)?;
    if telemetry.runs(device).len() <= runs_before {
        bail!("no telemetry from the sensor's run after the restart");
    }
    eprintln!("{device}: every queued message delivered after the restart");
    Ok(())
}
