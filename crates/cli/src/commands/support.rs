//! `outpost support-bundle`: what someone helping with a device needs, in one `.tar.gz` —
//! the check results, versions, the services' and modules' states, the deployment, the
//! configuration with secrets redacted, and every log. Parts that cannot be had (a service
//! down) are recorded as such; the bundle is written anyway.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use outpost_host::config::Config;
use outpost_proto::agent::v1 as agent_pb;
use outpost_proto::agent::v1::agent_client::AgentClient;
use outpost_proto::host::v1 as host_pb;
use outpost_proto::host::v1::host_client::HostClient;
use serde_json::{Value, json};

use crate::output::Format;

/// Flags of `outpost support-bundle`.
#[derive(Debug, Args)]
pub struct SupportArgs {
    /// The archive to write [default: support-bundle-{device}-{time}.tar.gz here].
    #[arg(long, short = 'O')]
    output_file: Option<PathBuf>,
    /// The device configuration (outpostd's).
    #[arg(long, short = 'c', default_value = outpost_host::config::DEFAULT_PATH)]
    config: PathBuf,
    /// No progress messages.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Keys whose values never leave the device.
const SECRET_KEYS: &[&str] =
    &["key", "password", "token", "secret", "service_password", "token_sha256", "primaryKey", "secondaryKey"];

fn redact_toml(value: &mut toml::Value) {
    if let toml::Value::Table(table) = value {
        for (key, value) in table.iter_mut() {
            if SECRET_KEYS.contains(&key.as_str()) {
                *value = toml::Value::String("<redacted>".into());
            } else {
                redact_toml(value);
            }
        }
    } else if let toml::Value::Array(items) = value {
        items.iter_mut().for_each(redact_toml);
    }
}

/// `text` (TOML) with every secret replaced; unparsable text is left out entirely.
pub fn redacted_toml(text: &str) -> String {
    match text.parse::<toml::Table>() {
        Ok(table) => {
            let mut value = toml::Value::Table(table);
            redact_toml(&mut value);
            toml::to_string(&value).unwrap_or_default()
        }
        Err(e) => format!("# not valid TOML, left out: {e}\n"),
    }
}

fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *value = json!("<redacted>");
                } else {
                    redact_json(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

struct Bundle {
    tar: tar::Builder<flate2::write::GzEncoder<std::fs::File>>,
    root: String,
    quiet: bool,
}

impl Bundle {
    fn add(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        header.set_cksum();
        self.tar.append_data(&mut header, format!("{}/{name}", self.root), bytes)?;
        Ok(())
    }

    fn json(&mut self, name: &str, value: &Value) -> anyhow::Result<()> {
        self.add(name, serde_json::to_string_pretty(value)?.as_bytes())
    }

    fn progress(&self, what: &str) {
        if !self.quiet {
            eprintln!("{what}…");
        }
    }

    /// Every `*.log*` file in `dir` under `into/`.
    fn logs(&mut self, dir: &Path, into: &str) -> anyhow::Result<usize> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
        let mut added = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_file() && name.contains(".log") {
                let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
                self.add(&format!("{into}/{name}"), &bytes)?;
                added += 1;
            }
        }
        Ok(added)
    }
}

fn error(e: impl std::fmt::Display) -> Value {
    json!({"error": e.to_string()})
}

async fn host_state(socket: &Path) -> (Value, Value) {
    let Ok(channel) = outpost_rpc::connect(socket).await else {
        return (error("outpostd does not answer"), error("outpostd does not answer"));
    };
    let mut client = HostClient::new(channel);
    let info = match client.get_system_info(host_pb::GetSystemInfoRequest {}).await {
        Ok(i) => {
            let i = i.into_inner();
            json!({"version": i.version, "deviceId": i.device_id, "mode": i.mode, "uptimeSecs": i.uptime_secs,
                "config": i.config_path, "kernel": i.kernel_version, "architecture": i.architecture})
        }
        Err(e) => error(e.message()),
    };
    let services = match client.list_services(host_pb::ListServicesRequest {}).await {
        Ok(s) => Value::Array(
            s.into_inner()
                .services
                .iter()
                .map(|s| {
                    json!({"name": s.name, "state": s.state().as_str_name(), "description": s.description,
                        "image": s.image, "pid": s.pid, "restartCount": s.restart_count, "lastExitCode": s.last_exit_code,
                        "failedUpdateImage": s.failed_update_image, "failedUpdateReason": s.failed_update_reason})
                })
                .collect(),
        ),
        Err(e) => error(e.message()),
    };
    (info, services)
}

