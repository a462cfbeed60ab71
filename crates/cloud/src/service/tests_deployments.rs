//! Deployments against the in-memory store: targeting by tags, layering, moving devices
//! between deployments, metrics from the agents' reports, refusals with positions.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::store::MemoryStore;

fn cloud() -> Cloud {
    Cloud::new(Arc::new(MemoryStore::default()), "hub.test", 0)
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

fn module(image: &str) -> Value {
    json!({"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": image}})
}

fn base_content(modules: Value) -> String {
    let has_sensor = modules.get("sensor").is_some();
    let mut content = json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "agent:1"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "hub:1"}}
            },
            "modules": modules
        }},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {"all": "FROM /messages/* INTO $upstream"},
            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}},
        "sensor": {"properties.desired": {"rate": 1}}
    }});
    if !has_sensor {
        content["modulesContent"].as_object_mut().unwrap().remove("sensor");
    }
    content.to_string()
}

fn device(cloud: &Cloud, id: &str, tags: Value) {
    cloud.create_device(NewDevice { id: id.into(), tags: obj(tags), ..NewDevice::default() }).unwrap();
}

fn deploy(cloud: &Cloud, id: &str, condition: &str, priority: u32, layered: bool, content: String) -> DeploymentRecord {
    cloud
        .create_deployment(NewDeployment {
            id: id.into(),
            content,
            target_condition: condition.into(),
            priority,
            layered,
            labels: Default::default(),
        })
        .unwrap()
}

