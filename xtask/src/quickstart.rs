//! `cargo xtask quickstart`: builds the binaries, starts outpost-identityd with file-backed
//! keys in a temporary state directory, creates a module identity, prints its SAS token and
//! workload socket, runs `outpost check`, and stops the daemon cleanly.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::daemon::{Identityd, write_config};
use crate::util::{cargo, sh, target_dir};

const MODULE: &str = "tempSensor";

fn step(n: u32, total: u32, what: &str) {
    eprintln!("\n[{n}/{total}] {what}");
}

/// Runs the demo.
pub fn run_quickstart() -> anyhow::Result<()> {
    let total = 6;
    step(1, total, "building outpost-identityd and outpost");
    sh(cargo().args(["build", "--quiet", "-p", "outpost-identity", "-p", "outpost-cli"]))?;
    let bin = target_dir().join("debug");
    let outpost = bin.join("outpost");

    step(2, total, "starting outpost-identityd with file-backed keys in a temporary state directory");
    let dir = std::env::temp_dir().join(format!("outpost-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = write_config(&dir, "file", "device:/dev/tpmrm0")?;
    let log = dir.join("identityd.log");
    let daemon = Identityd::start(&bin.join("outpost-identityd"), &config, &dir, &log)?;
    eprintln!("      config {}  log {}  pid {}", config.display(), log.display(), daemon.pid());

    let cli = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(&outpost)
            .arg("--identity-socket")
            .arg(&daemon.socket)
            .args(args)
            .output()
            .with_context(|| format!("cannot run outpost {}", args.join(" ")))?;
        if !out.status.success() {
            bail!("outpost {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };

    step(3, total, &format!("creating module identity {MODULE}"));
    print!("{}", cli(&["identity", "create", MODULE])?);

    step(4, total, &format!("issuing a SAS token for {MODULE}"));
    let token = cli(&["identity", "token", MODULE])?;
    println!("{}", token.trim());
    println!("workload socket: {}", daemon.workload_dir.join(MODULE).join("workload.sock").display());

    step(5, total, "checking the device");
    print!("{}", cli(&["check", "--identity-config", &config.display().to_string()])?);

    step(6, total, "stopping outpost-identityd");
    let status = daemon.stop()?;
    if !status.success() {
        bail!("outpost-identityd exited with {status}; see {}", log.display());
    }
    eprintln!("      stopped cleanly ({status}); state kept in {}", dir.display());
    Ok(())
}

/// Entry point.
pub fn run() -> anyhow::Result<()> {
    run_quickstart()
}
