//! Routes before modules: the hub reads the agent's deployment file on its own schedule, so
//! a new deployment's modules could start (and publish) before the hub has the routes that
//! carry their messages. The agent waits until the hub's admin API reports the deployment's
//! digest, or 5 s, whichever is first.

use std::path::Path;
use std::time::{Duration, Instant};

use outpost_proto::hub::v1::GetStatusRequest;
use outpost_proto::hub::v1::hub_client::HubClient;

/// SHA-256 of `text`, lowercase hex (as the hub reports it).
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls the hub on `socket` until it reports `digest`, for up to `limit`; a hub that is not
/// there is not waited for.
pub async fn wait_for(socket: &Path, digest: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let Ok(channel) = outpost_rpc::connect(socket).await else {
            tracing::debug!(socket = %socket.display(), "no hub to wait for");
            return;
        };
        if let Ok(status) = HubClient::new(channel).get_status(GetStatusRequest {}).await
            && status.into_inner().deployment_sha256 == digest
        {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(socket = %socket.display(), "the hub has not loaded the deployment's routes after {} s; starting its modules anyway", limit.as_secs());
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_match_the_hubs() {
        assert_eq!(super::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
