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
