//! The admin API (`outpost.hub.v1`, gRPC on a Unix socket): the broker's status for
//! operators (`outpost hub status`) and supervisors, plus `grpc.health.v1`.

use std::path::Path;

use outpost_proto::hub::v1 as pb;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::broker::status::Status;
use crate::mqtt::Version;
use crate::server::{Handle, Snapshot};

/// The gRPC service.
#[derive(Debug)]
pub struct AdminGrpc {
    handle: Handle,
}

fn client(c: crate::broker::status::ClientStatus) -> pb::Client {
    pb::Client {
        client_id: c.client_id,
        connected: c.connected,
        persistent: c.persistent,
        protocol: if c.version == Version::V5 { "5.0" } else { "3.1.1" }.into(),
        subscriptions: c
            .subscriptions
            .into_iter()
            .map(|(filter, qos)| pb::Subscription { filter, qos: qos as u32 })
            .collect(),
        queued: c.queued as u32,
        inflight: c.inflight as u32,
    }
}

/// The status as the API gives it.
pub fn to_proto(snapshot: Snapshot) -> pb::HubStatus {
    let Status { clients, queues, durable, store_bytes, counters, pending_calls } = snapshot.broker;
    pb::HubStatus {
        clients: clients.into_iter().map(client).collect(),
        queues: queues
            .into_iter()
            .map(|((endpoint, priority), messages)| pb::Queue {
                endpoint,
                priority: u32::from(priority),
                messages: messages as u64,
            })
            .collect(),
        store: Some(pb::Store { durable, bytes: store_bytes.0, limit_bytes: store_bytes.1 }),
        counters: Some(pb::Counters {
            received: counters.received,
            delivered: counters.delivered,
            dropped_queue_full: counters.dropped_queue_full,
            dropped_store_full: counters.dropped_store_full,
            refused_store_full: counters.refused_store_full,
            expired: counters.expired,
            routed_upstream: counters.routed_upstream,
            upstream_sent: counters.upstream_sent,
        }),
        uptime_secs: snapshot.uptime.as_secs(),
        pending_calls: pending_calls as u32,
        deployment_sha256: snapshot.deployment_sha256,
    }
}

#[tonic::async_trait]
impl pb::hub_server::Hub for AdminGrpc {
    async fn get_status(
        &self,
        _request: tonic::Request<pb::GetStatusRequest>,
    ) -> Result<tonic::Response<pb::HubStatus>, tonic::Status> {
        let snapshot = self.handle.snapshot().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        Ok(tonic::Response::new(to_proto(snapshot)))
    }
}

/// Serves the admin API on `listener` (bound at `path`) for the hub's own user and
/// `principals`, until `shutdown`.
pub async fn serve(
    path: &Path,
    listener: UnixListener,
    principals: Vec<outpost_rpc::Principal>,
    handle: Handle,
    shutdown: CancellationToken,
) -> Result<(), outpost_rpc::RpcError> {
    let (health, health_service) = outpost_rpc::health::service();
    health.set_serving::<pb::hub_server::HubServer<AdminGrpc>>().await;
    let routes =
        tonic::service::Routes::new(health_service).add_service(pb::hub_server::HubServer::new(AdminGrpc { handle }));
    let policy = outpost_rpc::Policy::for_current_user(principals);
    let result = outpost_rpc::serve::serve(path, listener, routes, policy, shutdown).await;
    let _ = std::fs::remove_file(path);
    result
}
