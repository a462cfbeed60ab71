//! Runtime self-update: when the deployment's `systemModules` name an agent or hub image
//! other than the one outpostd runs, the agent asks outpostd (`[host] socket`) to replace
//! that service — the hub first, the agent (itself) last. outpostd rolls a replacement back
//! if it does not serve in time and remembers the failure, which the agent reports (in
//! `systemModules` and as `lastDesiredStatus` 500) and does not retry until the deployment
//! names another image.
//!
//! Only in container mode (in process mode outpostd runs programs, not images), and never
//! for Azure's own images (`mcr.microsoft.com/…`): an Azure manifest used unchanged keeps
//! Outpost's runtime.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_proto::host::v1 as pb;
use outpost_proto::host::v1::host_client::HostClient;
use tokio_util::sync::CancellationToken;

use crate::daemon::Agent;

/// What the agent knows of one runtime service, for its reported properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemModule {
    /// The image outpostd runs it from.
    pub image: String,
    /// `running`, `backoff`, `stopped`, `failed` (Azure's words).
    pub runtime_status: String,
    /// What happened, in words.
    pub description: String,
    /// A replacement that was rolled back: the image, and why.
    pub failed_update: Option<(String, String)>,
}

/// The runtime services as last seen, shared with the reported properties.
#[derive(Debug, Default)]
pub struct SystemModules {
    /// `edgeAgent`.
    pub agent: Mutex<Option<SystemModule>>,
    /// `edgeHub`.
    pub hub: Mutex<Option<SystemModule>>,
}

impl SystemModules {
    /// `(edgeAgent, edgeHub)` as last seen.
    pub fn snapshot(&self) -> (Option<SystemModule>, Option<SystemModule>) {
        let get = |m: &Mutex<Option<SystemModule>>| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        (get(&self.agent), get(&self.hub))
    }
}

/// Whether the agent should ask outpostd to replace a service running `running` with the
/// deployment's `desired`, given the last rolled-back image.
pub fn wanted(desired: &str, running: &str, failed: Option<&str>) -> bool {
    !desired.is_empty() && !desired.starts_with("mcr.microsoft.com/") && desired != running && failed != Some(desired)
}

fn runtime_status(state: pb::ServiceState) -> &'static str {
    match state {
        pb::ServiceState::Running => "running",
        pb::ServiceState::Backoff => "backoff",
        pb::ServiceState::Stopped => "stopped",
        pb::ServiceState::Failed => "failed",
        pb::ServiceState::Starting | pb::ServiceState::Unspecified => "unknown",
    }
}

fn seen(service: &pb::Service) -> SystemModule {
    SystemModule {
        image: service.image.clone(),
        runtime_status: runtime_status(service.state()).to_owned(),
        description: service.description.clone(),
        failed_update: (!service.failed_update_image.is_empty())
            .then(|| (service.failed_update_image.clone(), service.failed_update_reason.clone())),
    }
}

/// One look at outpostd and, if the deployment asks for it, one replacement.
async fn check(agent: &Agent, socket: &std::path::Path, modules: &SystemModules) -> Result<(), String> {
    let channel = outpost_rpc::connect(socket).await.map_err(|e| e.to_string())?;
    let mut host = HostClient::new(channel);
    let info =
        host.get_system_info(pb::GetSystemInfoRequest {}).await.map_err(|e| e.message().to_owned())?.into_inner();
    let services =
        host.list_services(pb::ListServicesRequest {}).await.map_err(|e| e.message().to_owned())?.into_inner();
    let find = |name: &str| services.services.iter().find(|s| s.name == name).cloned();
    let (Some(agent_service), Some(hub_service)) = (find("agent"), find("hub")) else {
        return Err("outpostd does not list the agent and the hub".into());
    };
    *modules.agent.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(seen(&agent_service));
    *modules.hub.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(seen(&hub_service));
    if info.mode != "container" {
        return Ok(());
    }
    let Some((desired_agent, desired_hub)) = agent.system_images() else { return Ok(()) };
    for (service, desired) in [(&hub_service, desired_hub), (&agent_service, desired_agent)] {
        let failed = (!service.failed_update_image.is_empty()).then_some(service.failed_update_image.as_str());
        if !wanted(&desired, &service.image, failed) {
            continue;
        }
        tracing::info!(service = %service.name, from = %service.image, to = %desired, "replacing a runtime service");
        let request =
            pb::UpdateServiceRequest { name: service.name.clone(), image: desired.clone(), healthy_within_secs: 0 };
        match host.update_service(request).await {
            Ok(done) => {
                tracing::info!(service = %service.name, image = %done.into_inner().image, "runtime service replaced")
            }
            Err(e) => {
                tracing::error!(service = %service.name, image = %desired, reason = e.message(), "replacement rolled back")
            }
        }
        // Report what outpostd now says (the agent itself may be replaced before this).
        return Ok(());
    }
    Ok(())
}

/// Watches the deployment's runtime images every `interval` until `shutdown`.
pub async fn run(
    agent: Arc<Agent>,
    socket: PathBuf,
    modules: Arc<SystemModules>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut warned = false;
    loop {
        match check(&agent, &socket, &modules).await {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!(socket = %socket.display(), error = %e, "cannot reach outpostd; runtime images are not managed");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_are_asked_for_only_when_they_can_help() {
        assert!(wanted("outpost/hub:2", "outpost/hub:1", None));
        assert!(!wanted("outpost/hub:1", "outpost/hub:1", None));
        assert!(!wanted("outpost/hub:2", "outpost/hub:1", Some("outpost/hub:2")), "a rolled-back image is not retried");
        assert!(wanted("outpost/hub:3", "outpost/hub:1", Some("outpost/hub:2")), "another image is");
        assert!(
            !wanted("mcr.microsoft.com/azureiotedge-hub:1.4", "outpost/hub:1", None),
            "Azure's images are not ours"
        );
        assert!(!wanted("", "outpost/hub:1", None));
    }
}
