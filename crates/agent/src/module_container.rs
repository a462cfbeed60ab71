//! A module of the deployment as a container: image, `createOptions`, the manifest's `env`,
//! the `IOTEDGE_*` environment Azure's SDKs read, the module's workload socket directory and
//! a hosts file naming the hub, plus the labels by which the agent recognises its containers
//! (and the configuration they were created with) after a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use outpost_core::manifest::ModuleSpec;
use outpost_core::{DeviceId, GenerationId, ModuleId};
use outpost_runtime::container::{BindMount, ContainerSpec};
use outpost_runtime::create_options::{self, CreateOptionsError};
use sha2::{Digest as _, Sha256};

use crate::planner::ContainerConfig;

pub use outpost_runtime::container::{LABEL_OWNER, OWNER_AGENT as OWNER};
/// Label holding the module id.
pub const LABEL_MODULE: &str = "io.outpost.module";
/// Label holding the fingerprint of the [`ContainerConfig`] the container was created with.
pub const LABEL_CONFIG: &str = "io.outpost.config";
/// Label holding the module identity's generation id.
pub const LABEL_GENERATION: &str = "io.outpost.generation";
/// Where the module's workload socket directory appears in its container (as in Azure).
pub const WORKLOAD_DIR_IN_CONTAINER: &str = "/var/run/iotedge";
/// `IOTEDGE_WORKLOADURI` as modules see it.
pub const WORKLOAD_URI: &str = "unix:///var/run/iotedge/workload.sock";

/// What every module container of this device shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceContext {
    /// The device id.
    pub device_id: DeviceId,
    /// The hub's host name (IOTEDGE_IOTHUBHOSTNAME).
    pub hub_hostname: String,
    /// The local hub's host name (IOTEDGE_GATEWAYHOSTNAME).
    pub gateway_hostname: String,
    /// identityd's workload directory: `{dir}/{module}/workload.sock`.
    pub workload_dir: PathBuf,
    /// The hosts file mounted at `/etc/hosts`.
    pub hosts_file: PathBuf,
    /// IOTEDGE_APIVERSION.
    pub api_version: String,
}

