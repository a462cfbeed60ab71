//! The `outpost` CLI against a real outpost-identityd: identity commands, JSON output, `check`,
//! and peer-credential authorisation of a caller running under another uid.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use outpost_core::DeviceId;
use outpost_identity::config::Config;
use outpost_rpc::Principal;
use tokio_util::sync::CancellationToken;

const CLI: &str = env!("CARGO_BIN_EXE_outpost");
const NOBODY: u32 = 65534;

struct Daemon {
    _dir: tempfile::TempDir,
    config: Config,
    config_path: std::path::PathBuf,
    shutdown: CancellationToken,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(principals: Vec<Principal>) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    // Let another uid reach the socket: the directory must be traversable and the socket
    // writable, so that authorisation is decided by the policy, not by file modes.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = Config::under(dir.path(), DeviceId::new("dev1").unwrap(), "hub.example");
    config.management.socket_mode = 0o666;
    config.principal = principals;
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    std::fs::set_permissions(dir.path().join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_path = dir.path().join("identityd.toml");
    std::fs::write(
        &config_path,
        format!(
            "[device]\nid = \"dev1\"\nhub_hostname = \"hub.example\"\n[paths]\nstate_dir = \"{}\"\nsocket = \"{}\"\nworkload_dir = \"{}\"\n",
            config.paths.state_dir.display(),
            config.paths.socket.display(),
            config.paths.workload_dir.display()
        ),
    )
    .unwrap();
    let service = outpost_identity::open(&config).unwrap();
    let listener = outpost_rpc::bind(&config.paths.socket, config.management.socket_mode).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_identity::run_owned(config.clone(), service, listener, shutdown.clone()));
    Daemon { _dir: dir, config, config_path, shutdown }
}

async fn outpost(socket: &Path, as_uid: Option<u32>, args: &[&str]) -> Output {
    let mut cmd = match as_uid {
        None => Command::new(CLI),
        Some(uid) => {
            let mut cmd = Command::new("setpriv");
            cmd.args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups", CLI]);
            cmd
        }
    };
    cmd.arg("--identity-socket").arg(socket).args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn identity_commands_print_tables_and_json() {
    let daemon = start(vec![]).await;
    let socket = daemon.config.paths.socket.clone();
    let out = outpost(&socket, None, &["identity", "create", "tempSensor"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("MODULE"), "{}", stdout(&out));

    let out = outpost(&socket, None, &["identity", "list", "-o", "json"]).await;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["module_id"], "tempSensor");
    assert_eq!(list[0]["managed_by"], "operator");

    let out = outpost(&socket, None, &["identity", "token", "tempSensor"]).await;
    assert!(stdout(&out).starts_with("SharedAccessSignature sr=hub.example%2Fdevices%2Fdev1%2Fmodules%2FtempSensor"));
    let out = outpost(&socket, None, &["identity", "token", "--device", "-o", "json"]).await;
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(token["expiry"].as_u64().unwrap() > 0);

    let out = outpost(&socket, None, &["identity", "show", "nope"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found: module nope has no identity"), "{}", stderr(&out));

    let out = outpost(&socket, None, &["identity", "delete", "tempSensor"]).await;
    assert!(out.status.success());
}

#[tokio::test]
async fn a_missing_daemon_is_reported_helpfully() {
    let dir = tempfile::tempdir().unwrap();
    let out = outpost(&dir.path().join("none.sock"), None, &["identity", "list"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is outpost-identityd running?"), "{}", stderr(&out));
}

#[tokio::test]
async fn callers_under_other_uids_need_a_principal() {
    let daemon = start(vec![Principal {
        name: "tokens-only".into(),
        uid: NOBODY + 1,
        allow: vec!["outpost.identity.v1.Identity/IssueToken".into()],
    }])
    .await;
    let socket = daemon.config.paths.socket.clone();
    outpost(&socket, None, &["identity", "create", "modA"]).await;

    let out = outpost(&socket, Some(NOBODY), &["identity", "list"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "permission denied: uid {NOBODY} may not call /outpost.identity.v1.Identity/ListModules"
        )),
        "{}",
        stderr(&out)
    );

    let out = outpost(&socket, Some(NOBODY + 1), &["identity", "token", "modA"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = outpost(&socket, Some(NOBODY + 1), &["identity", "delete", "modA"]).await;
    assert!(stderr(&out).contains("permission denied"), "{}", stderr(&out));
}

#[tokio::test]
async fn check_passes_on_a_healthy_device_and_fails_without_the_daemon() {
    let daemon = start(vec![]).await;
    let config = daemon.config_path.display().to_string();
    let no_agent = daemon.config.paths.state_dir.join("no-agent.toml").display().to_string();
    let no_device = daemon.config.paths.state_dir.join("no-device.toml").display().to_string();
    let args = ["check", "-c", &no_device, "--identity-config", &config, "--agent-config", &no_agent, "-o", "json"];
    let out = outpost(&daemon.config.paths.socket, None, &args).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |id: &str| {
        let found = results.as_array().unwrap().iter().find(|r| r["id"] == id);
        found.unwrap_or_else(|| panic!("no check {id}: {results}"))["status"].as_str().unwrap().to_owned()
    };
    for id in ["identity-config", "identity-keys", "identity-socket", "certificate-expiry"] {
        assert_eq!(status(id), "ok", "{id}: {results}");
    }
    for id in ["device-config", "services", "agent-config", "containerd", "hub-ports", "cloud", "log-rotation"] {
        assert_eq!(status(id), "skipped", "no device file, no agent here: {id}: {results}");
    }
    assert!(["ok", "warning"].contains(&status("clock").as_str()), "{results}");

    let dir = tempfile::tempdir().unwrap();
    let args = ["check", "-c", &no_device, "--identity-config", &config, "--agent-config", &no_agent];
    let out = outpost(&dir.path().join("none.sock"), None, &args).await;
    assert!(!out.status.success());
    assert!(stdout(&out).contains("[FAIL] identity-socket"), "{}", stdout(&out));
}
