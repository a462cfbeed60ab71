//! The hub's link to the control plane (outpost-upstream, the device's `hub` queue):
//! `$upstream` messages go up as telemetry through [`CloudUplink`], confirmed by the broker
//! before the hub forgets them; direct method calls for modules come down and are answered
//! through the broker's method machinery; cloud-to-device messages are handed to the
//! broker (stored for persistent subscribers before they are acknowledged); modules'
//! reported properties go up as numbered merge patches every 5 s ([`ReportedSync`]).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use outpost_core::routes::{MessageSource, system};
use outpost_core::topology::{DownKind, UpKind};
use outpost_upstream::{Downlink, Downlinks, LinkState, ReportedState, UpMessage, Upstream};
use tokio_util::sync::CancellationToken;

use crate::auth::Access;
use crate::broker::methods::CallRefused;
use crate::mqtt::{Properties, Publish, QoS};
use crate::server::{CallError, Handle};
use crate::uplink::{Uplink, UplinkError};

/// How long a method call may wait when the request carries no expiration.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Header carrying the output a module sent a message on.
pub const OUTPUT_HEADER: &str = "x-outpost-output";

/// Reads a stored `$upstream` message (its telemetry topic and property bag) as the
/// telemetry message that goes up.
pub fn up_message(publish: &Publish) -> Option<UpMessage> {
    let rest = publish.topic.strip_prefix("devices/")?;
    let (device, rest) = rest.split_once('/')?;
    let access = match rest.strip_prefix("modules/") {
        Some(rest) => Access::Module { device: device.to_owned(), module: rest.split_once('/')?.0.to_owned() },
        None => Access::Device { device: device.to_owned() },
    };
    let message = crate::dialect::telemetry(&access, publish)?;
    let (module, output) = match &message.source {
        MessageSource::Module { module, output, .. } => (Some(module.clone()), output.clone()),
        MessageSource::Telemetry { .. } => (None, None),
    };
    let mut headers: Vec<(String, String)> = message.properties.into_iter().collect();
    if let Some(output) = output {
        headers.push((OUTPUT_HEADER.into(), output));
    }
    let system = |name: &str| message.system.get(name).cloned();
    Some(UpMessage {
        module,
        kind: UpKind::Telemetry,
        body: Bytes::from(message.body),
        message_id: system(system::MESSAGE_ID),
        correlation_id: system(system::CORRELATION_ID),
        content_type: system(system::CONTENT_TYPE),
        content_encoding: system(system::CONTENT_ENCODING),
        headers,
        ..UpMessage::default()
    })
}

/// `$upstream` through the cloud link.
#[derive(Debug)]
pub struct CloudUplink {
    upstream: Upstream,
}

impl CloudUplink {
    /// Over `upstream`.
    pub fn new(upstream: Upstream) -> Self {
        Self { upstream }
    }
}

#[async_trait::async_trait]
impl Uplink for CloudUplink {
    async fn send(&mut self, batch: &[Publish]) -> Result<(), UplinkError> {
        let mut messages = Vec::with_capacity(batch.len());
        for publish in batch {
            match up_message(publish) {
                Some(message) => messages.push(message),
                // Not telemetry of this device (a record of an older format): nothing to send.
                None => tracing::warn!(topic = %publish.topic, "an upstream message that is not telemetry; dropped"),
            }
        }
        let results = self.upstream.publish_batch(messages).await;
        match results.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some(e) => Err(UplinkError::Unavailable(e.to_string())),
        }
    }
}

/// A method call's status and payload as the cloud gets it.
fn answer(result: Result<(i32, Bytes), CallError>, target: &str) -> (i32, Bytes) {
    let error = |status, message: String| (status, Bytes::from(serde_json::json!({"message": message}).to_string()));
    match result {
        Ok(answer) => answer,
        Err(CallError::Refused(CallRefused::NotConnected(_))) => error(404, format!("{target} is not connected")),
        Err(CallError::Refused(CallRefused::NotListening(_))) => {
            error(404, format!("{target} does not listen for direct methods"))
        }
        Err(CallError::TimedOut(timeout)) => error(504, format!("{target} did not answer within {timeout:?}")),
        Err(CallError::Stopped) => error(503, "the hub is stopping".into()),
    }
}

/// The topic a cloud-to-device message is delivered on, its properties in the bag.
pub fn devicebound_topic(device: &str, downlink: &Downlink) -> String {
    let encode = outpost_core::sas::url_encode;
    let mut bag = Vec::new();
    if let Some(id) = &downlink.message_id {
        bag.push(format!("%24.mid={}", encode(id)));
    }
    if let Some(id) = &downlink.correlation_id {
        bag.push(format!("%24.cid={}", encode(id)));
    }
    bag.push(format!("%24.to={}", encode(&format!("/devices/{device}/messages/deviceBound"))));
    for (key, value) in downlink.headers.iter().filter(|(k, _)| !k.starts_with("x-")) {
        bag.push(format!("{}={}", encode(key), encode(value)));
    }
    format!("devices/{device}/messages/devicebound/{}", bag.join("&"))
}

