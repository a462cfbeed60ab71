//! Who may do what on the message broker, sans-IO: the answers to RabbitMQ's HTTP auth
//! backend questions (user, vhost, resource, topic). Devices sign in with a SAS token and may
//! only publish to the device → cloud exchange under their own routing keys and read their
//! own queues; the cloud's service user may do anything in its virtual host.

use outpost_core::topology::{self, D2C_EXCHANGE};
use subtle::ConstantTimeEq as _;

/// An answer to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed (for a user: with these tags, space-separated).
    Allow(&'static str),
    /// Refused, and why (for the logs; the broker only hears "deny").
    Deny(String),
}

impl Decision {
    /// The response body RabbitMQ expects.
    pub fn body(&self) -> String {
        match self {
            Self::Allow("") => "allow".to_owned(),
            Self::Allow(tags) => format!("allow {tags}"),
            Self::Deny(_) => "deny".to_owned(),
        }
    }
}

/// A resource kind the broker asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// An exchange.
    Exchange,
    /// A queue.
    Queue,
    /// A topic (routing key) on a topic exchange.
    Topic,
}

impl Resource {
    /// Parses the `resource` parameter.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "exchange" => Some(Self::Exchange),
            "queue" => Some(Self::Queue),
            "topic" => Some(Self::Topic),
            _ => None,
        }
    }
}

/// The access asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Declare or delete.
    Configure,
    /// Publish to an exchange, bind a queue to it.
    Write,
    /// Consume or get from a queue, bind from an exchange.
    Read,
}

impl Permission {
    /// Parses the `permission` parameter.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "configure" => Some(Self::Configure),
            "write" => Some(Self::Write),
            "read" => Some(Self::Read),
            _ => None,
        }
    }
}

/// The policy: the virtual host and the cloud's own credentials.
#[derive(Clone)]
pub struct Policy {
    vhost: String,
    service_user: String,
    service_password: String,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy").field("vhost", &self.vhost).field("service_user", &self.service_user).finish()
    }
}

impl Policy {
    /// The policy for `vhost`, whose service user is `service_user` with `service_password`.
    pub fn new(vhost: impl Into<String>, service_user: impl Into<String>, service_password: impl Into<String>) -> Self {
        Self { vhost: vhost.into(), service_user: service_user.into(), service_password: service_password.into() }
    }

    /// Whether `username` is the cloud's own service user.
    pub fn is_service(&self, username: &str) -> bool {
        username == self.service_user
    }

    /// May `username` sign in with `password`? Devices are checked by `authenticate`
    /// (registered, enabled, token signed with their key).
    pub fn user(
        &self,
        username: &str,
        password: &str,
        authenticate: impl FnOnce(&str, &str) -> Result<(), String>,
    ) -> Decision {
        if self.is_service(username) {
            return if bool::from(password.as_bytes().ct_eq(self.service_password.as_bytes())) {
                Decision::Allow("")
            } else {
                Decision::Deny("wrong password for the service user".into())
            };
        }
        match authenticate(username, password) {
            Ok(()) => Decision::Allow(""),
            Err(reason) => Decision::Deny(reason),
        }
    }

    /// May `username` open `vhost`?
    pub fn vhost(&self, username: &str, vhost: &str) -> Decision {
        if vhost == self.vhost {
            Decision::Allow("")
        } else {
            Decision::Deny(format!("{username:?} may use only virtual host {:?}, not {vhost:?}", self.vhost))
        }
    }

    /// May `username` have `permission` on the exchange or queue `name`?
    pub fn resource(
        &self,
        username: &str,
        vhost: &str,
        resource: Resource,
        name: &str,
        permission: Permission,
    ) -> Decision {
        if vhost != self.vhost {
            return self.vhost(username, vhost);
        }
        if self.is_service(username) {
            return Decision::Allow("");
        }
        let allowed = match (resource, permission) {
            (Resource::Exchange, Permission::Write) => name == D2C_EXCHANGE,
            (Resource::Queue, Permission::Read) => name.starts_with(&topology::device_queue_prefix(username)),
            _ => false,
        };
        if allowed {
            Decision::Allow("")
        } else {
            Decision::Deny(format!("device {username:?} may not {permission:?} {resource:?} {name:?}"))
        }
    }

