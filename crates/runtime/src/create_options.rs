//! The Docker `ContainerCreate` options Azure manifests carry in `createOptions`, translated
//! into a [`ContainerSpec`]. The subset that matters on devices is supported; anything else
//! is refused with its path, never silently dropped.
//!
//! Supported: `Env`, `Cmd`, `Entrypoint`, `WorkingDir`, `User`, `Labels`, `Hostname`,
//! `ExposedPorts` (informational, as in Docker), and under `HostConfig`: `Binds`, `Mounts`
//! (type `bind`), `PortBindings` (host networking: the host port must equal the container
//! port), `NetworkMode` (`host`), `Memory`, `NanoCpus`, `CpuShares`, `Devices`, `Privileged`,
//! `CapAdd`, `CapDrop`.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::container::{BindMount, ContainerSpec, Device};

/// Why `createOptions` cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("createOptions{path}: {message}")]
pub struct CreateOptionsError {
    /// Where, e.g. `.HostConfig.Binds[0]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> CreateOptionsError {
    CreateOptionsError { path: path.to_owned(), message: message.into() }
}

fn strings(value: &Value, path: &str) -> Result<Vec<String>, CreateOptionsError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_owned).ok_or_else(|| err(&format!("{path}[{i}]"), "expected a string"))
            })
            .collect(),
        _ => Err(err(path, "expected a string or an array of strings")),
    }
}

fn string(value: &Value, path: &str) -> Result<String, CreateOptionsError> {
    value.as_str().map(str::to_owned).ok_or_else(|| err(path, "expected a string"))
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, CreateOptionsError> {
    value.as_object().ok_or_else(|| err(path, "expected an object"))
}

fn bind(text: &str, path: &str) -> Result<BindMount, CreateOptionsError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, "rw"),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(err(path, format!("{text:?} is not source:target[:ro|rw]"))),
    };
    if !source.starts_with('/') {
        return Err(err(path, format!("{source:?} is a named volume; only host paths (absolute) are supported")));
    }
    if !target.starts_with('/') {
        return Err(err(path, format!("target {target:?} must be absolute")));
    }
    let read_only = match mode.split(',').find(|m| *m == "ro" || *m == "rw") {
        Some("ro") => true,
        Some(_) => false,
        None if mode.is_empty() => false,
        None => return Err(err(path, format!("mode {mode:?} is not supported; use ro or rw"))),
    };
    Ok(BindMount { source: PathBuf::from(source), target: target.to_owned(), read_only })
}

