//! The OCI runtime spec (config.json) for a container: containerd's defaults (capabilities,
//! mounts, masked paths, namespaces) with the image's settings and the container spec's
//! overrides applied.

use serde_json::{Value, json};

use crate::container::ContainerSpec;
use crate::error::RuntimeError;
use crate::oci::ContainerDefaults;

/// The capabilities a non-privileged container keeps (containerd's default set).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, for privileged containers.
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn capability(name: &str) -> Result<String, RuntimeError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(RuntimeError::InvalidSpec(format!("unknown capability {name:?}")))
    }
}

fn capabilities(spec: &ContainerSpec) -> Result<Vec<String>, RuntimeError> {
    if spec.privileged {
        return Ok(ALL_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect());
    }
    let mut caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect();
    for add in &spec.cap_add {
        if add.eq_ignore_ascii_case("ALL") {
            caps = ALL_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect();
            continue;
        }
        let cap = capability(add)?;
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    for drop in &spec.cap_drop {
        if drop.eq_ignore_ascii_case("ALL") {
            caps.clear();
            continue;
        }
        let cap = capability(drop)?;
        caps.retain(|c| *c != cap);
    }
    Ok(caps)
}

fn user(user: &str) -> Result<(u32, u32), RuntimeError> {
    let bad = || RuntimeError::InvalidSpec(format!("user {user:?} must be numeric uid[:gid]; names are not resolved"));
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid: u32 = uid.parse().map_err(|_| bad())?;
    let gid: u32 = match gid {
        Some(g) => g.parse().map_err(|_| bad())?,
        None => 0,
    };
    Ok((uid, gid))
}

struct DeviceNode {
    kind: &'static str,
    major: u64,
    minor: u64,
    mode: u32,
}

fn device_node(path: &std::path::Path) -> Result<DeviceNode, RuntimeError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta =
        std::fs::metadata(path).map_err(|e| RuntimeError::InvalidSpec(format!("device {}: {e}", path.display())))?;
    let kind = if meta.file_type().is_char_device() {
        "c"
    } else if meta.file_type().is_block_device() {
        "b"
    } else {
        return Err(RuntimeError::InvalidSpec(format!("{} is not a device node", path.display())));
    };
    let rdev = meta.rdev();
    // The Linux encoding of dev_t (glibc's gnu_dev_major / gnu_dev_minor).
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    Ok(DeviceNode { kind, major, minor, mode: meta.mode() & 0o7777 })
}

