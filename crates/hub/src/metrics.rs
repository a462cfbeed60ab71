//! Prometheus metrics on `[metrics] bind` (`GET /metrics`, default port 9600), in the spirit
//! of edgeHub's: messages received, delivered, dropped by reason, expired, routed upstream
//! and sent; queue lengths by endpoint and priority; connected clients and sessions; store
//! use; the time each batch of events takes (store commit included).

use std::fmt::Write as _;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::{Handle, Snapshot};

/// Bucket bounds of [`Histogram`], seconds.
const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// A cumulative histogram with fixed buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
            self.count, self.sum, self.count
        );
    }
}

fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// The Prometheus text exposition of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let status = &snapshot.broker;
    let c = status.counters;
    let mut out = String::with_capacity(4096);
    let one = |v: u64| vec![(String::new(), v as f64)];
    metric(
        &mut out,
        "outpost_hub_messages_received_total",
        "counter",
        "PUBLISHes received from clients.",
        &one(c.received),
    );
    metric(&mut out, "outpost_hub_messages_delivered_total", "counter", "Messages sent to clients.", &one(c.delivered));
    let dropped = [
        ("queue_full", c.dropped_queue_full),
        ("store_full", c.dropped_store_full),
        ("slow_subscriber", c.dropped_slow_subscriber),
    ]
    .map(|(reason, v)| (format!("{{reason=\"{reason}\"}}"), v as f64));
    metric(&mut out, "outpost_hub_messages_dropped_total", "counter", "Messages dropped, by reason.", &dropped);
    metric(
        &mut out,
        "outpost_hub_messages_refused_total",
        "counter",
        "QoS 1/2 publishes refused because the store was full (the publisher keeps them).",
        &one(c.refused_store_full),
    );
    metric(
        &mut out,
        "outpost_hub_messages_expired_total",
        "counter",
        "Messages that expired before delivery.",
        &one(c.expired),
    );
    metric(
        &mut out,
        "outpost_hub_messages_routed_upstream_total",
        "counter",
        "Messages routed to $upstream.",
        &one(c.routed_upstream),
    );
    metric(
        &mut out,
        "outpost_hub_messages_sent_upstream_total",
        "counter",
        "Messages the uplink confirmed.",
        &one(c.upstream_sent),
    );
    let queues: Vec<(String, f64)> = status
        .queues
        .iter()
        .map(|((endpoint, priority), n)| {
            (format!("{{endpoint=\"{}\",priority=\"{priority}\"}}", label(endpoint)), *n as f64)
        })
        .collect();
    metric(&mut out, "outpost_hub_queue_length", "gauge", "Messages waiting, by endpoint and priority.", &queues);
    let connected = status.clients.iter().filter(|c| c.connected).count() as u64;
    metric(&mut out, "outpost_hub_connected_clients", "gauge", "Clients connected.", &one(connected));
    metric(
        &mut out,
        "outpost_hub_sessions",
        "gauge",
        "Sessions, connected or persistent.",
        &one(status.clients.len() as u64),
    );
    metric(
        &mut out,
        "outpost_hub_store_bytes",
        "gauge",
        "Bytes of queued messages stored.",
        &one(status.store_bytes.0),
    );
    metric(
        &mut out,
        "outpost_hub_store_limit_bytes",
        "gauge",
        "The store limit (0: none).",
        &one(status.store_bytes.1),
    );
    metric(
        &mut out,
        "outpost_hub_direct_method_calls_pending",
        "gauge",
        "Direct method calls waiting for an answer.",
        &one(status.pending_calls as u64),
    );
    metric(
        &mut out,
        "outpost_hub_uptime_seconds",
        "gauge",
        "Seconds since the hub started.",
        &one(snapshot.uptime.as_secs()),
    );
    snapshot.batches.render(
        "outpost_hub_batch_duration_seconds",
        "Time to apply a batch of events, commit the store and hand out the packets.",
        &mut out,
    );
    out
}

/// Serves `/metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, handle: Handle, shutdown: CancellationToken) {
    let render = move || {
        let handle = handle.clone();
        async move { handle.snapshot().await.map(|snapshot| render(&snapshot)).map_err(|e| e.to_string()) }
    };
    outpost_daemon::metrics::serve(listener, render, shutdown).await;
}
