//! The agent's state as `$edgeAgent` twin reported properties, in the shape Azure's
//! edgeAgent reports (so deployment monitoring written for Azure — "lastDesiredStatus.code =
//! 200", per-module `runtimeStatus` — works unchanged). Pure: built from the desired
//! manifest, the last statuses and the last desired status.

use outpost_core::manifest::{DeploymentManifest, DesiredStatus, ModuleSpec, RestartPolicy};
use serde_json::{Map, Value, json};

use crate::daemon::LastDesiredStatus;
use crate::status::ModuleStatus;

/// The `$version` of the `$edgeAgent` desired properties in a manifest's text, if it has one.
pub fn desired_version(manifest_json: &str) -> Option<i64> {
    let value: Value = serde_json::from_str(manifest_json).ok()?;
    let content = value.get("modulesContent").or_else(|| value.pointer("/content/modulesContent"))?;
    content.pointer("/$edgeAgent/properties.desired/$version")?.as_i64()
}

fn time(secs: Option<u64>) -> Value {
    secs.map_or(Value::Null, |t| Value::String(outpost_core::time::rfc3339(t as i64)))
}

fn restart_policy(policy: RestartPolicy) -> &'static str {
    match policy {
        RestartPolicy::Never => "never",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::OnUnhealthy => "on-unhealthy",
        RestartPolicy::Always => "always",
    }
}

fn module(spec: Option<&ModuleSpec>, status: Option<&ModuleStatus>) -> Value {
    let mut entry = Map::new();
    if let Some(spec) = spec {
        entry.insert("type".into(), json!(spec.kind));
        entry.insert("version".into(), json!(spec.version));
        entry.insert(
            "status".into(),
            json!(match spec.status {
                DesiredStatus::Running => "running",
                DesiredStatus::Stopped => "stopped",
            }),
        );
        entry.insert("restartPolicy".into(), json!(restart_policy(spec.restart_policy)));
        entry.insert("startupOrder".into(), json!(spec.startup_order));
    }
    let image = spec.map(|s| s.image.clone()).or_else(|| status.map(|s| s.image.clone())).unwrap_or_default();
    let create_options = spec.map(|s| s.create_options.clone()).unwrap_or_default();
    let image_hash = status.map(|s| s.image_digest.clone()).unwrap_or_default();
    entry.insert("settings".into(), json!({"image": image, "createOptions": create_options, "imageHash": image_hash}));
    match status {
        Some(status) => {
            entry.insert("runtimeStatus".into(), json!(status.runtime_status));
            entry.insert("statusDescription".into(), json!(status.description));
            entry.insert("exitCode".into(), json!(status.exit_code));
            entry.insert("restartCount".into(), json!(status.restart_count));
            entry.insert("lastStartTimeUtc".into(), time(status.start_time));
            entry.insert("lastExitTimeUtc".into(), time(status.exit_time));
        }
        None => {
            entry.insert("runtimeStatus".into(), json!("unknown"));
        }
    }
    Value::Object(entry)
}

/// The runtime services as outpostd reports them (empty without outpostd).
#[derive(Debug, Clone, Default)]
pub struct System {
    /// `edgeAgent`.
    pub agent: Option<crate::runtime_update::SystemModule>,
    /// `edgeHub`.
    pub hub: Option<crate::runtime_update::SystemModule>,
}

/// A `systemModules` entry: what outpostd runs if known, else what the deployment names
/// (the agent is running: it is writing this).
fn system_module(
    seen: Option<&crate::runtime_update::SystemModule>,
    desired_image: Option<String>,
    fallback: &str,
) -> Value {
    match seen {
        Some(seen) => {
            let mut entry = json!({"runtimeStatus": seen.runtime_status, "statusDescription": seen.description,
                "type": "docker", "settings": {"image": seen.image}});
            if let Some((image, reason)) = &seen.failed_update {
                entry["lastUpdateFailure"] = json!({"image": image, "reason": reason});
            }
            entry
        }
        None => {
            json!({"runtimeStatus": fallback, "type": "docker", "settings": {"image": desired_image.unwrap_or_default()}})
        }
    }
}

