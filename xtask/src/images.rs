//! `cargo xtask images`: Outpost's OCI images, built from this workspace's binaries without
//! Docker — each image is one reproducible layer holding a program and the shared libraries
//! it loads — written as OCI layout archives under `target/images/`, optionally pushed to a
//! registry. `--smoke` proves them end to end: pushed to a loopback registry, deployed
//! through outpost-agent (which pulls them), running with identities from outpost-identityd
//! and talking MQTT to Mosquitto.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use outpost_runtime::oci::{BuiltImage, ImageBuilder, digest, write_archive};
use outpost_runtime::registry::{RegistryClient, RegistrySettings};

use crate::agentd::Agentd;
use crate::daemon::{Identityd, write_config};
use crate::util::{cargo, sh, target_dir};

/// One image: its name and the program it runs.
struct Recipe {
    name: &'static str,
    program: &'static str,
}

const RECIPES: &[Recipe] = &[
    Recipe { name: "simulated-temperature-sensor", program: "simulated-temperature-sensor" },
    Recipe { name: "filter", program: "filter" },
    Recipe { name: "identityd", program: "outpost-identityd" },
    Recipe { name: "agent", program: "outpost-agent" },
    Recipe { name: "hub", program: "outpost-hub" },
    Recipe { name: "watchdog", program: "outpost-watchdog" },
];

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn build(recipe: &Recipe, bin: &Path) -> anyhow::Result<BuiltImage> {
    let program = bin.join(recipe.program);
    let in_image = format!("/usr/local/bin/{}", recipe.program);
    let mut builder = ImageBuilder::new()
        .program(&in_image, &program)
        .with_context(|| format!("cannot add {}", program.display()))?
        .entrypoint(&[&in_image])
        .env("PATH", "/usr/local/bin")
        .dir("/tmp");
    if recipe.program == "outpost-agent" {
        // The agent needs its module logger beside it (the host's copy is what containerd's
        // shim runs; this one documents the version that belongs to the agent).
        builder = builder
            .program("/usr/local/bin/outpost-logger", &bin.join("outpost-logger"))
            .context("cannot add outpost-logger")?;
    }
    Ok(builder.build()?)
}

/// The simulated temperature sensor's image from the binaries in `bin`.
pub fn sensor_image(bin: &Path) -> anyhow::Result<BuiltImage> {
    build(&RECIPES[0], bin)
}

/// Writes the images of the runtime's services (identityd, agent, hub, watchdog) from the
/// binaries in `bin` to `out` as OCI archives named `{name}.tar`, referenced
/// `outpost/{name}:{version}`.
pub fn write_service_archives(bin: &Path, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    for recipe in RECIPES.iter().filter(|r| r.program.starts_with("outpost-")) {
        let image = build(recipe, bin)?;
        write_archive(
            &image,
            &format!("outpost/{}:{VERSION}", recipe.name),
            &out.join(format!("{}.tar", recipe.name)),
        )?;
    }
    Ok(())
}

/// Writes an image referenced `reference` whose program is `program` to `archive`.
pub fn write_program_archive(program: &Path, name: &str, reference: &str, archive: &Path) -> anyhow::Result<()> {
    let in_image = format!("/usr/local/bin/{name}");
    let image = ImageBuilder::new()
        .program(&in_image, program)
        .with_context(|| format!("cannot add {}", program.display()))?
        .entrypoint(&[&in_image])
        .dir("/tmp")
        .build()?;
    write_archive(&image, reference, archive)?;
    Ok(())
}

