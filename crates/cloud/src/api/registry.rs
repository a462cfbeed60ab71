//! `outpost.cloud.v1.Registry`: devices.

use std::sync::Arc;

use outpost_proto::cloud::v1 as pb;
use tonic::{Request, Response, Status};

use super::{blocking, json_object};
use crate::error::CloudError;
use crate::registry::{Credentials, DeviceRecord};
use crate::service::{Cloud, DeviceUpdate, NewDevice};

/// Default page of `ListDevices`.
const DEFAULT_PAGE: usize = 100;
/// Largest page of `ListDevices`.
const MAX_PAGE: usize = 1000;

/// The registry service.
#[derive(Debug, Clone)]
pub struct RegistryApi {
    cloud: Arc<Cloud>,
}

impl RegistryApi {
    /// Over `cloud`.
    pub fn new(cloud: Arc<Cloud>) -> Self {
        Self { cloud }
    }
}

fn credentials(auth: Option<pb::Authentication>) -> Result<Option<Credentials>, CloudError> {
    Ok(match auth.and_then(|a| a.kind) {
        None => None,
        Some(pb::authentication::Kind::SymmetricKey(keys)) => {
            Some(Credentials::symmetric(&keys.primary_key, &keys.secondary_key)?)
        }
        Some(pb::authentication::Kind::X509Thumbprint(thumbs)) => {
            Some(Credentials::x509(&thumbs.primary_thumbprint, &thumbs.secondary_thumbprint)?)
        }
    })
}

/// The protobuf form of a device.
pub fn device_to_pb(record: &DeviceRecord) -> pb::Device {
    let kind = match &record.credentials {
        Credentials::SymmetricKey { primary, secondary } => pb::authentication::Kind::SymmetricKey(pb::SymmetricKey {
            primary_key: primary.clone(),
            secondary_key: secondary.clone(),
        }),
        Credentials::X509Thumbprint { primary, secondary } => {
            pb::authentication::Kind::X509Thumbprint(pb::X509Thumbprint {
                primary_thumbprint: primary.clone(),
                secondary_thumbprint: secondary.clone(),
            })
        }
    };
    pb::Device {
        device_id: record.id.clone(),
        authentication: Some(pb::Authentication { kind: Some(kind) }),
        status: if record.enabled { pb::DeviceStatus::Enabled } else { pb::DeviceStatus::Disabled } as i32,
        status_reason: record.status_reason.clone(),
        connection_state: if record.connected { "connected" } else { "disconnected" }.into(),
        last_activity_unix_ms: record.last_activity_ms,
        created_unix_ms: record.created_ms,
        etag: record.etag(),
        generation_id: record.generation_id.clone(),
    }
}

fn if_match(etag: String) -> Option<String> {
    (!etag.is_empty()).then_some(etag)
}

#[tonic::async_trait]
impl pb::registry_server::Registry for RegistryApi {
    async fn create_device(&self, request: Request<pb::CreateDeviceRequest>) -> Result<Response<pb::Device>, Status> {
        let request = request.into_inner();
        let cloud = self.cloud.clone();
        let record = blocking(move || {
            let new = NewDevice {
                id: request.device_id,
                credentials: credentials(request.authentication)?,
                tags: json_object("tags_json", &request.tags_json)?.unwrap_or_default(),
                disabled: request.disabled,
            };
            cloud.create_device(new)
        })
        .await?;
        Ok(Response::new(device_to_pb(&record)))
    }

    async fn get_device(&self, request: Request<pb::GetDeviceRequest>) -> Result<Response<pb::Device>, Status> {
        let id = request.into_inner().device_id;
        let cloud = self.cloud.clone();
        let record = blocking(move || cloud.device(&id)).await?;
        Ok(Response::new(device_to_pb(&record)))
    }

    async fn list_devices(
        &self,
        request: Request<pb::ListDevicesRequest>,
    ) -> Result<Response<pb::ListDevicesResponse>, Status> {
        let request = request.into_inner();
        let size = match request.page_size {
            0 => DEFAULT_PAGE,
            n => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        };
        let cloud = self.cloud.clone();
        let records = blocking(move || cloud.devices(&request.after, size)).await?;
        let next = if records.len() == size {
            records.last().map(|r| r.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListDevicesResponse { devices: records.iter().map(device_to_pb).collect(), next }))
    }

    async fn update_device(&self, request: Request<pb::UpdateDeviceRequest>) -> Result<Response<pb::Device>, Status> {
        let request = request.into_inner();
        let cloud = self.cloud.clone();
        let record = blocking(move || {
            let enabled = match pb::DeviceStatus::try_from(request.status) {
                Ok(pb::DeviceStatus::Enabled) => Some(true),
                Ok(pb::DeviceStatus::Disabled) => Some(false),
                Ok(pb::DeviceStatus::Unspecified) => None,
                Err(_) => {
                    return Err(CloudError::Field {
                        field: "status",
                        problem: format!("unknown value {}", request.status),
                    });
                }
            };
            let update = DeviceUpdate {
                enabled,
                status_reason: (!request.status_reason.is_empty()).then_some(request.status_reason),
                credentials: credentials(request.authentication)?,
                if_match: if_match(request.if_match),
            };
            cloud.update_device(&request.device_id, update)
        })
        .await?;
        Ok(Response::new(device_to_pb(&record)))
    }

    async fn delete_device(
        &self,
        request: Request<pb::DeleteDeviceRequest>,
    ) -> Result<Response<pb::DeleteDeviceResponse>, Status> {
        let request = request.into_inner();
        let cloud = self.cloud.clone();
        blocking(move || cloud.delete_device(&request.device_id, if_match(request.if_match).as_ref())).await?;
        Ok(Response::new(pb::DeleteDeviceResponse {}))
    }
}
