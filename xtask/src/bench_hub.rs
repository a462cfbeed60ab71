//! `cargo xtask bench hub`: outpost-hub and Mosquitto side by side on this machine, each
//! broker pinned to core 0 and the same load generator (`crates/hub/examples/mqtt_load.rs`)
//! pinned to core 1: QoS 0 and QoS 1 (window 100) throughput 1→1 with 64-byte payloads,
//! medians of three runs, plus idle RSS.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::daemon::rss_kib;
use crate::util::{apt_install, cargo, sh, target_dir};

struct Broker {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start(name: &'static str, program: &str, args: &[String], dir: &Path, port: u16) -> anyhow::Result<Broker> {
    let child = Command::new("taskset")
        .args(["-c", "0", program])
        .args(args)
        .env("OUTPOST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log")))?)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    wait_for(port)?;
    Ok(Broker { name, child, port })
}

fn load(generator: &Path, port: u16, qos: u8, messages: u32) -> anyhow::Result<f64> {
    let out = Command::new("taskset")
        .args(["-c", "1"])
        .arg(generator)
        .args([port.to_string(), qos.to_string(), messages.to_string()])
        .output()?;
    if !out.status.success() {
        bail!("load generator failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    result["rate"].as_f64().context("no rate in the load generator's output")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the benchmark with `messages` per run.
pub fn run(messages: u32) -> anyhow::Result<()> {
    apt_install(&["mosquitto", "util-linux"])?;
    eprintln!("building release binaries");
    sh(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "outpost-hub",
        "--bin",
        "outpost-hub",
        "--example",
        "mqtt_load",
    ]))?;
    let bin = target_dir().join("release");
    let generator = bin.join("examples/mqtt_load");
    let dir = tempfile::tempdir()?;

    let mosquitto_port = free_port()?;
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("user root\nlistener {mosquitto_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )?;
    let hub_port = free_port()?;
    let hub_conf = dir.path().join("hub.toml");
    std::fs::write(
        &hub_conf,
        format!(
            "[mqtt]\nbind = \"127.0.0.1:{hub_port}\"\n[identity]\nsocket = \"\"\n[store]\ndir = \"\"\n\
             [auth]\nallow_anonymous = true\nanonymous_publish = [\"#\"]\nanonymous_subscribe = [\"#\"]\n"
        ),
    )?;

    let brokers = [
        start("mosquitto", "mosquitto", &["-c".into(), conf.display().to_string()], dir.path(), mosquitto_port)?,
        start(
            "outpost-hub",
            &bin.join("outpost-hub").display().to_string(),
            &["--config".into(), hub_conf.display().to_string()],
            dir.path(),
            hub_port,
        )?,
    ];
    std::thread::sleep(Duration::from_secs(1));
    let idle: Vec<u64> = brokers.iter().map(|b| rss_kib(b.child.id()).unwrap_or(0)).collect();
    let mut rows = Vec::new();
    for qos in [0u8, 1] {
        let mut rates = Vec::new();
        for broker in &brokers {
            let runs =
                (0..3).map(|_| load(&generator, broker.port, qos, messages)).collect::<anyhow::Result<Vec<_>>>()?;
            rates.push(median(runs));
        }
        rows.push((qos, rates));
    }
    let after: Vec<u64> = brokers.iter().map(|b| rss_kib(b.child.id()).unwrap_or(0)).collect();
    println!("| workload | {} | {} | ratio |", brokers[0].name, brokers[1].name);
    println!("|---|---|---|---|");
    for (qos, rates) in rows {
        let label = if qos == 0 { "QoS 0 1→1, 64 B" } else { "QoS 1 1→1, 64 B, window 100" };
        println!(
            "| {label} (msg/s, median of 3 × {messages}) | {:.0} | {:.0} | {:.2}× |",
            rates[0],
            rates[1],
            rates[1] / rates[0]
        );
    }
    let mib = |k: u64| k as f64 / 1024.0;
    println!("| idle RSS | {:.1} MiB | {:.1} MiB | |", mib(idle[0]), mib(idle[1]));
    println!("| RSS after the runs | {:.1} MiB | {:.1} MiB | |", mib(after[0]), mib(after[1]));
    Ok(())
}