fn modules_of(cloud: &Cloud, device: &str) -> Vec<String> {
    match cloud.twin(device, "$edgeAgent") {
        Ok(twin) => twin.desired["modules"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

use crate::deployments::DeploymentRecord;

#[test]
fn a_tag_targeted_deployment_reaches_exactly_the_matching_devices() {
    let cloud = cloud();
    device(&cloud, "p1", json!({"env": "prod"}));
    device(&cloud, "p2", json!({"env": "prod", "ring": 1}));
    device(&cloud, "t1", json!({"env": "test"}));
    deploy(&cloud, "prod", "tags.env = 'prod'", 10, false, base_content(json!({"sensor": module("sensor:1")})));
    assert_eq!(modules_of(&cloud, "p1"), ["sensor"]);
    assert_eq!(modules_of(&cloud, "p2"), ["sensor"]);
    assert!(modules_of(&cloud, "t1").is_empty());
    assert_eq!(cloud.twin("p1", "sensor").unwrap().desired["rate"], 1);
    assert_eq!(cloud.twin("p1", "$edgeHub").unwrap().desired["routes"]["all"], "FROM /messages/* INTO $upstream");
    assert_eq!(cloud.device("p1").unwrap().assignment.applied, ["prod"]);

    // A device created later that matches gets it at once.
    device(&cloud, "p3", json!({"env": "prod"}));
    assert_eq!(modules_of(&cloud, "p3"), ["sensor"]);

    let metrics = cloud.deployment_metrics("prod").unwrap();
    assert_eq!((metrics.targeted, metrics.applied, metrics.reporting_success), (3, 3, 0));
}

#[test]
fn layers_add_modules_and_tags_move_devices_between_deployments() {
    let cloud = cloud();
    device(&cloud, "d", json!({"env": "prod"}));
    deploy(&cloud, "prod", "tags.env = 'prod'", 10, false, base_content(json!({"sensor": module("sensor:1")})));
    deploy(&cloud, "test", "tags.env = 'test'", 10, false, base_content(json!({"sensor": module("sensor:2-beta")})));
    let layer = json!({"$edgeAgent": {"properties.desired.modules.filter": module("filter:1")}}).to_string();
    deploy(&cloud, "filters", "tags.filters = true", 20, true, layer);
    assert_eq!(modules_of(&cloud, "d"), ["sensor"]);

    cloud
        .update_twin("d", "", TwinUpdate { tags: Some(obj(json!({"filters": true}))), ..TwinUpdate::default() })
        .unwrap();
    assert_eq!(modules_of(&cloud, "d"), ["filter", "sensor"]);
    assert_eq!(cloud.device("d").unwrap().assignment.applied, ["prod", "filters"]);

    let version_before = cloud.twin("d", "$edgeAgent").unwrap().desired_version;
    cloud
        .update_twin("d", "", TwinUpdate { tags: Some(obj(json!({"env": "test"}))), ..TwinUpdate::default() })
        .unwrap();
    let agent = cloud.twin("d", "$edgeAgent").unwrap();
    assert_eq!(agent.desired["modules"]["sensor"]["settings"]["image"], "sensor:2-beta");
    assert!(agent.desired_version > version_before);
    assert_eq!(cloud.device("d").unwrap().assignment.applied, ["test", "filters"]);

    // Nothing targets it any more: it keeps its configuration.
    cloud
        .update_twin(
            "d",
            "",
            TwinUpdate { tags: Some(obj(json!({"env": null, "filters": null}))), ..TwinUpdate::default() },
        )
        .unwrap();
    assert_eq!(modules_of(&cloud, "d"), ["filter", "sensor"]);
    assert!(cloud.device("d").unwrap().assignment.applied.is_empty());
}

#[test]
fn the_highest_priority_wins_and_deleting_it_falls_back() {
    let cloud = cloud();
    device(&cloud, "d", json!({"env": "prod"}));
    deploy(&cloud, "v1", "tags.env = 'prod'", 1, false, base_content(json!({"sensor": module("sensor:1")})));
    deploy(&cloud, "v2", "tags.env = 'prod'", 2, false, base_content(json!({"sensor": module("sensor:2")})));
    let image = |cloud: &Cloud| {
        cloud.twin("d", "$edgeAgent").unwrap().desired["modules"]["sensor"]["settings"]["image"].clone()
    };
    assert_eq!(image(&cloud), "sensor:2");
    let metrics = cloud.deployment_metrics("v1").unwrap();
    assert_eq!((metrics.targeted, metrics.applied), (1, 0));
    assert!(metrics.skipped[0].1.contains("v2"), "{:?}", metrics.skipped);
    cloud.delete_deployment("v2", None).unwrap();
    assert_eq!(image(&cloud), "sensor:1");
    assert_eq!(cloud.deployments().unwrap().len(), 1);
}

#[test]
fn metrics_follow_the_agents_reports() {
    let cloud = cloud();
    for id in ["a", "b", "c"] {
        device(&cloud, id, json!({"env": "prod"}));
    }
    deploy(&cloud, "prod", "tags.env = 'prod'", 1, false, base_content(json!({})));
    let version = cloud.twin("a", "$edgeAgent").unwrap().desired_version;
    cloud
        .report(
            "a",
            "$edgeAgent",
            &obj(json!({"lastDesiredVersion": version, "lastDesiredStatus": {"code": 200}})),
            None,
        )
        .unwrap();
    cloud
        .report(
            "b",
            "$edgeAgent",
            &obj(json!({"lastDesiredVersion": version, "lastDesiredStatus": {"code": 500}})),
            None,
        )
        .unwrap();
    cloud
        .report(
            "c",
            "$edgeAgent",
            &obj(json!({"lastDesiredVersion": version - 1, "lastDesiredStatus": {"code": 200}})),
            None,
        )
        .unwrap();
    let m = cloud.deployment_metrics("prod").unwrap();
    assert_eq!((m.targeted, m.applied, m.reporting_success, m.reporting_failure), (3, 3, 1, 1));
}

#[test]
fn conditions_on_reported_properties_follow_reports() {
    let cloud = cloud();
    device(&cloud, "d", json!({}));
    deploy(&cloud, "arm", "properties.reported.arch = 'arm64'", 1, false, base_content(json!({})));
    assert!(cloud.device("d").unwrap().assignment.targeted.is_empty());
    cloud.report("d", "", &obj(json!({"arch": "arm64"})), None).unwrap();
    assert_eq!(cloud.device("d").unwrap().assignment.applied, ["arm"]);
}

#[test]
fn bad_deployments_are_refused_with_where_and_nothing_changes() {
    let cloud = cloud();
    device(&cloud, "d", json!({"env": "prod"}));
    let new = |id: &str, condition: &str, content: String, layered: bool| NewDeployment {
        id: id.into(),
        content,
        target_condition: condition.into(),
        priority: 1,
        layered,
        labels: Default::default(),
    };
    let err = cloud.create_deployment(new("x", "tags.env = ", base_content(json!({})), false)).unwrap_err();
    assert!(err.to_string().contains("at 1:"), "{err}");
    let err = cloud.create_deployment(new("x", "*", "{\"modulesContent\": {}}".into(), false)).unwrap_err();
    assert!(err.to_string().contains("$edgeAgent"), "{err}");
    let layer = json!({"$edgeAgent": {"properties.desired.runtime": {}}}).to_string();
    let err = cloud.create_deployment(new("x", "*", layer, true)).unwrap_err();
    assert!(err.to_string().contains("runtime"), "{err}");
    let err = cloud.create_deployment(new("Bad Id", "*", base_content(json!({})), false)).unwrap_err();
    assert!(err.to_string().contains("lowercase"), "{err}");
    assert!(cloud.deployments().unwrap().is_empty());
    deploy(&cloud, "x", "*", 1, false, base_content(json!({})));
    let err = cloud.create_deployment(new("x", "*", base_content(json!({})), false)).unwrap_err();
    assert!(matches!(err, CloudError::DeploymentExists(_)));
}