/// Builds the runtime spec for `spec` on top of the image's `defaults`; the container's
/// cgroup is `/{namespace}/{id}`.
pub fn runtime_spec(
    spec: &ContainerSpec,
    defaults: &ContainerDefaults,
    namespace: &str,
) -> Result<Value, RuntimeError> {
    let mut args: Vec<String> = spec.entrypoint.clone().or_else(|| defaults.entrypoint.clone()).unwrap_or_default();
    let cmd = match (&spec.cmd, &spec.entrypoint) {
        (Some(cmd), _) => cmd.clone(),
        // A new entrypoint drops the image's command, as Docker does.
        (None, Some(_)) => Vec::new(),
        (None, None) => defaults.cmd.clone().unwrap_or_default(),
    };
    args.extend(cmd);
    if args.is_empty() {
        return Err(RuntimeError::InvalidSpec(format!("container {} has no entrypoint or command", spec.id)));
    }
    let mut env: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in &spec.env {
        seen.insert(key.clone());
        env.push(format!("{key}={value}"));
    }
    for pair in &defaults.env {
        let key = pair.split_once('=').map_or(pair.as_str(), |(k, _)| k);
        if !seen.contains(key) {
            env.push(pair.clone());
        }
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned());
    }
    let (uid, gid) = match spec.user.as_deref().or(Some(defaults.user.as_str())).filter(|u| !u.is_empty()) {
        Some(u) => user(u)?,
        None => (0, 0),
    };
    let cwd = spec
        .working_dir
        .clone()
        .or_else(|| Some(defaults.working_dir.clone()))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    if !cwd.starts_with('/') {
        return Err(RuntimeError::InvalidSpec(format!("working directory {cwd:?} must be absolute")));
    }
    let caps = capabilities(spec)?;

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
    ];
    if let Some(hosts) = &spec.hosts_file {
        mounts.push(json!({"destination": "/etc/hosts", "type": "bind", "source": hosts, "options": ["rbind", "ro"]}));
    }
    for bind in &spec.mounts {
        if !bind.target.starts_with('/') {
            return Err(RuntimeError::InvalidSpec(format!("mount target {:?} must be absolute", bind.target)));
        }
        let mode = if bind.read_only { "ro" } else { "rw" };
        mounts.push(
            json!({"destination": bind.target, "type": "bind", "source": bind.source, "options": ["rbind", mode]}),
        );
    }

    let mut namespaces =
        vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"}), json!({"type": "mount"})];
    if !spec.host_network {
        namespaces.push(json!({"type": "network"}));
    }
    let mut device_rules = vec![json!({"allow": spec.privileged, "access": "rwm"})];
    let mut devices = Vec::new();
    for device in &spec.devices {
        let node = device_node(&device.host)?;
        if !device.container.starts_with("/dev/") {
            return Err(RuntimeError::InvalidSpec(format!("device path {:?} must be under /dev", device.container)));
        }
        devices.push(json!({
            "path": device.container, "type": node.kind, "major": node.major, "minor": node.minor,
            "fileMode": node.mode, "uid": 0, "gid": 0,
        }));
        device_rules.push(json!({
            "allow": true, "type": node.kind, "major": node.major, "minor": node.minor, "access": device.permissions,
        }));
    }
    let mut resources = json!({"devices": device_rules});
    if let Some(bytes) = spec.memory_limit {
        resources["memory"] = json!({"limit": bytes});
    }
    if let Some(shares) = spec.cpu_shares {
        resources["cpu"] = json!({"shares": shares});
    }
    if let Some(nanos) = spec.nano_cpus {
        let period: u64 = 100_000;
        resources["cpu"]["quota"] = json!(nanos.saturating_mul(period) / 1_000_000_000);
        resources["cpu"]["period"] = json!(period);
    }
    let mut linux = json!({
        "resources": resources,
        "cgroupsPath": format!("/{namespace}/{}", spec.id),
        "namespaces": namespaces,
        "devices": devices,
    });
    if !spec.privileged {
        linux["maskedPaths"] = json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ]);
        linux["readonlyPaths"] = json!(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
    }
    Ok(json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": !spec.privileged,
        },
        "root": {"path": "rootfs"},
        "hostname": spec.hostname.as_deref().unwrap_or(&spec.id),
        "mounts": mounts,
        "linux": linux,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec { id: "m".into(), image: "i".into(), ..Default::default() }
    }

    #[test]
    fn image_defaults_are_used_and_overridden_like_docker() {
        let defaults = ContainerDefaults {
            entrypoint: Some(vec!["/bin/app".into()]),
            cmd: Some(vec!["--serve".into()]),
            env: vec!["A=image".into(), "B=image".into()],
            user: "1000:1000".into(),
            ..Default::default()
        };
        let s = runtime_spec(&spec(), &defaults, "ns").unwrap();
        assert_eq!(s["process"]["args"], json!(["/bin/app", "--serve"]));
        assert_eq!(s["process"]["user"], json!({"uid": 1000, "gid": 1000}));

        let mut custom = spec();
        custom.entrypoint = Some(vec!["/bin/other".into()]);
        custom.env.insert("A".into(), "spec".into());
        let s = runtime_spec(&custom, &defaults, "ns").unwrap();
        assert_eq!(s["process"]["args"], json!(["/bin/other"]), "a new entrypoint drops the image's command");
        let env: Vec<String> = serde_json::from_value(s["process"]["env"].clone()).unwrap();
        assert!(
            env.contains(&"A=spec".to_owned())
                && env.contains(&"B=image".to_owned())
                && !env.contains(&"A=image".to_owned())
        );
    }

    #[test]
    fn host_network_capabilities_and_limits_shape_the_spec() {
        let mut s = spec();
        s.cmd = Some(vec!["/x".into()]);
        s.host_network = true;
        s.cap_add = vec!["NET_ADMIN".into()];
        s.cap_drop = vec!["CAP_MKNOD".into()];
        s.memory_limit = Some(64 << 20);
        s.nano_cpus = Some(500_000_000);
        let v = runtime_spec(&s, &ContainerDefaults::default(), "ns").unwrap();
        let namespaces = v["linux"]["namespaces"].to_string();
        assert!(!namespaces.contains("network"));
        let caps = v["process"]["capabilities"]["bounding"].to_string();
        assert!(caps.contains("CAP_NET_ADMIN") && !caps.contains("CAP_MKNOD"));
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
    }

    #[test]
    fn devices_are_created_and_allowed() {
        let mut s = spec();
        s.cmd = Some(vec!["/x".into()]);
        s.devices.push(crate::container::Device {
            host: "/dev/null".into(),
            container: "/dev/mynull".into(),
            permissions: "rw".into(),
        });
        let v = runtime_spec(&s, &ContainerDefaults::default(), "ns").unwrap();
        assert_eq!(v["linux"]["devices"][0]["path"], "/dev/mynull");
        assert_eq!(
            (v["linux"]["devices"][0]["major"].as_u64(), v["linux"]["devices"][0]["minor"].as_u64()),
            (Some(1), Some(3))
        );
        assert_eq!(v["linux"]["resources"]["devices"][1]["access"], "rw");
        s.devices[0].host = "/etc/hostname".into();
        assert!(
            runtime_spec(&s, &ContainerDefaults::default(), "ns")
                .unwrap_err()
                .to_string()
                .contains("not a device node")
        );
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let err = runtime_spec(&spec(), &ContainerDefaults::default(), "ns").unwrap_err().to_string();
        assert!(err.contains("no entrypoint or command"), "{err}");
        let mut s = spec();
        s.cmd = Some(vec!["/x".into()]);
        s.user = Some("nobody".into());
        assert!(runtime_spec(&s, &ContainerDefaults::default(), "ns").unwrap_err().to_string().contains("numeric"));
        s.user = None;
        s.cap_add = vec!["FLY".into()];
        assert!(
            runtime_spec(&s, &ContainerDefaults::default(), "ns")
                .unwrap_err()
                .to_string()
                .contains("unknown capability")
        );
    }
}
