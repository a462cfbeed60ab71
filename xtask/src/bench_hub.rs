//! `cargo xtask bench hub`: outpost-hub and Mosquitto side by side on this machine, each
//! broker pinned to core 0 and the same load generator (`crates/hub/examples/mqtt_load/`)
//! pinned to core 1, 64-byte payloads: QoS 0 and QoS 1 (window 100) throughput 1→1, fan-in
//! 100→1 and fan-out 1→100 (medians of three runs), publish→deliver latency at 1,000 msg/s,
//! memory per idle connection at 1k and 10k connections, idle RSS; then the hub with its
//! store (PUBACK after fsync, group commit) and a persistent subscriber: throughput and
//! latency; module → hub → module round trips through routes (IoT Hub modules with tokens
//! from outpost-identityd); last, restart time (exec → first CONNACK) with an empty store and
//! with a million messages queued.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::daemon::{Identityd, rss_kib, write_config};
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

/// Runs the load generator with `args`; its JSON line.
fn generate(generator: &Path, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new("taskset").args(["-c", "1"]).arg(generator).args(args).output()?;
    if !out.status.success() {
        bail!("load generator {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Median deliveries per second of three `fan` runs, and the messages lost in all three
/// (a broker may drop QoS 0 messages for a subscriber that falls behind).
fn fan(
    generator: &Path,
    port: u16,
    publishers: u32,
    subscribers: u32,
    messages: u32,
    qos: u8,
) -> anyhow::Result<(f64, u64)> {
    let (mut rates, mut lost) = (Vec::new(), 0);
    for _ in 0..3 {
        let args = ["fan", &port.to_string(), &publishers.to_string(), &subscribers.to_string()]
            .map(str::to_owned)
            .into_iter()
            .chain([messages.to_string(), qos.to_string()])
            .collect::<Vec<_>>();
        let result = generate(generator, &args)?;
        rates.push(result["rate"].as_f64().context("no rate in the load generator's output")?);
        lost += result["lost"].as_u64().unwrap_or(0);
    }
    Ok((median(rates), lost))
}

/// Round trips between two IoT Hub modules through routes (`ping/out → pong/in`,
/// `pong/out → ping/in`) on a hub with its store, tokens from a real outpost-identityd.
fn round_trips(bin: &Path, generator: &Path, dir: &Path) -> anyhow::Result<serde_json::Value> {
    let root = dir.join("identity");
    std::fs::create_dir_all(&root)?;
    let config = write_config(&root, "file", "")?;
    let identityd = Identityd::start(&bin.join("outpost-identityd"), &config, &root, &dir.join("identityd.log"))?;
    let outpost = |args: &[&str]| -> anyhow::Result<String> {
        let out =
            Command::new(bin.join("outpost")).arg("--identity-socket").arg(&identityd.socket).args(args).output()?;
        if !out.status.success() {
            bail!("outpost {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let mut tokens = Vec::new();
    for module in ["ping", "pong"] {
        outpost(&["identity", "create", module])?;
        tokens.push(outpost(&["identity", "token", module, "--ttl", "3600"])?);
    }
    let into = |m: &str| format!("INTO BrokeredEndpoint(\"/modules/{m}/inputs/in\")");
    let deployment = serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
            "systemModules": {"edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:1"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "outpost/hub:1"}}},
            "modules": {}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {
            "ping": format!("FROM /messages/modules/ping/outputs/out {}", into("pong")),
            "pong": format!("FROM /messages/modules/pong/outputs/out {}", into("ping"))}}}}});
    let deployment_file = dir.join("deployment.json");
    std::fs::write(&deployment_file, deployment.to_string())?;
    let store = tempfile::tempdir_in(target_dir())?;
    let port = free_port()?;
    let hub_conf = dir.join("routes.toml");
    std::fs::write(
        &hub_conf,
        format!(
            "[mqtt]\nbind = \"127.0.0.1:{port}\"\ntls = false\n[https]\nenabled = false\n[identity]\nsocket = \"{}\"\n\
             [admin]\nsocket = \"\"\n[metrics]\nenabled = false\n[store]\ndir = \"{}\"\n[routes]\ndeployment_file = \"{}\"\n",
            identityd.socket.display(),
            store.path().display(),
            deployment_file.display()
        ),
    )?;
    let hub = bin.join("outpost-hub").display().to_string();
    let broker = start("outpost-hub", &hub, &["--config".into(), hub_conf.display().to_string()], dir, port)?;
    // The deployment file is read right after start; give it a moment.
    std::thread::sleep(Duration::from_secs(2));
    let args = ["roundtrip", &port.to_string(), "1000", "10", "quickstart-device", "outpost.local"]
        .map(str::to_owned)
        .into_iter()
        .chain(tokens)
        .collect::<Vec<_>>();
    let result = generate(generator, &args);
    drop(broker);
    identityd.stop()?;
    result
}

