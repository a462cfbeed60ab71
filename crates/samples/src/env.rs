//! The environment the agent gives every module (`IOTEDGE_*`), plus the samples' own hub
//! options.

use crate::ClientError;

/// Who the module is and where its services are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleEnv {
    /// `IOTEDGE_IOTHUBHOSTNAME`.
    pub hub: String,
    /// `IOTEDGE_DEVICEID`.
    pub device: String,
    /// `IOTEDGE_MODULEID`.
    pub module: String,
    /// `IOTEDGE_MODULEGENERATIONID`.
    pub generation: String,
    /// `IOTEDGE_GATEWAYHOSTNAME`: the hub's host on the device.
    pub gateway: String,
    /// `IOTEDGE_WORKLOADURI` without its `unix://` scheme.
    pub workload_socket: String,
    /// `IOTEDGE_APIVERSION`.
    pub api_version: String,
    /// `OUTPOST_HUB_PORT` (default 8883).
    pub port: u16,
    /// `OUTPOST_HUB_TLS` (default `true`): TLS with the workload API's trust bundle.
    pub tls: bool,
}

impl ModuleEnv {
    /// Reads the environment through `get`; the message names what is missing.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ClientError> {
        let required = |name: &'static str| {
            get(name).filter(|v| !v.is_empty()).ok_or(ClientError::Environment {
                name,
                reason: "is not set; the module runs outside Outpost or Azure IoT Edge".into(),
            })
        };
        let uri = required("IOTEDGE_WORKLOADURI")?;
        let workload_socket = uri
            .strip_prefix("unix://")
            .ok_or(ClientError::Environment {
                name: "IOTEDGE_WORKLOADURI",
                reason: format!("{uri:?} is not a unix:// URI"),
            })?
            .to_owned();
        let port = match get("OUTPOST_HUB_PORT") {
            None => 8883,
            Some(p) => p.parse().map_err(|_| ClientError::Environment {
                name: "OUTPOST_HUB_PORT",
                reason: format!("{p:?} is not a port number"),
            })?,
        };
        let tls = match get("OUTPOST_HUB_TLS").as_deref() {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(other) => {
                return Err(ClientError::Environment {
                    name: "OUTPOST_HUB_TLS",
                    reason: format!("{other:?} is neither true nor false"),
                });
            }
        };
        Ok(Self {
            hub: required("IOTEDGE_IOTHUBHOSTNAME")?,
            device: required("IOTEDGE_DEVICEID")?,
            module: required("IOTEDGE_MODULEID")?,
            generation: required("IOTEDGE_MODULEGENERATIONID")?,
            gateway: required("IOTEDGE_GATEWAYHOSTNAME")?,
            workload_socket,
            api_version: get("IOTEDGE_APIVERSION").unwrap_or_else(|| "2019-01-30".into()),
            port,
            tls,
        })
    }

    /// Reads the process environment.
    pub fn from_process() -> Result<Self, ClientError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// An optional numeric setting from the environment, with a default and a clear error.
pub fn number<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ClientError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| ClientError::Environment { name, reason: format!("{value:?} is not a number") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("IOTEDGE_IOTHUBHOSTNAME", "hub.example"),
        ("IOTEDGE_DEVICEID", "dev1"),
        ("IOTEDGE_MODULEID", "sensor"),
        ("IOTEDGE_MODULEGENERATIONID", "gen1"),
        ("IOTEDGE_GATEWAYHOSTNAME", "edge.local"),
        ("IOTEDGE_WORKLOADURI", "unix:///var/run/iotedge/workload.sock"),
    ];

    #[test]
    fn the_agents_environment_is_read() {
        let env = ModuleEnv::from_lookup(lookup(FULL)).unwrap();
        assert_eq!(env.workload_socket, "/var/run/iotedge/workload.sock");
        assert_eq!((env.port, env.tls), (8883, true));
    }

    #[test]
    fn missing_or_bad_variables_are_named() {
        let error = ModuleEnv::from_lookup(lookup(&FULL[1..])).unwrap_err().to_string();
        assert!(error.contains("IOTEDGE_IOTHUBHOSTNAME"), "{error}");
        let mut bad = FULL.to_vec();
        bad.push(("OUTPOST_HUB_PORT", "eighty"));
        let error = ModuleEnv::from_lookup(lookup(&bad)).unwrap_err().to_string();
        assert!(error.contains("OUTPOST_HUB_PORT") && error.contains("eighty"), "{error}");
        let mut tcp = FULL.to_vec();
        tcp[5] = ("IOTEDGE_WORKLOADURI", "http://localhost:15580");
        assert!(ModuleEnv::from_lookup(lookup(&tcp)).unwrap_err().to_string().contains("unix://"));
    }
}