fn host_config(host: &Map<String, Value>, spec: &mut ContainerSpec) -> Result<(), CreateOptionsError> {
    for (key, value) in host {
        let path = format!(".HostConfig.{key}");
        match key.as_str() {
            "Binds" => {
                for (i, text) in strings(value, &path)?.iter().enumerate() {
                    spec.mounts.push(bind(text, &format!("{path}[{i}]"))?);
                }
            }
            "Mounts" => {
                let mounts = value.as_array().ok_or_else(|| err(&path, "expected an array"))?;
                for (i, mount) in mounts.iter().enumerate() {
                    let mpath = format!("{path}[{i}]");
                    let mount = object(mount, &mpath)?;
                    let kind = mount.get("Type").and_then(Value::as_str).unwrap_or("volume");
                    if kind != "bind" {
                        return Err(err(
                            &format!("{mpath}.Type"),
                            format!("{kind:?} mounts are not supported; use \"bind\""),
                        ));
                    }
                    let source = mount
                        .get("Source")
                        .map(|v| string(v, &format!("{mpath}.Source")))
                        .transpose()?
                        .unwrap_or_default();
                    let target = mount
                        .get("Target")
                        .map(|v| string(v, &format!("{mpath}.Target")))
                        .transpose()?
                        .unwrap_or_default();
                    let read_only = mount.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
                    let text = format!("{source}:{target}:{}", if read_only { "ro" } else { "rw" });
                    spec.mounts.push(bind(&text, &mpath)?);
                }
            }
            "PortBindings" => {
                for (port, bindings) in object(value, &path)? {
                    let container_port = port.split('/').next().unwrap_or_default();
                    for (i, binding) in bindings.as_array().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
                        let host_port = binding.get("HostPort").and_then(Value::as_str).unwrap_or(container_port);
                        if host_port != container_port {
                            return Err(err(
                                &format!("{path}['{port}'][{i}]"),
                                format!(
                                    "host port {host_port} differs from container port {container_port}; modules use the host network, where a port can only be itself"
                                ),
                            ));
                        }
                    }
                }
            }
            "NetworkMode" => {
                let mode = string(value, &path)?;
                if mode != "host" {
                    return Err(err(
                        &path,
                        format!("{mode:?} is not supported; modules use the host network (\"host\")"),
                    ));
                }
            }
            "Memory" => {
                spec.memory_limit = Some(value.as_u64().ok_or_else(|| err(&path, "expected bytes as an integer"))?)
            }
            "NanoCpus" => spec.nano_cpus = Some(value.as_u64().ok_or_else(|| err(&path, "expected an integer"))?),
            "CpuShares" => spec.cpu_shares = Some(value.as_u64().ok_or_else(|| err(&path, "expected an integer"))?),
            "Privileged" => spec.privileged = value.as_bool().ok_or_else(|| err(&path, "expected true or false"))?,
            "CapAdd" => spec.cap_add = strings(value, &path)?,
            "CapDrop" => spec.cap_drop = strings(value, &path)?,
            "Devices" => {
                let devices = value.as_array().ok_or_else(|| err(&path, "expected an array"))?;
                for (i, device) in devices.iter().enumerate() {
                    let dpath = format!("{path}[{i}]");
                    let device = object(device, &dpath)?;
                    let host =
                        device.get("PathOnHost").map(|v| string(v, &format!("{dpath}.PathOnHost"))).transpose()?;
                    let host = host.ok_or_else(|| err(&format!("{dpath}.PathOnHost"), "is required"))?;
                    let container = match device.get("PathInContainer") {
                        Some(v) => string(v, &format!("{dpath}.PathInContainer"))?,
                        None => host.clone(),
                    };
                    let permissions = match device.get("CgroupPermissions") {
                        Some(v) => string(v, &format!("{dpath}.CgroupPermissions"))?,
                        None => "rwm".to_owned(),
                    };
                    if permissions.is_empty() || !permissions.chars().all(|c| "rwm".contains(c)) {
                        return Err(err(&format!("{dpath}.CgroupPermissions"), "must be a combination of r, w and m"));
                    }
                    spec.devices.push(Device { host: PathBuf::from(host), container, permissions });
                }
            }
            // Docker's default restart handling is the agent's job; "no" is what Azure writes.
            "RestartPolicy" if value.get("Name").and_then(Value::as_str).is_none_or(|n| n.is_empty() || n == "no") => {}
            "LogConfig" => {
                return Err(err(
                    &path,
                    "logging is configured by the agent (size-capped files per module), not per container",
                ));
            }
            _ => return Err(err(&path, "is not supported")),
        }
    }
    Ok(())
}

