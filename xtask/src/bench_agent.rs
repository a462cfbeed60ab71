//! `cargo xtask bench agent`: deployment applied → container running, with the image already
//! in containerd, over N runs, beside `ctr run -d` of the same image in the same run; and the
//! agent's idle RSS. Everything runs on a private containerd started for the benchmark.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use outpost_runtime::container::TaskState;
use outpost_runtime::containerd::Containerd as Client;
use outpost_runtime::oci::{ImageBuilder, write_archive};

use crate::agentd::Agentd;
use crate::daemon::{Identityd, rss_kib, write_config};
use crate::util::{cargo, sh, target_dir};

const IMAGE: &str = "outpost.bench/busybox:1";
/// The module: idle, and quick to stop (a process ignoring SIGTERM would cost every
/// removal the full grace period).
const SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

fn manifest(module: Option<&str>) -> String {
    let modules = module
        .map(|m| {
            format!(
                r#""{m}": {{"version": "1", "type": "docker", "status": "running", "restartPolicy": "always",
                "settings": {{"image": "{IMAGE}", "createOptions": "{{\"Cmd\":[\"{SCRIPT}\"]}}"}}}}"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"{{"modulesContent": {{
        "$edgeAgent": {{"properties.desired": {{"schemaVersion": "1.1", "runtime": {{"type": "docker", "settings": {{}}}},
            "systemModules": {{"edgeAgent": {{"type": "docker", "settings": {{"image": "outpost/agent:1"}}}},
                "edgeHub": {{"type": "docker", "status": "running", "restartPolicy": "always", "settings": {{"image": "outpost/hub:1"}}}}}},
            "modules": {{ {modules} }} }}}},
        "$edgeHub": {{"properties.desired": {{"schemaVersion": "1.1", "routes": {{}}}}}}}}}}"#
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 50.0), percentile(&samples, 99.0))
}

async fn until_running(client: &Client, id: &str, deadline: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + deadline;
    loop {
        if let Ok(TaskState::Running { .. }) = client.state(id).await {
            return Ok(());
        }
        if Instant::now() > end {
            bail!("{id} did not reach running within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs the benchmark with `runs` deployments.
pub fn run(runs: usize) -> anyhow::Result<()> {
    eprintln!("building release binaries");
    sh(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "outpost-identity",
        "-p",
        "outpost-agent",
        "-p",
        "outpost-cli",
    ]))?;
    let bin = target_dir().join("release");
    let containerd = outpost_testkit::Containerd::start();
    let ns = containerd.namespace().to_owned();
    let dir = tempfile::tempdir()?;
    let root = dir.path();

    let identity_config = write_config(root, "file", "device:/dev/tpmrm0")?;
    let identityd =
        Identityd::start(&bin.join("outpost-identityd"), &identity_config, root, &root.join("identityd.log"))?;
    let agent = Agentd::start(&bin.join("outpost-agent"), root, &identityd, &containerd.socket(), &ns)?;
    let agent_socket = agent.socket.clone();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = rt.block_on(async {
        let client = Client::connect(&containerd.socket(), &ns).await?;
        let image = ImageBuilder::new()
            .file("/bin/busybox", Path::new("/bin/busybox"))?
            .symlink("/bin/sh", "/bin/busybox")
            .symlink("/bin/sleep", "/bin/busybox")
            .entrypoint(&["/bin/sh", "-c"])
            .build()?;
        let archive = root.join("busybox.tar");
        write_archive(&image, IMAGE, &archive)?;
        client.import_archive(&archive, None).await?;
        let deploy = |text: String| -> anyhow::Result<()> {
            let file = root.join("manifest.json");
            std::fs::write(&file, text)?;
            let out = Command::new(bin.join("outpost"))
                .arg("--agent-socket")
                .arg(&agent_socket)
                .args(["deploy", "-f"])
                .arg(&file)
                .output()?;
            if !out.status.success() {
                bail!("outpost deploy failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };

        let mut agent_samples = Vec::new();
        for n in 0..runs {
            let module = format!("bench{n}");
            let start = Instant::now();
            deploy(manifest(Some(&module)))?;
            until_running(&client, &module, Duration::from_secs(30)).await?;
            agent_samples.push(start.elapsed());
        }
        deploy(manifest(None))?;
        let end = Instant::now() + Duration::from_secs(60);
        while !client.list("io.outpost.owner", "outpost-agent").await?.is_empty() {
            if Instant::now() > end {
                bail!("modules were not removed");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let mut ctr_samples = Vec::new();
        for n in 0..runs {
            let id = format!("ctr{n}");
            let start = Instant::now();
            let status = Command::new("ctr")
                .args([
                    "-a",
                    &containerd.socket().display().to_string(),
                    "-n",
                    &ns,
                    "run",
                    "-d",
                    IMAGE,
                    &id,
                    "/bin/sh",
                    "-c",
                    SCRIPT,
                ])
                .stdout(Stdio::null())
                .status()
                .context("cannot run ctr")?;
            if !status.success() {
                bail!("ctr run failed");
            }
            until_running(&client, &id, Duration::from_secs(30)).await?;
            ctr_samples.push(start.elapsed());
        }
        for n in 0..runs {
            let _ = client.remove(&format!("ctr{n}")).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok((agent_samples, ctr_samples))
    });
    let agent_rss = rss_kib(agent.pid());
    let identity_rss = identityd.rss_kib();
    agent.stop()?;
    identityd.stop()?;
    let (agent_samples, ctr_samples) = result?;
    let (a50, a99) = summary(agent_samples);
    let (c50, c99) = summary(ctr_samples);
    println!("| path | p50 | p99 | runs |");
    println!("|---|---|---|---|");
    println!(
        "| `outpost deploy` → running (agent: identity + create + start) | {} ms | {} ms | {runs} |",
        a50.as_millis(),
        a99.as_millis()
    );
    println!("| `ctr run -d` → running | {} ms | {} ms | {runs} |", c50.as_millis(), c99.as_millis());
    println!("\nagent overhead at p50: {} ms", a50.as_millis() as i128 - c50.as_millis() as i128);
    println!(
        "idle RSS: outpost-agent {:.1} MiB, outpost-identityd {:.1} MiB",
        agent_rss? as f64 / 1024.0,
        identity_rss? as f64 / 1024.0
    );
    Ok(())
}
