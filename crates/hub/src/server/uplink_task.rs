//! Moves the upstream queue through the [`Uplink`]: a batch at a time, forgotten when the
//! other side has it, put back and retried with a backoff (1 s doubling to 60 s) when not.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{EXPIRY_SWEEP, Event};
use crate::uplink::Uplink;

/// Messages handed to the uplink at once.
const UPLINK_BATCH: usize = 1000;
/// Longest wait between two attempts of a failing uplink.
const UPLINK_MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Moves the upstream queue through `uplink`: a batch at a time, forgotten when sent, put
/// back and retried with a backoff when not.
pub(super) async fn uplink_task(
    mut uplink: Box<dyn Uplink>,
    events: mpsc::Sender<Event>,
    ready: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let (reply, batch) = oneshot::channel();
        if events.send(Event::UpstreamTake(UPLINK_BATCH, reply)).await.is_err() {
            return;
        }
        let Ok(batch) = batch.await else { return };
        if batch.is_empty() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = ready.notified() => {}
                () = tokio::time::sleep(EXPIRY_SWEEP) => {}
            }
            continue;
        }
        let (seqs, messages): (Vec<u64>, Vec<_>) = batch.into_iter().map(|(seq, m)| (seq, m.publish)).unzip();
        let sent = tokio::select! {
            () = stop.cancelled() => {
                let _ = events.send(Event::UpstreamFailed(seqs)).await;
                return;
            }
            sent = uplink.send(&messages) => sent,
        };
        match sent {
            Ok(()) => {
                backoff = Duration::from_secs(1);
                if events.send(Event::UpstreamDone(seqs)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = seqs.len(), retry_in = ?backoff, "upstream batch not sent");
                if events.send(Event::UpstreamFailed(seqs)).await.is_err() {
                    return;
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(UPLINK_MAX_BACKOFF);
            }
        }
    }
}