/// Builds (and pushes) the images; returns them with their archive paths.
pub fn run(args: &crate::ImagesArgs) -> anyhow::Result<()> {
    let profile = if args.debug { "debug" } else { "release" };
    eprintln!("building {profile} binaries");
    let mut command = cargo();
    command.args(["build", "--quiet", "-p", "outpost-samples", "-p", "outpost-identity", "-p", "outpost-agent"]);
    command.args(["-p", "outpost-cli", "-p", "outpost-hub", "-p", "outpost-watchdog", "-p", "outpost-host"]);
    if !args.debug {
        command.arg("--release");
    }
    sh(&mut command)?;
    let bin = target_dir().join(profile);
    let out = target_dir().join("images");
    std::fs::create_dir_all(&out)?;
    let mut images = Vec::new();
    println!("| image | layer | manifest digest |\n|---|---|---|");
    for recipe in RECIPES {
        let image = build(recipe, &bin)?;
        let reference = format!("outpost/{}:{VERSION}", recipe.name);
        let archive = out.join(format!("{}.tar", recipe.name));
        write_archive(&image, &reference, &archive)?;
        println!(
            "| `{reference}` ({}) | {:.1} MiB | `{}` |",
            archive.display(),
            image.layer.len() as f64 / (1024.0 * 1024.0),
            digest(&image.manifest)
        );
        images.push((recipe, image));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let Some(registry) = &args.push {
        rt.block_on(push(registry, &images))?;
    }
    if args.smoke {
        smoke(&rt, &bin, &images)?;
    }
    Ok(())
}

async fn push(registry: &str, images: &[(&Recipe, BuiltImage)]) -> anyhow::Result<()> {
    for (recipe, image) in images {
        let reference = format!("{registry}/outpost/{}:{VERSION}", recipe.name);
        let digest = RegistryClient::new(&reference, &RegistrySettings::default(), &[])?.push(image).await?;
        eprintln!("pushed {reference} ({digest})");
    }
    Ok(())
}

fn manifest(registry: &str, mqtt_port: u16) -> String {
    let module = |name: &str, order: u32, env: serde_json::Value| {
        serde_json::json!({
            "version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
            "startupOrder": order,
            "settings": {"image": format!("{registry}/outpost/{name}:{VERSION}"), "createOptions": "{}"},
            "env": env,
        })
    };
    let hub = |port: u16| serde_json::json!({"OUTPOST_HUB_PORT": {"value": port.to_string()}, "OUTPOST_HUB_TLS": {"value": "false"}});
    let mut sensor_env = hub(mqtt_port);
    sensor_env["MessageCount"] = serde_json::json!({"value": "3"});
    sensor_env["SendInterval"] = serde_json::json!({"value": "0.2"});
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": format!("{registry}/outpost/agent:{VERSION}")}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
                    "settings": {"image": format!("{registry}/outpost/hub:{VERSION}")}}
            },
            "modules": {
                "tempSensor": module("simulated-temperature-sensor", 1, sensor_env),
                "filter": module("filter", 2, hub(mqtt_port)),
            }
        }},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}}}
    }})
    .to_string()
}

fn smoke(rt: &tokio::runtime::Runtime, bin: &Path, images: &[(&Recipe, BuiltImage)]) -> anyhow::Result<()> {
    eprintln!("smoke test: loopback registry, private containerd, identityd, agent, Mosquitto");
    let registry = outpost_testkit::Registry::start();
    rt.block_on(push(registry.address(), images))?;
    let containerd = outpost_testkit::Containerd::start();
    let broker = outpost_testkit::Mosquitto::start();
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let identityd = Identityd::start(
        &bin.join("outpost-identityd"),
        &write_config(root, "file", "device:/dev/tpmrm0")?,
        root,
        &root.join("identityd.log"),
    )?;
    let agent =
        Agentd::start(&bin.join("outpost-agent"), root, &identityd, &containerd.socket(), containerd.namespace())?;
    let outpost = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(bin.join("outpost")).arg("--agent-socket").arg(&agent.socket).args(args).output()?;
        if !out.status.success() {
            bail!("outpost {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };

    let watcher = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string(), "-i", "smoke", "-q", "1", "-v", "-W", "120"])
        .args(["-C", "3", "-t", "devices/+/modules/tempSensor/messages/events/#"])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run mosquitto_sub")?;
    broker.wait_for_log("Sending SUBACK to smoke", Duration::from_secs(20));
    let file = root.join("manifest.json");
    std::fs::write(&file, manifest(registry.address(), broker.port()))?;
    print!("{}", outpost(&["deploy", "-f", &file.display().to_string()])?);
    let readings = watcher.wait_with_output()?;
    let text = String::from_utf8_lossy(&readings.stdout).into_owned();
    if !readings.status.success() || text.lines().count() != 3 {
        bail!("tempSensor's readings did not arrive: {text}\n{}", outpost(&["list"])?);
    }
    println!("tempSensor → Mosquitto:\n{text}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = outpost(&["list"])?;
        if list.lines().filter(|l| l.contains("running")).count() == 2 {
            println!("{list}");
            break;
        }
        if Instant::now() > deadline {
            bail!("modules not both running:\n{list}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The sensor logs on stderr, which `outpost logs` prints on stderr: read the JSON form.
    let logs = outpost(&["logs", "tempSensor", "--tail", "2", "-o", "json"])?;
    if !logs.contains("sent") {
        let files: Vec<String> = std::fs::read_dir(root.join("logs"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        bail!("tempSensor's log does not show its messages: {logs:?}; log files: {files:?}");
    }
    println!("outpost logs tempSensor --tail 2 -o json:\n{logs}");
    agent.stop()?;
    identityd.stop()?;
    eprintln!("smoke test passed");
    Ok(())
}
