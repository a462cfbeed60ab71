//! The `grpc.health.v1` service every Outpost daemon serves, so that the watchdog and
//! `outpost check` can ask any of them whether it is serving.

pub use tonic_health::ServingStatus;
pub use tonic_health::server::HealthReporter;

/// A health service and the reporter that sets its statuses. The overall status (empty
/// service name) starts as serving; daemons flip it to not-serving when they drain.
pub fn service()
-> (HealthReporter, tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>) {
    tonic_health::server::health_reporter()
}

/// Asks the daemon on `socket` whether it is serving (the overall status), within
/// `timeout`: `Ok(())` if it is, otherwise what went wrong in words.
pub async fn check(socket: &std::path::Path, timeout: std::time::Duration) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus as Status;
    let call = async {
        let channel = crate::connect(socket).await.map_err(|e| e.to_string())?;
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let response = client
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .map_err(|e| format!("health check failed: {}", e.message()))?;
        match response.into_inner().status() {
            Status::Serving => Ok(()),
            other => Err(format!("reports {}", other.as_str_name())),
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(format!("{} did not answer within {} ms", socket.display(), timeout.as_millis())),
    }
}
