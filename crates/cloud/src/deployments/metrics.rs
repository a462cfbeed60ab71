//! A deployment's system metrics as IoT Hub defines them: targeted, applied, reporting
//! success and reporting failure, from the devices' assignments and their agents' reported
//! properties.

use serde_json::Value;

use super::assign::Assignment;

/// The counts for one deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Devices it targets.
    pub targeted: u64,
    /// Devices whose configuration includes it.
    pub applied: u64,
    /// Applied devices whose agent reports the current configuration with status 200.
    pub reporting_success: u64,
    /// Applied devices whose agent reports the current configuration with another status.
    pub reporting_failure: u64,
    /// Targeted devices it does not apply to, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// What the device's agent says about its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentReport {
    /// It runs the configuration of the current desired version, with this status code.
    Current(i64),
    /// It has not reported the current version (yet).
    Behind,
}

/// Reads the agent's report: `lastDesiredVersion` against the `$edgeAgent` desired version,
/// and `lastDesiredStatus.code`.
pub fn agent_report(reported: &serde_json::Map<String, Value>, desired_version: u64) -> AgentReport {
    let version = reported.get("lastDesiredVersion").and_then(Value::as_u64);
    let code = reported.get("lastDesiredStatus").and_then(|s| s.get("code")).and_then(Value::as_i64);
    match (version, code) {
        (Some(version), Some(code)) if version == desired_version => AgentReport::Current(code),
        _ => AgentReport::Behind,
    }
}

impl Metrics {
    /// Counts one device.
    pub fn count(&mut self, deployment: &str, device: &str, assignment: &Assignment, report: AgentReport) {
        if assignment.targeted.iter().any(|id| id == deployment) {
            self.targeted += 1;
        }
        if let Some((_, reason)) = assignment.skipped.iter().find(|(id, _)| id == deployment) {
            self.skipped.push((device.to_owned(), reason.clone()));
        }
        if !assignment.applied.iter().any(|id| id == deployment) {
            return;
        }
        self.applied += 1;
        match report {
            AgentReport::Current(200) => self.reporting_success += 1,
            AgentReport::Current(_) => self.reporting_failure += 1,
            AgentReport::Behind => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assignment(targeted: &[&str], applied: &[&str]) -> Assignment {
        Assignment {
            targeted: targeted.iter().map(|s| s.to_string()).collect(),
            applied: applied.iter().map(|s| s.to_string()).collect(),
            ..Assignment::default()
        }
    }

    #[test]
    fn devices_count_by_what_their_agent_reports() {
        let reported = |version: u64, code: i64| {
            let Value::Object(map) = json!({"lastDesiredVersion": version, "lastDesiredStatus": {"code": code}}) else {
                unreachable!()
            };
            map
        };
        let mut m = Metrics::default();
        m.count("x", "d1", &assignment(&["x"], &["x"]), agent_report(&reported(3, 200), 3));
        m.count("x", "d2", &assignment(&["x"], &["x"]), agent_report(&reported(3, 500), 3));
        m.count("x", "d3", &assignment(&["x"], &["x"]), agent_report(&reported(2, 200), 3));
        m.count("x", "d4", &assignment(&["x", "y"], &["y"]), AgentReport::Behind);
        m.count("x", "d5", &assignment(&[], &[]), AgentReport::Behind);
        assert_eq!((m.targeted, m.applied, m.reporting_success, m.reporting_failure), (4, 3, 1, 1));
    }
}
