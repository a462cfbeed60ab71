//! `outpost hub status`: the hub's admin API — clients and sessions, queues, store, counters.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use outpost_proto::hub::v1 as pb;
use outpost_proto::hub::v1::hub_client::HubClient;
use serde_json::json;

use crate::output::{self, Format};

/// `outpost hub …`.
#[derive(Debug, clap::Subcommand)]
pub enum HubCommand {
    /// Clients and their sessions, queue depths, the store and the message counters.
    Status,
}

/// Runs `command` against the hub's admin socket.
pub async fn run(command: HubCommand, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    match command {
        HubCommand::Status => status(socket, format).await,
    }
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b < 10 * 1024 => format!("{b} B"),
        b if b < 10 * 1024 * 1024 => format!("{} KiB", b / 1024),
        b => format!("{} MiB", b / (1024 * 1024)),
    }
}

async fn status(socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let channel = outpost_rpc::connect(socket)
        .await
        .with_context(|| format!("is outpost-hub running? (admin socket {})", socket.display()))?;
    let status = HubClient::new(channel).get_status(pb::GetStatusRequest {}).await?.into_inner();
    let store = status.store.unwrap_or_default();
    let counters = status.counters.unwrap_or_default();
    if format == Format::Json {
        let clients: Vec<_> = status
            .clients
            .iter()
            .map(|c| {
                json!({"clientId": c.client_id, "connected": c.connected, "persistent": c.persistent,
                    "protocol": c.protocol, "queued": c.queued, "inflight": c.inflight,
                    "subscriptions": c.subscriptions.iter().map(|s| json!({"filter": s.filter, "qos": s.qos})).collect::<Vec<_>>()})
            })
            .collect();
        let queues: Vec<_> = status
            .queues
            .iter()
            .map(|q| json!({"endpoint": q.endpoint, "priority": q.priority, "messages": q.messages}))
            .collect();
        return output::json(&json!({
            "uptimeSecs": status.uptime_secs,
            "pendingCalls": status.pending_calls,
            "store": {"durable": store.durable, "bytes": store.bytes, "limitBytes": store.limit_bytes},
            "counters": {"received": counters.received, "delivered": counters.delivered,
                "droppedQueueFull": counters.dropped_queue_full, "droppedStoreFull": counters.dropped_store_full,
                "refusedStoreFull": counters.refused_store_full, "expired": counters.expired,
                "routedUpstream": counters.routed_upstream, "upstreamSent": counters.upstream_sent},
            "clients": clients,
            "queues": queues,
        }))
        .map(|()| ExitCode::SUCCESS);
    }
    let connected = status.clients.iter().filter(|c| c.connected).count();
    let limit = if store.limit_bytes == 0 { "no limit".to_owned() } else { size(store.limit_bytes) };
    println!("up {}, {connected} connected, {} sessions", duration(status.uptime_secs), status.clients.len());
    println!(
        "store: {}, {} of {limit} queued",
        if store.durable { "on disk" } else { "memory only" },
        size(store.bytes)
    );
    println!(
        "messages: {} received, {} delivered, {} expired, {} routed upstream ({} sent), dropped {} (queue full) + {} (store full), {} refused (store full)",
        counters.received,
        counters.delivered,
        counters.expired,
        counters.routed_upstream,
        counters.upstream_sent,
        counters.dropped_queue_full,
        counters.dropped_store_full,
        counters.refused_store_full
    );
    println!();
    let rows: Vec<Vec<String>> = status
        .clients
        .iter()
        .map(|c| {
            let filters: Vec<String> =
                c.subscriptions.iter().map(|s| format!("{} (QoS {})", s.filter, s.qos)).collect();
            vec![
                c.client_id.clone(),
                if c.connected { "connected" } else { "away" }.into(),
                if c.persistent { "persistent" } else { "clean" }.into(),
                c.protocol.clone(),
                c.queued.to_string(),
                c.inflight.to_string(),
                if filters.is_empty() { "-".into() } else { filters.join(", ") },
            ]
        })
        .collect();
    output::table(&["CLIENT", "STATE", "SESSION", "MQTT", "QUEUED", "IN FLIGHT", "SUBSCRIPTIONS"], &rows);
    if !status.queues.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = status
            .queues
            .iter()
            .map(|q| vec![q.endpoint.clone(), q.priority.to_string(), q.messages.to_string()])
            .collect();
        output::table(&["QUEUE", "PRIORITY", "MESSAGES"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}
