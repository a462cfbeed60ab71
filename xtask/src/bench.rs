//! `cargo xtask bench identity`: sign throughput and latency over a module's workload socket,
//! for the file and the TPM (swtpm) key stores in one run, plus idle RSS of the daemon.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::daemon::{Identityd, write_config};
use crate::util::{cargo, sh, target_dir};

/// Which benchmark.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Sign throughput and p50/p99 latency of outpost-identityd, file and TPM key stores.
    Identity {
        /// Seconds of load per key store.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 4)]
        connections: u32,
    },
    /// outpost-hub beside Mosquitto: QoS 0 and 1 throughput, idle RSS.
    Hub {
        /// Messages per run.
        #[arg(long, default_value_t = 200_000)]
        messages: u32,
    },
    /// The control plane with RabbitMQ: upstream drain rate with confirms, deployment →
    /// modules running on N devices, the cloud's RSS and CPU with K simulated devices.
    Cloud {
        /// Messages queued in the hub for the drain measurement.
        #[arg(long, default_value_t = 1_000_000)]
        backlog: u64,
        /// Devices (identityd + agent each) for the rollout measurement.
        #[arg(long, default_value_t = 5)]
        devices: usize,
        /// Simulated device connections for the fleet measurement.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Seconds the simulated devices stay connected.
        #[arg(long, default_value_t = 60)]
        hold: u64,
        /// Only this measurement: drain, rollout or fleet.
        #[arg(long)]
        only: Option<String>,
    },
    /// A device's boot time, idle memory of every Outpost process, program and image sizes.
    Device,
    /// Deployment applied → container running, beside `ctr run`; agent idle RSS.
    Agent {
        /// Deployments to time.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
}

struct Figures {
    store: &'static str,
    idle_rss_kib: u64,
    result: serde_json::Value,
}

fn measure(store: &'static str, tcti: &str, seconds: u32, connections: u32) -> anyhow::Result<Figures> {
    let bin = target_dir().join("release");
    let dir = std::env::temp_dir().join(format!("outpost-bench-{store}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = write_config(&dir, store, tcti)?;
    let daemon = Identityd::start(&bin.join("outpost-identityd"), &config, &dir, &dir.join("identityd.log"))?;
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss_kib = daemon.rss_kib()?;

    let out = Command::new(bin.join("outpost"))
        .arg("--identity-socket")
        .arg(&daemon.socket)
        .args(["identity", "create", "bench", "-o", "json"])
        .output()?;
    if !out.status.success() {
        bail!("outpost identity create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let created: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let generation = created[0]["generation_id"].as_str().context("no generation id")?.to_owned();
    let socket = daemon.workload_dir.join("bench/workload.sock");
    let out = Command::new(bin.join("examples/sign_load"))
        .arg(&socket)
        .args(["bench", &generation, &seconds.to_string(), &connections.to_string()])
        .output()?;
    if !out.status.success() {
        bail!("sign_load failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    daemon.stop()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Figures { store, idle_rss_kib, result })
}

/// Runs a benchmark.
pub fn run_bench(which: Bench) -> anyhow::Result<()> {
    let (seconds, connections) = match which {
        Bench::Identity { seconds, connections } => (seconds, connections),
        Bench::Hub { messages } => return crate::bench_hub::run(messages),
        #[cfg(feature = "containers")]
        Bench::Device => return crate::bench_device::run(),
        #[cfg(not(feature = "containers"))]
        Bench::Device => return crate::util::with_containers(&["bench", "device"]),
        #[cfg(feature = "containers")]
        Bench::Agent { runs } => return crate::bench_agent::run(runs),
        #[cfg(not(feature = "containers"))]
        Bench::Agent { runs } => {
            return crate::util::with_containers(&["bench", "agent", "--runs", &runs.to_string()]);
        }
        #[cfg(feature = "containers")]
        Bench::Cloud { backlog, devices, connections, hold, only } => {
            return crate::bench_cloud::run(backlog, devices, connections, hold, only.as_deref());
        }
        #[cfg(not(feature = "containers"))]
        Bench::Cloud { backlog, devices, connections, hold, only } => {
            let (backlog, devices, connections, hold) =
                (backlog.to_string(), devices.to_string(), connections.to_string(), hold.to_string());
            let mut args = vec![
                "bench",
                "cloud",
                "--backlog",
                &backlog,
                "--devices",
                &devices,
                "--connections",
                &connections,
                "--hold",
                &hold,
            ];
            if let Some(only) = &only {
                args.extend(["--only", only.as_str()]);
            }
            return crate::util::with_containers(&args);
        }
    };
    eprintln!("building release binaries");
    sh(cargo().args(["build", "--release", "--quiet", "-p", "outpost-cli", "-p", "outpost-identity"]))?;
    sh(cargo().args(["build", "--release", "--quiet", "-p", "outpost-identity", "--example", "sign_load"]))?;

    let mut figures = vec![measure("file", "device:/dev/tpmrm0", seconds, connections)?];
    let tpm = outpost_testkit::Swtpm::start();
    figures.push(measure("tpm", &tpm.tcti(), seconds, connections)?);
    drop(tpm);

    println!("| key store | signs/s | p50 | p99 | requests | idle RSS |");
    println!("|---|---|---|---|---|---|");
    for f in &figures {
        let r = &f.result;
        println!(
            "| {} | {} | {} µs | {} µs | {} in {} s | {:.1} MiB |",
            f.store,
            r["per_second"],
            r["p50_us"],
            r["p99_us"],
            r["requests"],
            r["seconds"],
            f.idle_rss_kib as f64 / 1024.0
        );
    }
    println!(
        "\n{connections} keep-alive connections, sign of a 61-byte string; load generator and daemon share the machine's cores."
    );
    Ok(())
}

/// Entry point.
pub fn run(which: Bench) -> anyhow::Result<()> {
    run_bench(which)
}
