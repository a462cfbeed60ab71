//! The `outpost-identityd` binary: default config, start-up refusals with exit codes that
//! name the problem, and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_outpost-identityd");

fn write_config(root: &Path, extra: &str) -> std::path::PathBuf {
    let path = root.join("identityd.toml");
    let text = format!(
        "[device]\nid = \"dev1\"\nhub_hostname = \"hub.example\"\n{extra}\n[paths]\nstate_dir = \"{r}/state\"\nsocket = \"{r}/run/identity.sock\"\nworkload_dir = \"{r}/run/mnt\"\n",
        r = root.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run_to_end(config: &Path) -> (i32, String) {
    let out = Command::new(BIN).arg("--config").arg(config).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn print_default_config_prints_the_commented_default() {
    let out = Command::new(BIN).arg("--print-default-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[key_store]") && text.contains("# The TPM Software Stack TCTI"));
    outpost_daemon::config::parse_config::<outpost_identity::config::Config>(&text).unwrap();
}

#[test]
fn invalid_configuration_exits_78_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "colour = \"blue\"");
    let (code, stderr) = run_to_end(&config);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("device") && stderr.contains("unknown field `colour`"), "{stderr}");

    let (code, stderr) = run_to_end(&dir.path().join("missing.toml"));
    assert_eq!(code, 78);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn corrupt_key_files_exit_74_naming_the_file_and_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let keys = dir.path().join("state/keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let file = keys.join("master.key");
    std::fs::write(&file, "not-base64!!").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (code, stderr) = run_to_end(&config);
    assert_eq!(code, 74, "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not-base64!!");
}

#[test]
fn sigterm_stops_the_daemon_cleanly_and_removes_its_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut child = Command::new(BIN).arg("--config").arg(&config).stderr(Stdio::null()).spawn().unwrap();
    let socket = dir.path().join("run/identity.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "daemon exited early");
        assert!(Instant::now() < deadline, "socket never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!socket.exists());
}
