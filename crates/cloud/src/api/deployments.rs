//! `outpost.cloud.v1.Deployments`: automatic deployments with their metrics.

use std::sync::Arc;

use outpost_proto::cloud::v1 as pb;
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::blocking;
use crate::deployments::DeploymentRecord;
use crate::deployments::metrics::Metrics;
use crate::service::{Cloud, DeploymentUpdate, NewDeployment};

/// The deployments service.
#[derive(Debug, Clone)]
pub struct DeploymentsApi {
    cloud: Arc<Cloud>,
}

impl DeploymentsApi {
    /// Over `cloud`.
    pub fn new(cloud: Arc<Cloud>) -> Self {
        Self { cloud }
    }
}

fn metrics_to_pb(metrics: Metrics) -> pb::DeploymentMetrics {
    pb::DeploymentMetrics {
        targeted: metrics.targeted,
        applied: metrics.applied,
        reporting_success: metrics.reporting_success,
        reporting_failure: metrics.reporting_failure,
        skipped: metrics.skipped.into_iter().map(|(device_id, reason)| pb::Skipped { device_id, reason }).collect(),
    }
}

/// The protobuf form of a deployment.
pub fn deployment_to_pb(record: DeploymentRecord, metrics: Metrics) -> pb::Deployment {
    pb::Deployment {
        content_json: Value::Object(record.content.clone()).to_string(),
        etag: record.etag(),
        deployment_id: record.id,
        target_condition: record.target_condition,
        priority: record.priority,
        layered: record.layered,
        labels: record.labels.into_iter().collect(),
        created_unix_ms: record.created_ms,
        metrics: Some(metrics_to_pb(metrics)),
    }
}

fn with_metrics(cloud: &Cloud, record: DeploymentRecord) -> Result<pb::Deployment, crate::error::CloudError> {
    let metrics = cloud.deployment_metrics(&record.id)?;
    Ok(deployment_to_pb(record, metrics))
}

#[tonic::async_trait]
impl pb::deployments_server::Deployments for DeploymentsApi {
    async fn create_deployment(
        &self,
        request: Request<pb::CreateDeploymentRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        let request = request.into_inner();
        let cloud = self.cloud.clone();
        let deployment = blocking(move || {
            let record = cloud.create_deployment(NewDeployment {
                id: request.deployment_id,
                content: request.content_json,
                target_condition: request.target_condition,
                priority: request.priority,
                layered: request.layered,
                labels: request.labels.into_iter().collect(),
            })?;
            with_metrics(&cloud, record)
        })
        .await?;
        Ok(Response::new(deployment))
    }

    async fn get_deployment(
        &self,
        request: Request<pb::GetDeploymentRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        let id = request.into_inner().deployment_id;
        let cloud = self.cloud.clone();
        let deployment = blocking(move || with_metrics(&cloud, cloud.deployment(&id)?)).await?;
        Ok(Response::new(deployment))
    }

    async fn list_deployments(
        &self,
        _request: Request<pb::ListDeploymentsRequest>,
    ) -> Result<Response<pb::ListDeploymentsResponse>, Status> {
        let cloud = self.cloud.clone();
        let deployments = blocking(move || {
            cloud.deployments()?.into_iter().map(|record| with_metrics(&cloud, record)).collect::<Result<Vec<_>, _>>()
        })
        .await?;
        Ok(Response::new(pb::ListDeploymentsResponse { deployments }))
    }

    async fn update_deployment(
        &self,
        request: Request<pb::UpdateDeploymentRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        let request = request.into_inner();
        let cloud = self.cloud.clone();
        let deployment = blocking(move || {
            let update = DeploymentUpdate {
                target_condition: (!request.target_condition.is_empty()).then_some(request.target_condition),
                priority: request.has_priority.then_some(request.priority),
                labels: request.replace_labels.then(|| request.labels.into_iter().collect()),
                if_match: (!request.if_match.is_empty()).then_some(request.if_match),
            };
            let record = cloud.update_deployment(&request.deployment_id, update)?;
            with_metrics(&cloud, record)
        })
        .await?;
        Ok(Response::new(deployment))
    }

    async fn delete_deployment(
        &self,
        request: Request<pb::DeleteDeploymentRequest>,
    ) -> Result<Response<pb::DeleteDeploymentResponse>, Status> {
        let request = request.into_inner();
        let cloud = self.cloud.clone();
        blocking(move || {
            let if_match = (!request.if_match.is_empty()).then_some(request.if_match);
            cloud.delete_deployment(&request.deployment_id, if_match.as_ref())
        })
        .await?;
        Ok(Response::new(pb::DeleteDeploymentResponse {}))
    }
}