/// Messages queued for the restart measurement.
const QUEUED: u32 = 1_000_000;

/// Starts outpost-hub with `config` and times exec → first CONNACK on `port` (milliseconds),
/// with its RSS then (KiB); the hub is stopped again.
fn restart(hub: &str, config: &Path, port: u16) -> anyhow::Result<(u128, u64)> {
    use std::io::{Read as _, Write as _};
    let started = Instant::now();
    let child = Command::new("taskset")
        .args(["-c", "0", hub, "--config"])
        .arg(config)
        .env("OUTPOST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let broker = Broker { name: "outpost-hub", child, port };
    // CONNECT, MQTT 3.1.1, clean session, client id "probe".
    let connect = [0x10, 0x11, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 5, b'p', b'r', b'o', b'b', b'e'];
    loop {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("outpost-hub did not answer a CONNECT within 60 s");
        }
        let answered = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(&connect)?;
            let mut ack = [0u8; 4];
            stream.read_exact(&mut ack)?;
            Ok(ack[0] == 0x20)
        });
        if answered.unwrap_or(false) {
            let elapsed = started.elapsed().as_millis();
            return Ok((elapsed, rss_kib(broker.child.id())?));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// KiB the broker's RSS grows by per connection, with `count` idle connections.
fn per_connection(generator: &Path, broker: &Broker, count: u32) -> anyhow::Result<f64> {
    let before = rss_kib(broker.child.id())?;
    let mut idle = Command::new("taskset")
        .args(["-c", "1"])
        .arg(generator)
        .args(["idle", &broker.port.to_string(), &count.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(idle.stdout.as_mut().context("no stdout")?), &mut line)?;
    if !line.contains("connected") {
        let _ = idle.kill();
        bail!("idle connections to {} failed: {line}", broker.name);
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_kib(broker.child.id())?;
    drop(idle.stdin.take());
    idle.wait()?;
    std::thread::sleep(Duration::from_millis(500));
    Ok(during.saturating_sub(before) as f64 / f64::from(count))
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
        "-p",
        "outpost-identity",
        "--bin",
        "outpost-identityd",
        "-p",
        "outpost-cli",
        "--bin",
        "outpost",
    ]))?;
    let bin = target_dir().join("release");
    let generator = bin.join("examples/mqtt_load");
    let dir = tempfile::tempdir()?;

    let mosquitto_port = free_port()?;
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        // The hub's limits: 100 QoS 1/2 messages in flight and 10,000 queued per client.
        format!(
            "user root\nlistener {mosquitto_port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_inflight_messages 100\nmax_queued_messages 10000\n"
        ),
    )?;
    let hub_port = free_port()?;
    let hub_conf = dir.path().join("hub.toml");
    std::fs::write(
        &hub_conf,
        format!(
            "[mqtt]\nbind = \"127.0.0.1:{hub_port}\"\n[identity]\nsocket = \"\"\n[admin]\nsocket = \"\"\n[metrics]\nenabled = false\n[store]\ndir = \"\"\n\
             [auth]\nallow_anonymous = true\nanonymous_publish = [\"#\"]\nanonymous_subscribe = [\"#\"]\n"
        ),
    )?;

    let durable_port = free_port()?;
    let durable_conf = dir.path().join("durable.toml");
    // The store on the disk the build uses (not a tmpfs).
    let store = tempfile::tempdir_in(target_dir())?;
    std::fs::write(
        &durable_conf,
        format!(
            "[mqtt]\nbind = \"127.0.0.1:{durable_port}\"\n[identity]\nsocket = \"\"\n[admin]\nsocket = \"\"\n[metrics]\nenabled = false\n[store]\ndir = \"{}\"\n\
             [auth]\nallow_anonymous = true\nanonymous_publish = [\"#\"]\nanonymous_subscribe = [\"#\"]\n",
            store.path().display()
        ),
    )?;

    let hub = bin.join("outpost-hub").display().to_string();
    let brokers = [
        start("mosquitto", "mosquitto", &["-c".into(), conf.display().to_string()], dir.path(), mosquitto_port)?,
        start("outpost-hub", &hub, &["--config".into(), hub_conf.display().to_string()], dir.path(), hub_port)?,
    ];
    std::thread::sleep(Duration::from_secs(1));
    let idle: Vec<u64> = brokers.iter().map(|b| rss_kib(b.child.id()).unwrap_or(0)).collect();

    let mut rows: Vec<(String, [f64; 2], usize)> = Vec::new();
    // Memory per connection first, while the brokers have no freed memory to reuse.
    for count in [1_000u32, 10_000] {
        eprintln!("{count} idle connections");
        let mut kib = [0.0; 2];
        for (i, broker) in brokers.iter().enumerate() {
            kib[i] = per_connection(&generator, broker, count)?;
        }
        rows.push((format!("memory per idle connection, {count} connections (KiB)"), kib, 2));
    }
    let fans = [
        ("QoS 0 1→1", 1, 1, messages, 0),
        ("QoS 1 1→1, window 100", 1, 1, messages, 1),
        ("QoS 0 fan-in 100→1", 100, 1, messages, 0),
        ("QoS 1 fan-in 100→1", 100, 1, messages, 1),
        ("QoS 0 fan-out 1→100", 1, 100, messages / 100, 0),
        ("QoS 1 fan-out 1→100", 1, 100, messages / 100, 1),
    ];
    for (label, publishers, subscribers, count, qos) in fans {
        eprintln!("{label}");
        let (mut rates, mut lost) = ([0.0; 2], [0.0; 2]);
        for (i, broker) in brokers.iter().enumerate() {
            let (rate, missing) = fan(&generator, broker.port, publishers, subscribers, count, qos)?;
            (rates[i], lost[i]) = (rate, missing as f64);
        }
        rows.push((format!("{label} (deliveries/s, median of 3)"), rates, 0));
        if lost.iter().any(|l| *l > 0.0) {
            rows.push((format!("{label}: messages lost in the 3 runs"), lost, 0));
        }
    }
    for qos in [0u8, 1] {
        eprintln!("latency, QoS {qos}");
        let mut p50 = [0.0; 2];
        let mut p99 = [0.0; 2];
        for (i, broker) in brokers.iter().enumerate() {
            let args = ["latency", &broker.port.to_string(), "1000", "10", &qos.to_string()].map(str::to_owned);
            let result = generate(&generator, &args)?;
            p50[i] = result["p50_us"].as_f64().unwrap_or(f64::NAN);
            p99[i] = result["p99_us"].as_f64().unwrap_or(f64::NAN);
        }
        rows.push((format!("QoS {qos} latency at 1,000 msg/s, p50 (µs)"), p50, 0));
        rows.push((format!("QoS {qos} latency at 1,000 msg/s, p99 (µs)"), p99, 0));
    }
    let after: Vec<u64> = brokers.iter().map(|b| rss_kib(b.child.id()).unwrap_or(0)).collect();
    drop(brokers);

    eprintln!("durable QoS 1");
    let durable =
        start("outpost-hub", &hub, &["--config".into(), durable_conf.display().to_string()], dir.path(), durable_port)?;
    let mut rates = Vec::new();
    for _ in 0..3 {
        let args = ["fan", &durable.port.to_string(), "1", "1", &messages.to_string(), "1", "64", "100", "persistent"]
            .map(str::to_owned);
        rates.push(generate(&generator, &args)?["rate"].as_f64().unwrap_or(f64::NAN));
    }
    let durable_rate = median(rates);
    let args = ["latency", &durable.port.to_string(), "5000", "5", "1", "persistent"].map(str::to_owned);
    let durable_latency = generate(&generator, &args)?;
    drop(durable);

    eprintln!("restart, empty and with {QUEUED} messages queued");
    let (empty_ms, _) = restart(&hub, &durable_conf, durable_port)?;
    let fill_dir = tempfile::tempdir_in(target_dir())?;
    let fill_conf = dir.path().join("fill.toml");
    std::fs::write(
        &fill_conf,
        std::fs::read_to_string(&durable_conf)?
            .replace(&store.path().display().to_string(), &fill_dir.path().display().to_string())
            .replace("[mqtt]\n", &format!("[mqtt]\nmax_queued = {}\n", QUEUED * 2)),
    )?;
    let filling =
        start("outpost-hub", &hub, &["--config".into(), fill_conf.display().to_string()], dir.path(), durable_port)?;
    generate(&generator, &["fill".into(), durable_port.to_string(), QUEUED.to_string()])?;
    let filled_rss = rss_kib(filling.child.id())?;
    drop(filling);
    let (full_ms, full_rss) = restart(&hub, &fill_conf, durable_port)?;

    eprintln!("module → hub → module round trips through routes");
    let round_trip = round_trips(&bin, &generator, dir.path())?;

    println!("| workload | mosquitto | outpost-hub | ratio (hub ÷ Mosquitto) |");
    println!("|---|---|---|---|");
    for (label, values, decimals) in &rows {
        let (d, ratio) = (*decimals, values[1] / values[0]);
        println!("| {label} | {:.d$} | {:.d$} | {ratio:.2}× |", values[0], values[1]);
    }
    let mib = |k: u64| k as f64 / 1024.0;
    println!("| idle RSS (MiB) | {:.1} | {:.1} | |", mib(idle[0]), mib(idle[1]));
    println!("| RSS after the runs (MiB) | {:.1} | {:.1} | |", mib(after[0]), mib(after[1]));
    println!();
    println!("| outpost-hub with its store, persistent subscriber | |");
    println!("|---|---|");
    println!("| durable QoS 1 1→1, window 100 (msg/s, median of 3 × {messages}) | {durable_rate:.0} |");
    println!(
        "| durable QoS 1 latency at 5,000 msg/s: p50 / p99 / max (µs) | {} / {} / {} |",
        durable_latency["p50_us"], durable_latency["p99_us"], durable_latency["max_us"]
    );
    println!(
        "| module → hub → module round trip through routes at 1,000 msg/s, persistent sessions: p50 / p99 / max (µs) | {} / {} / {} |",
        round_trip["p50_us"], round_trip["p99_us"], round_trip["max_us"]
    );
    println!("| restart → first CONNACK, empty store (ms) | {empty_ms} |");
    println!("| restart → first CONNACK, {QUEUED} messages queued (ms) | {full_ms} |");
    println!(
        "| RSS with {QUEUED} messages queued: while filling / after the restart (MiB) | {:.0} / {:.0} |",
        mib(filled_rss),
        mib(full_rss)
    );
    Ok(())
}