impl ContainerConfig {
    /// A stable digest of this configuration, stored as a container label.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).expect("container configs always serialise");
        Sha256::digest(json).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The contents of the hosts file: the hub's name on the loopback address (modules share the
/// host network, where the hub listens).
pub fn hosts_file(gateway_hostname: &str) -> String {
    format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{gateway_hostname}\n")
}

/// The container for `module` at identity generation `generation`.
pub fn container_spec(
    module: &ModuleId,
    spec: &ModuleSpec,
    generation: &GenerationId,
    device: &DeviceContext,
) -> Result<ContainerSpec, CreateOptionsError> {
    let mut container = ContainerSpec {
        id: module.to_string(),
        image: spec.image.clone(),
        host_network: true,
        hosts_file: Some(device.hosts_file.clone()),
        ..Default::default()
    };
    create_options::apply(&spec.create_options, &mut container)?;
    // The manifest's env wins over createOptions' Env; the runtime's own variables win over
    // both, so that no deployment can make a module claim another identity.
    container.env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let system: BTreeMap<&str, String> = BTreeMap::from([
        ("IOTEDGE_WORKLOADURI", WORKLOAD_URI.to_owned()),
        ("IOTEDGE_AUTHSCHEME", "sasToken".to_owned()),
        ("IOTEDGE_MODULEGENERATIONID", generation.to_string()),
        ("IOTEDGE_IOTHUBHOSTNAME", device.hub_hostname.clone()),
        ("IOTEDGE_DEVICEID", device.device_id.to_string()),
        ("IOTEDGE_MODULEID", module.to_string()),
        ("IOTEDGE_GATEWAYHOSTNAME", device.gateway_hostname.clone()),
        ("IOTEDGE_APIVERSION", device.api_version.clone()),
    ]);
    container.env.extend(system.into_iter().map(|(k, v)| (k.to_owned(), v)));
    container.mounts.push(BindMount {
        source: device.workload_dir.join(module.as_str()),
        target: WORKLOAD_DIR_IN_CONTAINER.to_owned(),
        read_only: true,
    });
    container.labels.insert(LABEL_OWNER.to_owned(), OWNER.to_owned());
    container.labels.insert(LABEL_MODULE.to_owned(), module.to_string());
    container.labels.insert(LABEL_CONFIG.to_owned(), ContainerConfig::of(spec).fingerprint());
    container.labels.insert(LABEL_GENERATION.to_owned(), generation.to_string());
    Ok(container)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_core::manifest::{DesiredStatus, ImagePullPolicy, RestartPolicy};

    fn device() -> DeviceContext {
        DeviceContext {
            device_id: DeviceId::new("dev1").unwrap(),
            hub_hostname: "hub.example".into(),
            gateway_hostname: "edge.local".into(),
            workload_dir: "/run/outpost/mnt".into(),
            hosts_file: "/var/lib/outpost/agent/hosts".into(),
            api_version: "2022-08-03".into(),
        }
    }

    fn module_spec(create_options: &str) -> ModuleSpec {
        ModuleSpec {
            version: "1.0".into(),
            kind: "docker".into(),
            status: DesiredStatus::Running,
            restart_policy: RestartPolicy::Always,
            image_pull_policy: ImagePullPolicy::OnCreate,
            startup_order: 1,
            image: "reg/sensor:1".into(),
            create_options: create_options.into(),
            digest: None,
            env: BTreeMap::from([("SAMPLE_MS".into(), "1000".into()), ("IOTEDGE_MODULEID".into(), "spoofed".into())]),
        }
    }

    #[test]
    fn modules_get_azure_environment_workload_mount_and_labels() {
        let module = ModuleId::new("sensor").unwrap();
        let generation = GenerationId::new("g1").unwrap();
        let spec = module_spec(r#"{"Env":["SAMPLE_MS=5","FROM_OPTIONS=1"]}"#);
        let c = container_spec(&module, &spec, &generation, &device()).unwrap();
        assert_eq!(c.env["SAMPLE_MS"], "1000", "manifest env wins over createOptions");
        assert_eq!(c.env["FROM_OPTIONS"], "1");
        assert_eq!(c.env["IOTEDGE_MODULEID"], "sensor", "a manifest cannot spoof the identity");
        assert_eq!(c.env["IOTEDGE_WORKLOADURI"], "unix:///var/run/iotedge/workload.sock");
        assert_eq!(c.env["IOTEDGE_MODULEGENERATIONID"], "g1");
        assert_eq!(c.env["IOTEDGE_GATEWAYHOSTNAME"], "edge.local");
        for var in ["IOTEDGE_IOTHUBHOSTNAME", "IOTEDGE_DEVICEID", "IOTEDGE_AUTHSCHEME", "IOTEDGE_APIVERSION"] {
            assert!(c.env.contains_key(var), "{var}");
        }
        assert_eq!(c.mounts.last().unwrap().source, std::path::Path::new("/run/outpost/mnt/sensor"));
        assert!(c.host_network);
        assert_eq!(c.labels[LABEL_CONFIG], ContainerConfig::of(&spec).fingerprint());
        assert_eq!(c.labels[LABEL_OWNER], OWNER);
    }

    #[test]
    fn fingerprints_change_with_the_config_only() {
        let a = ContainerConfig::of(&module_spec("{}"));
        assert_eq!(a.fingerprint(), ContainerConfig::of(&module_spec("{}")).fingerprint());
        assert_ne!(a.fingerprint(), ContainerConfig::of(&module_spec("{\"User\":\"1\"}")).fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn bad_create_options_are_reported() {
        let module = ModuleId::new("sensor").unwrap();
        let err = container_spec(&module, &module_spec(r#"{"Tty":true}"#), &GenerationId::new("g").unwrap(), &device())
            .unwrap_err();
        assert_eq!(err.to_string(), "createOptions.Tty: is not supported");
    }

    #[test]
    fn the_hosts_file_names_the_gateway() {
        assert!(hosts_file("edge.local").contains("127.0.0.1\tedge.local\n"));
    }
}
