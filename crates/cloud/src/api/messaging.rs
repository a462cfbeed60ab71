//! `outpost.cloud.v1.Messaging`: operators' telemetry stream, direct methods and
//! cloud-to-device messages.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use outpost_core::topology::DownKind;
use outpost_core::{DeviceId, ModuleId};
use outpost_proto::cloud::v1 as pb;
use tokio_stream::Stream;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};

use crate::amqp::Outgoing;
use crate::service::Cloud;

/// Default wait for a method's answer, in seconds (IoT Hub's).
const DEFAULT_METHOD_TIMEOUT: u32 = 30;
/// Longest wait for a method's answer, in seconds (IoT Hub's).
const MAX_METHOD_TIMEOUT: u32 = 300;
/// Default lifetime of a cloud-to-device message, in seconds.
const DEFAULT_MESSAGE_TTL: u32 = 3600;
/// Largest method payload or message body (IoT Hub's 128 KiB / 64 KiB; one limit here).
const MAX_BODY: usize = 128 * 1024;
/// How long to wait for the broker to take a message.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The messaging service.
#[derive(Debug, Clone)]
pub struct MessagingApi {
    cloud: Arc<Cloud>,
}

impl MessagingApi {
    /// Over `cloud`.
    pub fn new(cloud: Arc<Cloud>) -> Self {
        Self { cloud }
    }

    async fn send(&self, message: Outgoing) -> Result<(), Status> {
        match tokio::time::timeout(SEND_TIMEOUT, self.cloud.send_down(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(Status::unavailable(reason)),
            Err(_) => Err(Status::unavailable("the message broker did not take the message within 10 s")),
        }
    }

    async fn device_exists(&self, device: &str) -> Result<(), Status> {
        DeviceId::new(device).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (cloud, id) = (self.cloud.clone(), device.to_owned());
        super::blocking(move || cloud.device(&id)).await.map(|_| ())
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::TelemetryEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::messaging_server::Messaging for MessagingApi {
    type MonitorEventsStream = EventStream;

    async fn monitor_events(
        &self,
        request: Request<pb::MonitorEventsRequest>,
    ) -> Result<Response<Self::MonitorEventsStream>, Status> {
        let filter = request.into_inner();
        if !filter.device_id.is_empty() {
            self.device_exists(&filter.device_id).await?;
        }
        let stream = BroadcastStream::new(self.cloud.telemetry().subscribe()).filter_map(move |event| match event {
            Ok(event) => {
                let wanted = (filter.device_id.is_empty() || event.device == filter.device_id)
                    && (filter.module_id.is_empty() || event.module == filter.module_id);
                wanted.then(|| {
                    Ok(pb::TelemetryEvent {
                        device_id: event.device,
                        module_id: event.module,
                        body: event.body,
                        properties: event.properties.into_iter().collect(),
                        received_unix_ms: event.received_ms,
                    })
                })
            }
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(missed)) => {
                tracing::warn!(missed, "an event stream fell behind; events skipped");
                None
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn invoke_method(
        &self,
        request: Request<pb::InvokeMethodRequest>,
    ) -> Result<Response<pb::InvokeMethodResponse>, Status> {
        let request = request.into_inner();
        ModuleId::new(&request.module_id).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if request.method_name.is_empty() || request.method_name.len() > 256 {
            return Err(Status::invalid_argument("method_name must be 1 to 256 characters"));
        }
        let payload = if request.payload_json.trim().is_empty() { "null".to_owned() } else { request.payload_json };
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&payload) {
            return Err(Status::invalid_argument(format!("payload_json is not JSON: {e}")));
        }
        if payload.len() > MAX_BODY {
            return Err(Status::invalid_argument(format!(
                "payload is {} bytes; the limit is {MAX_BODY}",
                payload.len()
            )));
        }
        let timeout = match request.response_timeout_secs {
            0 => DEFAULT_METHOD_TIMEOUT,
            n => n.min(MAX_METHOD_TIMEOUT),
        };
        self.device_exists(&request.device_id).await?;
        let mut pending = self.cloud.calls().register();
        let message = Outgoing {
            device: request.device_id.clone(),
            module: request.module_id.clone(),
            kind: Some(DownKind::MethodRequest),
            body: payload.into_bytes(),
            correlation_id: Some(pending.id.clone()),
            headers: vec![("x-outpost-method".into(), request.method_name.clone())],
            expiration_ms: Some(u64::from(timeout) * 1000),
            ..Outgoing::default()
        };
        self.send(message).await?;
        match tokio::time::timeout(Duration::from_secs(u64::from(timeout)), &mut pending.answer).await {
            Ok(Ok(answer)) => Ok(Response::new(pb::InvokeMethodResponse {
                status: answer.status,
                payload_json: String::from_utf8_lossy(&answer.payload).into_owned(),
            })),
            Ok(Err(_)) => Err(Status::internal("internal error")),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "{}/{} did not answer {} within {timeout} s (is the device connected and the module running?)",
                request.device_id, request.module_id, request.method_name
            ))),
        }
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let request = request.into_inner();
        if request.body.len() > MAX_BODY {
            return Err(Status::invalid_argument(format!(
                "body is {} bytes; the limit is {MAX_BODY}",
                request.body.len()
            )));
        }
        self.device_exists(&request.device_id).await?;
        let message_id =
            if request.message_id.is_empty() { uuid::Uuid::new_v4().to_string() } else { request.message_id };
        let ttl = if request.ttl_secs == 0 { DEFAULT_MESSAGE_TTL } else { request.ttl_secs };
        let message = Outgoing {
            device: request.device_id,
            kind: Some(DownKind::Message),
            body: request.body,
            message_id: Some(message_id.clone()),
            headers: request.properties.into_iter().collect(),
            expiration_ms: Some(u64::from(ttl) * 1000),
            ..Outgoing::default()
        };
        self.send(message).await?;
        Ok(Response::new(pb::SendMessageResponse { message_id }))
    }
}
