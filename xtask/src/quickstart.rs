//! `cargo xtask quickstart`: the whole system on this machine — RabbitMQ, outpost-cloud and
//! one device running outpostd (identityd, agent, hub and watchdog as containers on the
//! device's own containerd), under docker-compose with the fleet test's images; the
//! simulated sensor deployed by tag, its telemetry streamed to the terminal. It keeps running
//! for exploring; `cargo xtask quickstart --down` removes it.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::e2e::fleet::{Fleet, wait_for};
use crate::e2e::scenarios::{device_config, json, manifest, sensor_running, services_running};
use crate::util::target_dir;

const DEVICE: &str = "device-1";
const EVENTS: &str = "10";
const TOTAL: u32 = 6;

fn step(n: u32, what: &str) {
    eprintln!("\n[{n}/{TOTAL}] {what}");
}

fn fleet() -> Fleet {
    let work = target_dir().join("quickstart");
    // The API port is fixed per machine so that a later `--down` or the printed commands
    // reach the same cloud.
    Fleet {
        project: "outpost-quickstart",
        dir: work.join("run"),
        api_port: 17443,
        outpost: target_dir().join("debug/outpost"),
    }
}

/// Runs the demo (or removes it).
pub fn run(args: &crate::QuickstartArgs) -> anyhow::Result<()> {
    let fleet = fleet();
    let _ = fleet.compose().args(["down", "--volumes", "--remove-orphans", "--timeout", "30"]).status();
    if args.down {
        eprintln!("the quickstart is removed");
        return Ok(());
    }
    let work = target_dir().join("quickstart");
    step(1, "building the binaries and the images (device, cloud, RabbitMQ) from this machine's files");
    crate::e2e::build(&target_dir().join("debug"), &work)?;
    if fleet.dir.exists() {
        std::fs::remove_dir_all(&fleet.dir)?;
    }
    std::fs::create_dir_all(fleet.dir.join("cloud"))?;

    step(2, "starting RabbitMQ and outpost-cloud");
    fleet.compose_run(&["up", "-d", "rabbitmq", "cloud"])?;
    wait_for("the cloud's API", Duration::from_secs(120), || Ok(fleet.cloud_ready().then_some(())))?;
    eprintln!(
        "      operator API https://127.0.0.1:{} (CA and admin token in {})",
        fleet.api_port,
        fleet.dir.join("cloud").display()
    );

    step(3, &format!("registering {DEVICE} in the cloud, tagged env=demo"));
    let created =
        json(&fleet.cloud_cli(&["device", "create", DEVICE, "--tags", r#"{"env": "demo"}"#, "-o", "json"])?)?;
    let key = created["authentication"]["symmetricKey"]["primaryKey"].as_str().context("no key")?;
    std::fs::create_dir_all(fleet.device_dir(DEVICE))?;
    std::fs::write(fleet.device_dir(DEVICE).join("config.toml"), device_config(DEVICE, key))?;
    print!("{}", fleet.cloud_cli(&["device", "list"])?);

    step(4, &format!("starting {DEVICE}: containerd, then outpostd with identityd, agent, hub and watchdog"));
    let started = Instant::now();
    fleet.compose_run(&["up", "-d", DEVICE])?;
    wait_for("the device's services", Duration::from_secs(180), || services_running(&fleet, DEVICE))?;
    eprintln!("      up in {:.1} s", started.elapsed().as_secs_f64());
    print!("{}", fleet.device_cli(DEVICE, &["system", "status"])?);

    step(5, "deploying the simulated sensor to every device tagged env=demo");
    let file = fleet.dir.join("deployment.json");
    std::fs::write(&file, manifest(&format!("outpost/hub:{}", env!("CARGO_PKG_VERSION"))))?;
    let target = "tags.env='demo'";
    print!(
        "{}",
        fleet.cloud_cli(&["deployment", "create", "demo", "-f", &file.display().to_string(), "--target", target])?
    );
    wait_for("the sensor running", Duration::from_secs(120), || sensor_running(&fleet, DEVICE))?;
    print!("{}", fleet.device_cli(DEVICE, &["list"])?);

    step(6, &format!("telemetry arriving in the cloud ({EVENTS} events)"));
    let status = fleet.cloud_command(&["monitor-events", "--device", DEVICE, "-n", EVENTS]).status()?;
    if !status.success() {
        bail!("outpost cloud monitor-events failed");
    }
    print!("{}", fleet.cloud_cli(&["deployment", "show", "demo"])?);
    let compose = format!("docker-compose -p {} -f deploy/compose/docker-compose.yml", fleet.project);
    let cloud = format!(
        "target/debug/outpost cloud --endpoint https://127.0.0.1:{} --ca-file {} --token-file {}",
        fleet.api_port,
        fleet.dir.join("cloud/tls/ca.pem").display(),
        fleet.dir.join("cloud/admin.token").display()
    );
    eprintln!(
        "\nThe demo keeps running. Try:\n  \
         {compose} exec {DEVICE} outpost system status\n  \
         {compose} exec {DEVICE} outpost logs tempSensor --tail 5\n  \
         {cloud} monitor-events\n  \
         {cloud} deployment list\n\
         Remove it with: cargo xtask quickstart --down"
    );
    Ok(())
}