/// The reported properties.
pub fn reported(
    manifest: Option<&DeploymentManifest>,
    desired_version: Option<i64>,
    last: &LastDesiredStatus,
    statuses: &[ModuleStatus],
    system: &System,
) -> Value {
    let mut modules = Map::new();
    let desired = manifest.map(|m| &m.agent.modules);
    for status in statuses {
        let spec = desired.and_then(|d| d.get(&status.module));
        modules.insert(status.module.to_string(), module(spec, Some(status)));
    }
    for (id, spec) in desired.into_iter().flatten() {
        if !modules.contains_key(id.as_str()) {
            modules.insert(id.to_string(), module(Some(spec), None));
        }
    }
    let mut report = json!({
        "schemaVersion": "1.1",
        "version": {"version": env!("CARGO_PKG_VERSION"), "build": "", "commit": ""},
        "lastDesiredStatus": {"code": last.code, "description": last.description},
        "runtime": {
            "type": "docker",
            "platform": {"os": "linux", "architecture": outpost_runtime::oci::host_architecture(), "version": ""},
        },
        "systemModules": {
            "edgeAgent": system_module(system.agent.as_ref(), manifest.map(|m| m.agent.edge_agent.image.clone()), "running"),
            "edgeHub": system_module(system.hub.as_ref(), manifest.map(|m| m.agent.edge_hub.image.clone()), "unknown"),
        },
        "modules": modules,
    });
    if let Some(version) = desired_version {
        report["lastDesiredVersion"] = json!(version);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "$version": 7,
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "outpost/agent:1"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "outpost/hub:1"}}},
            "modules": {
                "sensor": {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
                    "settings": {"image": "outpost/sensor:1", "createOptions": "{}"}},
                "pending": {"version": "2", "type": "docker", "status": "stopped", "restartPolicy": "never",
                    "settings": {"image": "outpost/pending:1"}}}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}}}}}"#;

    #[test]
    fn reports_have_azures_shape() {
        let manifest = DeploymentManifest::parse(MANIFEST).unwrap();
        let status = ModuleStatus {
            module: outpost_core::ModuleId::new("sensor").unwrap(),
            image: "outpost/sensor:1".into(),
            desired: Some(DesiredStatus::Running),
            runtime_status: "running",
            description: "running".into(),
            exit_code: 0,
            restart_count: 2,
            start_time: Some(1_795_467_989),
            exit_time: None,
            image_digest: "sha256:abc".into(),
        };
        let last = LastDesiredStatus { code: 200, description: String::new() };
        let report = reported(Some(&manifest), desired_version(MANIFEST), &last, &[status], &System::default());
        assert_eq!(report["lastDesiredVersion"], 7);
        assert_eq!(report["lastDesiredStatus"]["code"], 200);
        let sensor = &report["modules"]["sensor"];
        assert_eq!(sensor["runtimeStatus"], "running");
        assert_eq!(sensor["restartCount"], 2);
        assert_eq!(sensor["lastStartTimeUtc"], "2026-11-23T21:06:29Z");
        assert_eq!(sensor["lastExitTimeUtc"], Value::Null);
        assert_eq!(sensor["settings"]["imageHash"], "sha256:abc");
        assert_eq!(sensor["restartPolicy"], "always");
        assert_eq!(report["modules"]["pending"]["runtimeStatus"], "unknown");
        assert_eq!(report["modules"]["pending"]["status"], "stopped");
        assert_eq!(report["systemModules"]["edgeAgent"]["settings"]["image"], "outpost/agent:1");
    }

    #[test]
    fn no_deployment_reports_417_and_no_modules() {
        let last = LastDesiredStatus { code: 417, description: "no deployment has been applied".into() };
        let report = reported(None, None, &last, &[], &System::default());
        assert_eq!(report["lastDesiredStatus"]["code"], 417);
        assert!(report["modules"].as_object().unwrap().is_empty());
        assert!(report.get("lastDesiredVersion").is_none());
    }
}
