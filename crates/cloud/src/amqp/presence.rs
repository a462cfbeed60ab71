//! Which devices are connected, from RabbitMQ's own events (the `rabbitmq_event_exchange`
//! plugin publishing `connection.created` / `connection.closed` to `amq.rabbitmq.event` in
//! the cloud's virtual host): a device is connected while at least one of its components'
//! connections is open. Without the plugin, the registry shows last activity only.

use std::collections::HashMap;
use std::sync::Arc;

use lapin::Connection;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::LinkError;
use super::inbound::header;
use crate::service::Cloud;

/// The plugin's exchange.
pub const EVENT_EXCHANGE: &str = "amq.rabbitmq.event";

/// Connections by name, and the number each device has open; sans-IO.
#[derive(Debug, Default)]
pub struct Presence {
    owners: HashMap<String, String>,
    open: HashMap<String, usize>,
}

impl Presence {
    /// A connection `name` of `user` opened; `Some(user)` when that user just came online.
    pub fn opened(&mut self, name: &str, user: &str) -> Option<String> {
        if self.owners.insert(name.to_owned(), user.to_owned()).is_some() {
            return None;
        }
        let count = self.open.entry(user.to_owned()).or_default();
        *count += 1;
        (*count == 1).then(|| user.to_owned())
    }

    /// Connection `name` closed; `Some(user)` when its user has no connection left.
    pub fn closed(&mut self, name: &str) -> Option<String> {
        let user = self.owners.remove(name)?;
        let count = self.open.entry(user.clone()).or_default();
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.open.remove(&user);
            return Some(user);
        }
        None
    }
}

/// Follows connection events until the connection fails or `shutdown`. Returns `Ok` at once
/// (tracking off) when the broker has no event exchange.
pub async fn follow(
    connection: &Connection,
    cloud: Arc<Cloud>,
    service_user: String,
    shutdown: CancellationToken,
) -> Result<(), LinkError> {
    let channel = connection.create_channel().await?;
    let exclusive = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
    let queue = channel.queue_declare("".into(), exclusive, FieldTable::default()).await?;
    for key in ["connection.created", "connection.closed"] {
        let bound = channel
            .queue_bind(
                queue.name().clone(),
                EVENT_EXCHANGE.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await;
        if let Err(e) = bound {
            tracing::warn!(error = %e, "no {EVENT_EXCHANGE} in the virtual host (enable rabbitmq_event_exchange with event_exchange.vhost): device connection states are not tracked");
            shutdown.cancelled().await;
            return Ok(());
        }
    }
    let mut events = channel
        .basic_consume(
            queue.name().clone(),
            "outpost-cloud-presence".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut presence = Presence::default();
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = events.next() => match next {
                Some(delivery) => delivery?,
                None => return Err(LinkError::Refused("the presence consumer was cancelled".into())),
            },
        };
        let name = header(&delivery, "name").unwrap_or_default();
        let change = match delivery.routing_key.as_str() {
            "connection.created" => match header(&delivery, "user") {
                Some(user) if user != service_user => presence.opened(&name, &user).map(|user| (user, true)),
                _ => None,
            },
            "connection.closed" => presence.closed(&name).map(|user| (user, false)),
            _ => None,
        };
        if let Some((device, connected)) = change {
            cloud.touch(&device, Some(connected));
        }
        delivery.acker.ack(BasicAckOptions::default()).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_online_while_any_of_its_connections_is() {
        let mut p = Presence::default();
        assert_eq!(p.opened("c1", "dev"), Some("dev".into()));
        assert_eq!(p.opened("c2", "dev"), None, "the hub joins the agent");
        assert_eq!(p.opened("c2", "dev"), None, "a repeated event counts once");
        assert_eq!(p.closed("c1"), None);
        assert_eq!(p.closed("c2"), Some("dev".into()));
        assert_eq!(p.closed("c3"), None, "an unknown connection (opened before we listened)");
    }
}
