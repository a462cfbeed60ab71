//! The module's MQTT session with the hub: IoT Hub's client id and user name, a SAS token
//! from the workload API as password (renewed on every reconnection, so an expired token
//! only costs a reconnect), outputs, inputs, and twin desired properties (the full set from
//! a twin GET after each connection, then patches merged in).

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};

use crate::ClientError;
use crate::env::ModuleEnv;
use crate::message::{Message, output_topic, parse_input};
use crate::workload;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A message that arrived on one of the module's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The input's name.
    pub name: String,
    /// The message.
    pub message: Message,
}

/// A connected module.
#[derive(Debug, Clone)]
pub struct ModuleClient {
    client: AsyncClient,
    env: ModuleEnv,
    desired: watch::Receiver<serde_json::Value>,
}

impl ModuleClient {
    /// Connects to the hub named by `env` and keeps the session up in the background;
    /// returns the client and the stream of input messages.
    pub async fn connect(env: ModuleEnv) -> Result<(Self, mpsc::Receiver<Input>), ClientError> {
        let mut options = MqttOptions::new(format!("{}/{}", env.device, env.module), env.gateway.clone(), env.port);
        options.set_keep_alive(Duration::from_secs(60));
        // A persistent session: the hub keeps subscriptions and queued messages across
        // reconnections, as it does for Azure's SDKs.
        options.set_clean_session(false);
        options.set_max_packet_size(256 * 1024 + 1024, 256 * 1024 + 1024);
        if env.tls {
            // Both of rustls's providers are compiled into the workspace; say which (ring,
            // as everywhere in Outpost). An error only means one is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let ca = workload::trust_bundle(&env).await?.into_bytes();
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth: None,
            }));
        }
        let user = format!("{}/{}/{}/?api-version=2018-06-30", env.hub, env.device, env.module);
        options.set_credentials(user, workload::module_token(&env, now()).await?);
        let (client, eventloop) = AsyncClient::new(options, 64);
        let (inputs_tx, inputs) = mpsc::channel(64);
        let (desired_tx, desired) = watch::channel(serde_json::Value::Object(Default::default()));
        tokio::spawn(run(eventloop, client.clone(), env.clone(), inputs_tx, desired_tx));
        Ok((Self { client, env, desired }, inputs))
    }

    /// Sends `message` on output `output` (QoS 1: the hub has it once this returns and the
    /// acknowledgement arrives).
    pub async fn send_output(&self, output: &str, message: &Message) -> Result<(), ClientError> {
        let topic = output_topic(&self.env.device, &self.env.module, output, message);
        self.client
            .publish(topic, QoS::AtLeastOnce, false, message.body.clone())
            .await
            .map_err(|e| ClientError::Mqtt(e.to_string()))
    }

    /// The module twin's desired properties, updated as patches arrive.
    pub fn desired(&self) -> watch::Receiver<serde_json::Value> {
        self.desired.clone()
    }
}

/// Merges a desired-properties patch: `null` removes a property, objects merge.
pub fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(serde_json::Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

async fn subscribe(client: &AsyncClient, env: &ModuleEnv) {
    let topics = [
        format!("devices/{}/modules/{}/#", env.device, env.module),
        "$iothub/twin/res/#".to_owned(),
        "$iothub/twin/PATCH/properties/desired/#".to_owned(),
    ];
    for topic in topics {
        if let Err(e) = client.subscribe(topic.clone(), QoS::AtLeastOnce).await {
            tracing::warn!(topic, error = %e, "cannot subscribe");
        }
    }
}

async fn run(
    mut eventloop: EventLoop,
    client: AsyncClient,
    env: ModuleEnv,
    inputs: mpsc::Sender<Input>,
    desired: watch::Sender<serde_json::Value>,
) {
    let mut failures: u32 = 0;
    let mut rid: u64 = 0;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                failures = 0;
                tracing::info!(session_present = ack.session_present, "connected to the hub");
                if !ack.session_present {
                    subscribe(&client, &env).await;
                }
                rid += 1;
                let _ =
                    client.publish(format!("$iothub/twin/GET/?$rid={rid}"), QoS::AtMostOnce, false, Vec::new()).await;
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let topic = publish.topic.as_str();
                if let Some((name, message)) = parse_input(&env.device, &env.module, topic, &publish.payload) {
                    if inputs.send(Input { name, message }).await.is_err() {
                        return;
                    }
                } else if topic.starts_with("$iothub/twin/res/200/") {
                    if let Ok(twin) = serde_json::from_slice::<serde_json::Value>(&publish.payload) {
                        let full = twin.get("desired").cloned().unwrap_or_default();
                        desired.send_replace(full);
                    }
                } else if topic.starts_with("$iothub/twin/PATCH/properties/desired/")
                    && let Ok(patch) = serde_json::from_slice::<serde_json::Value>(&publish.payload)
                {
                    desired.send_modify(|current| merge(current, &patch));
                }
            }
            Ok(_) => {}
            Err(error) => {
                failures = failures.saturating_add(1);
                let wait = Duration::from_secs(1u64 << failures.min(5));
                tracing::warn!(error = %error, retry_in = ?wait, "hub connection lost");
                tokio::time::sleep(wait).await;
                // A fresh token for the reconnection.
                match workload::module_token(&env, now()).await {
                    Ok(token) => {
                        let user = format!("{}/{}/{}/?api-version=2018-06-30", env.hub, env.device, env.module);
                        eventloop.mqtt_options.set_credentials(user, token);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot renew the module's token"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_patches_merge_and_null_removes() {
        let mut desired = serde_json::json!({"a": 1, "nested": {"x": 1, "y": 2}, "$version": 1});
        merge(&mut desired, &serde_json::json!({"a": null, "nested": {"y": 3}, "b": true, "$version": 2}));
        assert_eq!(desired, serde_json::json!({"nested": {"x": 1, "y": 3}, "b": true, "$version": 2}));
    }
}