async fn handle(handle: &Handle, upstream: &Upstream, device: &str, downlink: Downlink) {
    let outcome = match downlink.kind {
        DownKind::MethodRequest => {
            let module = downlink.module.clone().unwrap_or_default();
            let target = format!("{device}/{module}");
            let method = downlink.method.clone().unwrap_or_default();
            let timeout = downlink.expiration_ms.map_or(DEFAULT_CALL_TIMEOUT, Duration::from_millis);
            let result = handle.call(&target, &method, downlink.body.clone(), timeout).await;
            let (status, payload) = answer(result, &target);
            tracing::info!(%target, %method, status, "direct method from the cloud answered");
            let response = UpMessage {
                module: Some(module),
                kind: UpKind::MethodResponse,
                body: payload,
                correlation_id: downlink.correlation_id.clone(),
                status: Some(status),
                content_type: Some("application/json".into()),
                ..UpMessage::default()
            };
            if let Err(e) = upstream.publish(response).await {
                tracing::warn!(%target, error = %e, "cannot send a method's answer to the cloud");
            }
            Ok(())
        }
        DownKind::Message => {
            let publish = Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: devicebound_topic(device, &downlink),
                packet_id: None,
                payload: downlink.body.clone(),
                properties: Properties::default(),
            };
            match handle.from_cloud(publish).await {
                Ok(reached) => {
                    tracing::debug!(reached, "cloud-to-device message handed to the broker");
                    Ok(())
                }
                // Not stored: leave it with the broker (redelivered after a reconnection).
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take a cloud-to-device message");
                    return;
                }
            }
        }
        other => Err(format!("the hub's queue does not carry {}", other.word())),
    };
    let result = match outcome {
        Ok(()) => downlink.ack().await,
        Err(reason) => downlink.reject(&reason).await,
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "acknowledgement lost; the message comes again");
    }
}

/// Modules' reported properties on their way up, with the file that keeps their state.
pub struct ReportedSync {
    state: ReportedState,
    file: Option<PathBuf>,
}

impl ReportedSync {
    /// Loads the state from `file` (none: kept in memory; numbering then starts from the clock).
    pub fn load(file: Option<PathBuf>) -> Self {
        let state = file
            .as_ref()
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self { state, file }
    }

    fn save(&self) -> bool {
        let Some(path) = &self.file else { return true };
        let written = serde_json::to_vec(&self.state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| outpost_daemon::atomic::write_atomic(path, &bytes, 0o600));
        match written {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot save the reported-properties state");
                false
            }
        }
    }

    /// Sends every module's changes since the cloud last confirmed them.
    async fn sync(&mut self, broker: &Handle, upstream: &Upstream) {
        let Ok(twins) = broker.reported().await else { return };
        for (module, current) in twins {
            let Some(patch) = self.state.patch(&module, &current) else { continue };
            let sequence = self.state.next_sequence(outpost_upstream::now_ms());
            if !self.save() {
                return;
            }
            let message = UpMessage {
                module: Some(module.clone()),
                kind: UpKind::Reported,
                body: Bytes::from(serde_json::Value::Object(patch).to_string()),
                seq: Some(sequence),
                content_type: Some("application/json".into()),
                ..UpMessage::default()
            };
            match tokio::time::timeout(REPORT_TIMEOUT, upstream.publish(message)).await {
                Ok(Ok(())) => {
                    self.state.confirmed(&module, current);
                    self.save();
                }
                Ok(Err(e)) => {
                    tracing::debug!(%module, error = %e, "reported properties not sent; next round");
                    return;
                }
                Err(_) => return,
            }
        }
    }
}

/// How often modules' reported properties are compared with the cloud's copy (edgeHub's
/// `ReportedPropertiesSyncFrequencySecs`).
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// How long one reported patch may wait for the broker.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the hub's queue and sends modules' reported properties until `shutdown`.
pub async fn serve(
    broker: Handle,
    upstream: Upstream,
    mut downlinks: Downlinks,
    device: String,
    mut reported: ReportedSync,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = upstream.state();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            downlink = downlinks.recv() => match downlink {
                Some(downlink) => handle(&broker, &upstream, &device, downlink).await,
                None => return,
            },
            _ = tick.tick() => {
                if matches!(*state.borrow(), LinkState::Connected) {
                    reported.sync(&broker, &upstream).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.into(),
            packet_id: None,
            payload: Bytes::from_static(b"{\"t\":1}"),
            properties: Properties::default(),
        }
    }

    #[test]
    fn stored_upstream_messages_go_up_as_their_senders_telemetry() {
        let message = up_message(&publish(
            "devices/dev1/modules/sensor/messages/events/%24.on=temperatureOutput&%24.mid=m-1&%24.ct=application%2Fjson&%24.cdid=dev1&%24.cmid=sensor&alert=yes",
        ))
        .unwrap();
        assert_eq!(message.module.as_deref(), Some("sensor"));
        assert_eq!(message.kind, UpKind::Telemetry);
        assert_eq!(message.message_id.as_deref(), Some("m-1"));
        assert_eq!(message.content_type.as_deref(), Some("application/json"));
        assert!(message.headers.contains(&("alert".into(), "yes".into())));
        assert!(message.headers.contains(&(OUTPUT_HEADER.into(), "temperatureOutput".into())));
        let device = up_message(&publish("devices/dev1/messages/events/")).unwrap();
        assert_eq!(device.module, None);
        assert!(up_message(&publish("plant/line1")).is_none());
    }
}
