//! Which deployments apply to one device and what its twins' desired properties become,
//! sans-IO: target conditions evaluated against the device twin, the base and layers merged
//! by [`outpost_core::deployment::effective`].

use outpost_core::deployment::{DESIRED, effective};
use outpost_core::query::Condition;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::DeploymentRecord;

/// A deployment ready to evaluate: its record and its parsed condition.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The deployment.
    pub record: DeploymentRecord,
    /// Its target condition.
    pub condition: Condition,
}

/// Where a device stands with the deployments, kept with the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Deployments whose condition matches the device.
    #[serde(default)]
    pub targeted: Vec<String>,
    /// Deployments its configuration comes from, base first.
    #[serde(default)]
    pub applied: Vec<String>,
    /// Targeted deployments that do not apply, with the reason.
    #[serde(default)]
    pub skipped: Vec<(String, String)>,
    /// Why the targeted deployments could not be merged (the device keeps its previous
    /// configuration).
    #[serde(default)]
    pub error: Option<String>,
}

/// The outcome for one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The device's new standing.
    pub assignment: Assignment,
    /// Desired properties per twin (`$edgeAgent`, `$edgeHub`, modules); `None` when nothing
    /// applies or the merge failed: the device keeps what it has.
    pub twins: Option<Vec<(String, Map<String, Value>)>>,
}

/// Evaluates `deployments` for the device whose twin query document is `twin`.
pub fn plan(deployments: &[Compiled], twin: &Value) -> Plan {
    let targeted: Vec<&Compiled> = deployments.iter().filter(|d| d.condition.matches(twin)).collect();
    let mut assignment =
        Assignment { targeted: targeted.iter().map(|d| d.record.id.clone()).collect(), ..Assignment::default() };
    if targeted.is_empty() {
        return Plan { assignment, twins: None };
    }
    let cores: Vec<_> = targeted.iter().map(|d| d.record.to_core()).collect();
    match effective(&cores) {
        Ok(result) => {
            assignment.applied = result.applied;
            assignment.skipped = result.skipped.into_iter().map(|(id, reason)| (id, reason.to_string())).collect();
            if assignment.applied.is_empty() {
                return Plan { assignment, twins: None };
            }
            let twins = result
                .modules_content
                .into_iter()
                .filter_map(|(module, content)| match content {
                    Value::Object(mut object) => match object.remove(DESIRED) {
                        Some(Value::Object(desired)) => Some((module, desired)),
                        _ => None,
                    },
                    _ => None,
                })
                .collect();
            Plan { assignment, twins: Some(twins) }
        }
        Err(e) => {
            assignment.error = Some(e.to_string());
            Plan { assignment, twins: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(id: &str, condition: &str, priority: u32, sequence: u64, modules: Value) -> Compiled {
        let content = json!({
            "$edgeAgent": {"properties.desired": {
                "schemaVersion": "1.1",
                "runtime": {"type": "docker", "settings": {}},
                "systemModules": {
                    "edgeAgent": {"type": "docker", "settings": {"image": "agent:1"}},
                    "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "hub:1"}}
                },
                "modules": modules
            }},
            "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}, "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}}
        });
        compiled(id, condition, priority, sequence, false, content)
    }

    fn compiled(id: &str, condition: &str, priority: u32, sequence: u64, layered: bool, content: Value) -> Compiled {
        let Value::Object(content) = content else { panic!("object") };
        Compiled {
            record: DeploymentRecord {
                id: id.into(),
                content,
                target_condition: condition.into(),
                priority,
                layered,
                labels: Default::default(),
                created_ms: 0,
                sequence,
                version: 1,
            },
            condition: Condition::parse(condition).unwrap(),
        }
    }

    fn module(image: &str) -> Value {
        json!({"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": image}})
    }

    fn twin(tags: Value) -> Value {
        json!({"deviceId": "d", "tags": tags, "properties": {"desired": {}, "reported": {}}})
    }

    #[test]
    fn the_highest_priority_base_applies_and_layers_add_on_top() {
        let deployments = vec![
            base("low", "tags.env = 'prod'", 1, 1, json!({"a": module("a:1")})),
            base("high", "tags.env = 'prod'", 5, 2, json!({"b": module("b:1")})),
            compiled(
                "extra",
                "tags.ring = 1",
                10,
                3,
                true,
                json!({"$edgeAgent": {"properties.desired.modules.c": module("c:1")}}),
            ),
        ];
        let plan = plan(&deployments, &twin(json!({"env": "prod", "ring": 1})));
        assert_eq!(plan.assignment.targeted, ["low", "high", "extra"]);
        assert_eq!(plan.assignment.applied, ["high", "extra"]);
        assert_eq!(plan.assignment.skipped.len(), 1);
        let twins = plan.twins.unwrap();
        let agent = &twins.iter().find(|(m, _)| m == "$edgeAgent").unwrap().1;
        let modules: Vec<_> = agent["modules"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(modules, ["b", "c"]);
    }

    #[test]
    fn nothing_targeted_leaves_the_device_as_it_is() {
        let deployments = vec![base("p", "tags.env = 'prod'", 1, 1, json!({}))];
        let plan = plan(&deployments, &twin(json!({"env": "test"})));
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn a_layer_without_a_base_applies_nothing() {
        let deployments = vec![compiled(
            "l",
            "*",
            10,
            1,
            true,
            json!({"$edgeAgent": {"properties.desired.modules.c": module("c:1")}}),
        )];
        let plan = plan(&deployments, &twin(json!({})));
        assert_eq!(plan.assignment.targeted, ["l"]);
        assert!(plan.assignment.applied.is_empty());
        assert!(plan.twins.is_none());
        assert_eq!(plan.assignment.skipped.len(), 1);
    }
}