/// Applies `createOptions` JSON text to `spec` (an empty string changes nothing).
pub fn apply(create_options: &str, spec: &mut ContainerSpec) -> Result<(), CreateOptionsError> {
    if create_options.trim().is_empty() {
        return Ok(());
    }
    let value: Value = serde_json::from_str(create_options).map_err(|e| err("", format!("is not valid JSON: {e}")))?;
    let top = object(&value, "")?;
    for (key, value) in top {
        let path = format!(".{key}");
        match key.as_str() {
            "Env" => {
                for (i, pair) in strings(value, &path)?.iter().enumerate() {
                    let (k, v) =
                        pair.split_once('=').ok_or_else(|| err(&format!("{path}[{i}]"), "expected KEY=value"))?;
                    spec.env.insert(k.to_owned(), v.to_owned());
                }
            }
            "Cmd" => spec.cmd = Some(strings(value, &path)?),
            "Entrypoint" => spec.entrypoint = Some(strings(value, &path)?),
            "WorkingDir" => spec.working_dir = Some(string(value, &path)?),
            "User" => spec.user = Some(string(value, &path)?),
            "Hostname" => spec.hostname = Some(string(value, &path)?),
            "Labels" => {
                for (k, v) in object(value, &path)? {
                    spec.labels.insert(k.clone(), string(v, &format!("{path}.{k}"))?);
                }
            }
            "ExposedPorts" => {
                object(value, &path)?;
            }
            "HostConfig" => host_config(object(value, &path)?, spec)?,
            "NetworkingConfig" => {
                let empty = value.get("EndpointsConfig").and_then(Value::as_object).is_none_or(Map::is_empty);
                if !empty {
                    return Err(err(&path, "network endpoints are not supported; modules use the host network"));
                }
            }
            _ => return Err(err(&path, "is not supported")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(options: &str) -> Result<ContainerSpec, CreateOptionsError> {
        let mut spec = ContainerSpec::default();
        apply(options, &mut spec).map(|()| spec)
    }

    #[test]
    fn the_device_subset_is_translated() {
        let spec = applied(
            r#"{"Env":["A=1","B=x=y"],"Cmd":["--serve"],"Entrypoint":"/app","WorkingDir":"/w","User":"1000:1000",
                "Hostname":"publisher","Labels":{"team":"a"},"ExposedPorts":{"8080/tcp":{}},
                "HostConfig":{"Binds":["/data:/data","/etc/cfg:/cfg:ro"],
                  "Mounts":[{"Type":"bind","Source":"/var/x","Target":"/x","ReadOnly":true}],
                  "PortBindings":{"8883/tcp":[{"HostPort":"8883"}]},"NetworkMode":"host",
                  "Memory":268435456,"NanoCpus":500000000,"CpuShares":512,"Privileged":false,
                  "CapAdd":["NET_ADMIN"],"CapDrop":["MKNOD"],
                  "Devices":[{"PathOnHost":"/dev/ttyUSB0","PathInContainer":"/dev/ttyUSB0","CgroupPermissions":"rw"}]}}"#,
        )
        .unwrap();
        assert_eq!(spec.env["B"], "x=y");
        assert_eq!(spec.entrypoint, Some(vec!["/app".to_owned()]));
        assert_eq!(spec.hostname.as_deref(), Some("publisher"));
        assert_eq!(spec.mounts.len(), 3);
        assert!(spec.mounts[1].read_only && spec.mounts[2].read_only && !spec.mounts[0].read_only);
        assert_eq!(
            (spec.memory_limit, spec.nano_cpus, spec.cpu_shares),
            (Some(268_435_456), Some(500_000_000), Some(512))
        );
        assert_eq!(spec.devices[0].permissions, "rw");
        assert_eq!(spec.cap_add, ["NET_ADMIN"]);
    }

    #[test]
    fn the_azure_samples_create_options_are_accepted() {
        let hub = r#"{"HostConfig":{"PortBindings":{"443/tcp":[{"HostPort":"443"}],"5671/tcp":[{"HostPort":"5671"}],"8883/tcp":[{"HostPort":"8883"}]}}}"#;
        assert!(applied(hub).is_ok());
        assert!(applied("").is_ok());
        assert!(applied("{}").is_ok());
    }

    #[test]
    fn unsupported_options_are_refused_with_their_path() {
        let cases = [
            (r#"{"Tty":true}"#, "createOptions.Tty: is not supported"),
            (
                r#"{"HostConfig":{"NetworkMode":"bridge"}}"#,
                "createOptions.HostConfig.NetworkMode: \"bridge\" is not supported",
            ),
            (
                r#"{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}"#,
                "createOptions.HostConfig.PortBindings['80/tcp'][0]: host port 8080 differs",
            ),
            (
                r#"{"HostConfig":{"Binds":["myvolume:/data"]}}"#,
                "createOptions.HostConfig.Binds[0]: \"myvolume\" is a named volume",
            ),
            (
                r#"{"HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/v"}]}}"#,
                "createOptions.HostConfig.Mounts[0].Type",
            ),
            (
                r#"{"HostConfig":{"Devices":[{"PathOnHost":"/dev/x","CgroupPermissions":"rwx"}]}}"#,
                "CgroupPermissions: must be",
            ),
            (r#"{"HostConfig":{"LogConfig":{"Type":"json-file"}}}"#, "logging is configured by the agent"),
            (r#"{"Env":["NOEQUALS"]}"#, "createOptions.Env[0]: expected KEY=value"),
            ("[1]", "createOptions: expected an object"),
            ("{", "createOptions: is not valid JSON"),
        ];
        for (options, expected) in cases {
            let message = applied(options).unwrap_err().to_string();
            assert!(message.contains(expected), "{options}: {message}");
        }
    }
}