    /// May `username` publish (write) or bind (read) with `routing_key` on topic exchange
    /// `exchange`?
    pub fn topic(
        &self,
        username: &str,
        vhost: &str,
        exchange: &str,
        permission: Permission,
        routing_key: &str,
    ) -> Decision {
        if vhost != self.vhost {
            return self.vhost(username, vhost);
        }
        if self.is_service(username) {
            return Decision::Allow("");
        }
        let own = topology::parse_up_key(routing_key).is_some_and(|key| key.device == username);
        if exchange == D2C_EXCHANGE && permission == Permission::Write && own {
            Decision::Allow("")
        } else {
            Decision::Deny(format!(
                "device {username:?} may not {permission:?} routing key {routing_key:?} on {exchange:?}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_core::topology::{Component, UpKind, device_queue, up_key};

    fn policy() -> Policy {
        Policy::new("outpost", "outpost-cloud", "s3cret")
    }

    fn allowed(decision: Decision) -> bool {
        matches!(decision, Decision::Allow(_))
    }

    #[test]
    fn the_service_user_needs_its_password() {
        let p = policy();
        assert_eq!(p.user("outpost-cloud", "s3cret", |_, _| Err("not a device".into())), Decision::Allow(""));
        assert!(!allowed(p.user("outpost-cloud", "s3cre", |_, _| Ok(()))));
        assert!(allowed(p.resource("outpost-cloud", "outpost", Resource::Queue, "anything", Permission::Configure)));
        assert!(!allowed(p.resource("outpost-cloud", "/", Resource::Queue, "anything", Permission::Configure)));
    }

    #[test]
    fn devices_are_checked_by_the_registry() {
        let p = policy();
        assert!(allowed(p.user("d1", "token", |u, t| if (u, t) == ("d1", "token") {
            Ok(())
        } else {
            Err("no".into())
        })));
        assert_eq!(p.user("d1", "bad", |_, _| Err("expired".into())), Decision::Deny("expired".into()));
    }

    #[test]
    fn devices_publish_only_under_their_own_keys() {
        let p = policy();
        assert!(allowed(p.resource("d1", "outpost", Resource::Exchange, D2C_EXCHANGE, Permission::Write)));
        assert!(!allowed(p.resource("d1", "outpost", Resource::Exchange, "amq.default", Permission::Write)));
        assert!(!allowed(p.resource("d1", "outpost", Resource::Exchange, "outpost.events", Permission::Read)));
        let own = up_key("d1", Some("sensor"), UpKind::Telemetry);
        let other = up_key("d2", Some("sensor"), UpKind::Telemetry);
        assert!(allowed(p.topic("d1", "outpost", D2C_EXCHANGE, Permission::Write, &own)));
        assert!(!allowed(p.topic("d1", "outpost", D2C_EXCHANGE, Permission::Write, &other)));
        assert!(!allowed(p.topic("d1", "outpost", D2C_EXCHANGE, Permission::Write, "d1.#")));
        assert!(!allowed(p.topic("d1", "outpost", D2C_EXCHANGE, Permission::Read, &own)));
        // A device whose id is a prefix of another's gains nothing.
        assert!(!allowed(p.topic(
            "d",
            "outpost",
            D2C_EXCHANGE,
            Permission::Write,
            &up_key("d.1", None, UpKind::Reported)
        )));
    }

    #[test]
    fn devices_read_only_their_own_queues_and_configure_nothing() {
        let p = policy();
        let own = device_queue("d1", Component::Agent);
        assert!(allowed(p.resource("d1", "outpost", Resource::Queue, &own, Permission::Read)));
        assert!(!allowed(p.resource("d1", "outpost", Resource::Queue, &own, Permission::Configure)));
        assert!(!allowed(p.resource(
            "d1",
            "outpost",
            Resource::Queue,
            &device_queue("d2", Component::Hub),
            Permission::Read
        )));
        assert!(!allowed(p.resource(
            "d",
            "outpost",
            Resource::Queue,
            &device_queue("d.1", Component::Hub),
            Permission::Read
        )));
        assert!(!allowed(p.resource("d1", "other", Resource::Queue, &own, Permission::Read)));
        assert!(!allowed(p.vhost("d1", "/")));
    }

    #[test]
    fn answers_are_what_rabbitmq_reads() {
        assert_eq!(Decision::Allow("").body(), "allow");
        assert_eq!(Decision::Allow("management").body(), "allow management");
        assert_eq!(Decision::Deny("x".into()).body(), "deny");
    }
}
