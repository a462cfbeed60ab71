//! `outpost.cloud.v1.Twins`: device and module twins.

use std::sync::Arc;

use outpost_proto::cloud::v1 as pb;
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::{blocking, json_object};
use crate::service::{Cloud, TwinUpdate};
use crate::twin::TwinDoc;

/// The twins service.
#[derive(Debug, Clone)]
pub struct TwinsApi {
    cloud: Arc<Cloud>,
}

impl TwinsApi {
    /// Over `cloud`.
    pub fn new(cloud: Arc<Cloud>) -> Self {
        Self { cloud }
    }
}

/// The protobuf form of a twin.
pub fn twin_to_pb(device: &str, module: &str, twin: &TwinDoc) -> pb::Twin {
    pb::Twin {
        device_id: device.to_owned(),
        module_id: module.to_owned(),
        tags_json: Value::Object(twin.tags.clone()).to_string(),
        desired_json: twin.desired_with_version().to_string(),
        reported_json: twin.reported_with_version().to_string(),
        version: twin.version,
        etag: twin.etag(),
    }
}

#[tonic::async_trait]
impl pb::twins_server::Twins for TwinsApi {
    async fn get_twin(&self, request: Request<pb::GetTwinRequest>) -> Result<Response<pb::Twin>, Status> {
        let request = request.into_inner();
        let cloud = self.cloud.clone();
        let (device, module) = (request.device_id.clone(), request.module_id.clone());
        let twin = blocking(move || cloud.twin(&device, &module)).await?;
        Ok(Response::new(twin_to_pb(&request.device_id, &request.module_id, &twin)))
    }

    async fn update_twin(&self, request: Request<pb::UpdateTwinRequest>) -> Result<Response<pb::Twin>, Status> {
        let request = request.into_inner();
        let cloud = self.cloud.clone();
        let (device, module) = (request.device_id.clone(), request.module_id.clone());
        let twin = blocking(move || {
            let update = TwinUpdate {
                tags: json_object("tags_patch_json", &request.tags_patch_json)?,
                desired: json_object("desired_patch_json", &request.desired_patch_json)?,
                if_match: (!request.if_match.is_empty()).then_some(request.if_match),
            };
            cloud.update_twin(&device, &module, update)
        })
        .await?;
        Ok(Response::new(twin_to_pb(&request.device_id, &request.module_id, &twin)))
    }
}
