//! What a CONNECT claims to be: an IoT Hub module or device (by its user name's shape), or a
//! plain MQTT client. Client id and user name must agree, as IoT Hub requires.

use crate::mqtt::Connect;

/// A claimed identity, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// `{hub}/{device}[/{module}]/?api-version=…` with client id `{device}[/{module}]`.
    IotHub {
        /// Hub host name.
        hub: String,
        /// Device id.
        device: String,
        /// Module id, for modules.
        module: Option<String>,
    },
    /// Anything else: a configured user, or anonymous.
    Plain {
        /// The user name, if any.
        username: Option<String>,
    },
}

/// Parses IoT Hub's user name form; `None` if `username` is not in it.
pub fn parse_iothub_username(username: &str) -> Option<(String, String, Option<String>)> {
    let (path, query) = username.split_once("/?")?;
    if !query.split('&').any(|p| p.starts_with("api-version=")) {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [hub, device] if !hub.is_empty() && !device.is_empty() => Some(((*hub).to_owned(), (*device).to_owned(), None)),
        [hub, device, module] if !hub.is_empty() && !device.is_empty() && !module.is_empty() => {
            Some(((*hub).to_owned(), (*device).to_owned(), Some((*module).to_owned())))
        }
        _ => None,
    }
}

/// The claim a CONNECT makes; an error says why client id and user name disagree.
pub fn claim(connect: &Connect) -> Result<Claim, String> {
    let Some(username) = &connect.username else { return Ok(Claim::Plain { username: None }) };
    let Some((hub, device, module)) = parse_iothub_username(username) else {
        return Ok(Claim::Plain { username: Some(username.clone()) });
    };
    let expected = match &module {
        Some(module) => format!("{device}/{module}"),
        None => device.clone(),
    };
    if connect.client_id != expected {
        return Err(format!("client id {:?} does not match the user name's identity {expected:?}", connect.client_id));
    }
    Ok(Claim::IotHub { hub, device, module })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{Properties, Version};

    fn connect(client_id: &str, username: Option<&str>) -> Connect {
        Connect {
            version: Version::V311,
            client_id: client_id.into(),
            clean_start: false,
            keep_alive: 60,
            username: username.map(str::to_owned),
            password: None,
            will: None,
            properties: Properties::default(),
        }
    }

    #[test]
    fn iothub_user_names_are_recognised_and_must_match_the_client_id() {
        let module = connect("dev1/sensor", Some("hub.example/dev1/sensor/?api-version=2018-06-30"));
        assert_eq!(
            claim(&module).unwrap(),
            Claim::IotHub { hub: "hub.example".into(), device: "dev1".into(), module: Some("sensor".into()) }
        );
        let sdk = connect(
            "dev1",
            Some("hub.example/dev1/?api-version=2021-04-12&DeviceClientType=py-azure-iot-device%2F2.14.0"),
        );
        assert_eq!(
            claim(&sdk).unwrap(),
            Claim::IotHub { hub: "hub.example".into(), device: "dev1".into(), module: None }
        );
        let mismatch = connect("dev1/other", Some("hub.example/dev1/sensor/?api-version=2018-06-30"));
        assert!(claim(&mismatch).unwrap_err().contains("does not match"));
        assert_eq!(claim(&connect("x", Some("alice"))).unwrap(), Claim::Plain { username: Some("alice".into()) });
        assert_eq!(claim(&connect("x", None)).unwrap(), Claim::Plain { username: None });
        assert_eq!(parse_iothub_username("hub/dev/?foo=1"), None, "no api-version");
        assert_eq!(parse_iothub_username("hub//m/?api-version=1"), None);
    }
}