async fn agent_state(socket: &Path) -> (Value, Value) {
    let Ok(channel) = outpost_rpc::connect(socket).await else {
        return (error("outpost-agent does not answer"), error("outpost-agent does not answer"));
    };
    let mut client = AgentClient::new(channel);
    let modules = match client.list_modules(agent_pb::ListModulesRequest {}).await {
        Ok(m) => Value::Array(
            m.into_inner()
                .modules
                .iter()
                .map(|m| {
                    json!({"module": m.module_id, "image": m.image, "desired": m.desired_status, "status": m.runtime_status,
                        "description": m.status_description, "exitCode": m.exit_code, "restartCount": m.restart_count,
                        "lastStart": m.last_start_time, "lastExit": m.last_exit_time, "imageDigest": m.image_digest})
                })
                .collect(),
        ),
        Err(e) => error(e.message()),
    };
    let deployment = match client.get_deployment(agent_pb::GetDeploymentRequest {}).await {
        Ok(d) => {
            let d = d.into_inner();
            let mut manifest = serde_json::from_str(&d.manifest_json).unwrap_or(Value::Null);
            redact_json(&mut manifest);
            let reported = serde_json::from_str(&d.reported_properties_json).unwrap_or(Value::Null);
            json!({"manifest": manifest, "reported": reported})
        }
        Err(e) => error(e.message()),
    };
    (modules, deployment)
}

/// Writes the bundle.
pub async fn run(
    args: SupportArgs,
    identity_socket: &Path,
    agent_socket: &Path,
    host_socket: &Path,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let config: Option<Config> = outpost_daemon::load_config(&args.config).ok();
    let device = config.as_ref().map_or_else(|| "device".to_owned(), |c| c.device.id.to_string());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stamp = outpost_core::time::rfc3339(i64::try_from(now).unwrap_or(0)).replace(':', "");
    let root = format!("support-bundle-{device}-{stamp}");
    let path = args.output_file.clone().unwrap_or_else(|| PathBuf::from(format!("{root}.tar.gz")));
    let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut bundle = Bundle {
        tar: tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default())),
        root,
        quiet: args.quiet,
    };

    bundle.progress("running the checks");
    let check_args = super::check::CheckArgs::for_device(&args.config);
    let checks = super::check::results(&check_args, identity_socket, agent_socket, host_socket).await;
    bundle.json("check.json", &serde_json::to_value(&checks)?)?;

    bundle.progress("asking outpostd and the agent");
    let (system, services) = host_state(host_socket).await;
    let (modules, deployment) = agent_state(agent_socket).await;
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/version").unwrap_or_default();
    bundle.json(
        "versions.json",
        &json!({"outpost": env!("CARGO_PKG_VERSION"), "outpostd": system, "kernel": kernel.trim(), "os": os}),
    )?;
    bundle.json("services.json", &services)?;
    bundle.json("modules.json", &modules)?;
    bundle.json("deployment.json", &deployment)?;

    bundle.progress("copying the configuration (secrets redacted)");
    if let Ok(text) = std::fs::read_to_string(&args.config) {
        bundle.add("config/config.toml", redacted_toml(&text).as_bytes())?;
    }
    let log_dir = match &config {
        Some(config) => {
            for service in outpost_host::services::ServiceName::ALL {
                if let Ok(text) = std::fs::read_to_string(service.config_path(&config.paths)) {
                    bundle.add(&format!("config/{service}.toml"), redacted_toml(&text).as_bytes())?;
                }
            }
            config.paths.log_dir.clone()
        }
        None => PathBuf::from("/var/log/outpost"),
    };

    bundle.progress(&format!("copying the logs from {}", log_dir.display()));
    let services_logs = bundle.logs(&log_dir, "logs")?;
    let module_logs = bundle.logs(&log_dir.join("modules"), "logs/modules")?;
    let encoder = bundle.tar.into_inner()?;
    encoder.finish()?.flush()?;
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    if format == Format::Json {
        crate::output::json(
            &json!({"file": path, "bytes": size, "serviceLogs": services_logs, "moduleLogs": module_logs}),
        )?;
    } else {
        println!(
            "wrote {} ({} KiB): checks, versions, services, modules, deployment, configuration, {services_logs} service and {module_logs} module log files",
            path.display(),
            size / 1024
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_leave_the_device() {
        let text = "[device]\nid = \"d\"\nkey = \"c2VjcmV0\"\n[cloud]\nurl = \"amqp://c\"\n[services.hub.x]\npassword = \"p\"\n";
        let out = redacted_toml(text);
        assert!(!out.contains("c2VjcmV0") && !out.contains("\"p\""), "{out}");
        assert!(out.contains("<redacted>") && out.contains("amqp://c"), "{out}");
        let mut manifest = json!({"registryCredentials": {"r": {"address": "a", "username": "u", "password": "pw"}}});
        redact_json(&mut manifest);
        assert_eq!(manifest["registryCredentials"]["r"]["password"], "<redacted>");
        assert_eq!(manifest["registryCredentials"]["r"]["username"], "u");
        assert!(redacted_toml("not = [toml").starts_with("# not valid TOML"));
    }
}
