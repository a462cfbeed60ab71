//! Deployment tests: what layers may not set, and standard content that must be whole.

use serde_json::{Map, Value, json};

use super::*;

const SENSOR: &str = "SimulatedTemperatureSensor";

fn base_content() -> Map<String, Value> {
    let text = include_str!("../../../../tests/fixtures/manifests/simulated-temperature-sensor.json");
    let mut doc: Value = serde_json::from_str(text).unwrap();
    match doc["modulesContent"].take() {
        Value::Object(map) => map,
        other => panic!("fixture modulesContent is {other}"),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A standard deployment: the fixture with the sensor's image tagged `tag`.
fn standard(id: &str, priority: u32, created: u64, tag: &str) -> Deployment {
    let mut content = base_content();
    content["$edgeAgent"]["properties.desired"]["modules"][SENSOR]["settings"]["image"] =
        json!(format!("sensor:{tag}"));
    Deployment { id: id.to_owned(), priority, created, layered: false, modules_content: content }
}

fn layered(id: &str, priority: u32, created: u64, content: Value) -> Deployment {
    Deployment { id: id.to_owned(), priority, created, layered: true, modules_content: object(content) }
}

fn module(image: &str) -> Value {
    json!({
        "version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
        "settings": {"image": image, "createOptions": "{}"}
    })
}

fn layer_problems(content: Value) -> Vec<String> {
    validate_layer(&object(content)).unwrap_err().problems.iter().map(ToString::to_string).collect()
}

#[test]
fn layers_may_not_set_the_runtime_the_system_modules_or_hub_settings() {
    let found = layer_problems(json!({
        "$edgeAgent": {
            "properties.desired": {"modules": {}},
            "properties.desired.runtime": {"type": "docker"},
            "properties.desired.systemModules.edgeHub": module("hub:2"),
            "properties.desired.schemaVersion": "1.1",
            "properties.desired.modules": {"filter": module("filter:1")},
        },
        "$edgeHub": {
            "properties.desired": {"schemaVersion": "1.1", "routes": {}},
            "properties.desired.storeAndForwardConfiguration": {"timeToLiveSecs": 10},
            "properties.desired.routes": {"r": "FROM /messages/* INTO $upstream"},
            "properties.desired.routes.r.priority": 1,
        },
    }));
    let agent = "layers may set only \"properties.desired.modules.<name>\" (or a path below it) of $edgeAgent; the runtime and the system modules come from the base deployment";
    let hub = "layers may set only \"properties.desired.routes.<name>\" of $edgeHub; the hub's other settings come from the base deployment";
    let expected = [
        format!("$.modulesContent['$edgeAgent']['properties.desired']: {agent}"),
        format!("$.modulesContent['$edgeAgent']['properties.desired.runtime']: {agent}"),
        format!("$.modulesContent['$edgeAgent']['properties.desired.systemModules.edgeHub']: {agent}"),
        format!("$.modulesContent['$edgeAgent']['properties.desired.schemaVersion']: {agent}"),
        format!("$.modulesContent['$edgeAgent']['properties.desired.modules']: {agent}"),
        format!("$.modulesContent['$edgeHub']['properties.desired']: {hub}"),
        format!("$.modulesContent['$edgeHub']['properties.desired.storeAndForwardConfiguration']: {hub}"),
        format!("$.modulesContent['$edgeHub']['properties.desired.routes']: {hub}"),
        format!("$.modulesContent['$edgeHub']['properties.desired.routes.r.priority']: {hub}"),
    ];
    let mut sorted = found.clone();
    sorted.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(sorted, expected);
}

#[test]
fn malformed_layer_content_is_reported_with_every_path() {
    let deep = format!("properties.desired.{}", vec!["a"; MAX_PATH_SEGMENTS + 1].join("."));
    let found = layer_problems(json!({
        "$edgeAgent": {
            "properties.desired.modules.$filter": module("filter:1"),
            "properties.desired.modules.broken": {"type": "docker", "status": "running"},
            "properties.desired.modules..settings": "x",
        },
        "$edgeHub": {
            "properties.desired.routes.bad": "FROM /messages/* WHERE a > INTO $upstream",
            "properties.desired.routes.notARoute": 7,
        },
        "filter": {
            "properties": {"desired": {}},
            "properties.desiredX": 1,
            "properties.desired.gone": null,
            deep.clone(): 1,
        },
        "twin": {"properties.desired": [1, 2]},
        "$custom": {},
        "notAnObject": 3,
    }));
    let expected = [
        "$.modulesContent['$edgeAgent']['properties.desired.modules.$filter']: names starting with '$' are reserved for system modules".to_owned(),
        "$.modulesContent['$edgeAgent']['properties.desired.modules.broken'].settings: is required".to_owned(),
        "$.modulesContent['$edgeAgent']['properties.desired.modules..settings']: a dotted path cannot have an empty key".to_owned(),
        "$.modulesContent['$edgeHub']['properties.desired.routes.notARoute']: expected a route string or an object with \"route\", found a number".to_owned(),
        "$.modulesContent.filter.properties: unknown field; expected \"properties.desired\" or \"properties.desired.<path>\"".to_owned(),
        "$.modulesContent.filter['properties.desiredX']: unknown field; expected \"properties.desired\" or \"properties.desired.<path>\"".to_owned(),
        "$.modulesContent.filter['properties.desired.gone']: a layer cannot set null (a twin reads null as \"remove\")".to_owned(),
        format!("$.modulesContent.filter['{deep}']: the path has 33 keys below properties.desired; the limit is 32"),
        "$.modulesContent.twin['properties.desired']: expected an object, found an array".to_owned(),
        "$.modulesContent['$custom']: names starting with '$' are reserved for system modules".to_owned(),
        "$.modulesContent.notAnObject: expected an object, found a number".to_owned(),
    ];
    for e in &expected {
        assert!(found.contains(e), "missing {e}\nfound:\n{}", found.join("\n"));
    }
    assert!(
        found
            .iter()
            .any(|f| f
                .starts_with("$.modulesContent['$edgeHub']['properties.desired.routes.bad']: route \"bad\": at 1:")),
        "{found:#?}"
    );
    assert_eq!(found.len(), expected.len() + 1, "{found:#?}");
    let error = validate_layer(&object(json!({"$edgeHub": {"properties.desired": {}}}))).unwrap_err();
    assert!(
        error.to_string().starts_with("invalid layered deployment (1 problem)\n  $.modulesContent['$edgeHub']"),
        "{error}"
    );
}

#[test]
fn valid_layers_list_their_settings_in_path_order() {
    let layer = validate_layer(&object(json!({
        "filter": {"properties.desired.b": 2, "properties.desired": {"a": 1}},
        "$edgeHub": {"properties.desired.routes.r": "FROM /messages/* INTO $upstream"},
    })))
    .unwrap();
    let keys: Vec<(String, String)> = layer.settings().iter().map(|s| (s.module.clone(), s.key())).collect();
    assert_eq!(
        keys,
        [
            ("$edgeHub".into(), "properties.desired.routes.r".into()),
            ("filter".into(), "properties.desired".into()),
            ("filter".into(), "properties.desired.b".into()),
        ]
    );
    assert_eq!(layer.settings()[2].json_path().to_string(), "$.modulesContent.filter['properties.desired'].b");
}

#[test]
fn standard_content_with_dotted_keys_must_be_created_as_layered() {
    let mut deployment = standard("base", 10, 1, "base");
    deployment.modules_content["$edgeAgent"]
        .as_object_mut()
        .unwrap()
        .insert("properties.desired.modules.filter".into(), module("filter:1"));
    let error = deployment.validate().unwrap_err();
    assert_eq!(
        error.to_string(),
        "standard deployment content sets dotted paths ($.modulesContent['$edgeAgent']['properties.desired.modules.filter']); create it as a layered deployment, or set \"properties.desired\" whole"
    );
    deployment.layered = true;
    assert!(deployment.validate().is_err(), "not a valid layer either: it sets $edgeAgent whole");
}

#[test]
fn deployments_validate_as_their_kind() {
    assert!(matches!(standard("base", 1, 1, "x").validate(), Ok(Content::Standard(_))));
    let layer = layered("layer", 1, 1, json!({SENSOR: {"properties.desired.x": 1}}));
    assert!(matches!(layer.validate(), Ok(Content::Layered(l)) if l.settings().len() == 1));
    let mut bad = standard("bad", 1, 1, "x");
    bad.modules_content.remove("$edgeHub");
    let error = bad.validate().unwrap_err();
    assert!(matches!(&error, ContentError::Standard(StandardError::Manifest(_))), "{error:?}");
    assert!(error.to_string().contains("$.modulesContent['$edgeHub']: is required"), "{error}");
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("properties.desired".to_owned()),
            "properties\\.desired(\\.(modules|routes|runtime|settings|image|env|SendInterval|filter|SimulatedTemperatureSensor|r|)){1,5}",
            "[a-z$.]{0,6}",
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
            Just(json!("FROM /messages/* INTO $upstream")),
            Just(module("filter:1")),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn content() -> impl Strategy<Value = Map<String, Value>> {
        let module = prop_oneof![
            Just("$edgeAgent".to_owned()),
            Just("$edgeHub".to_owned()),
            Just(SENSOR.to_owned()),
            Just("filter".to_owned()),
            "[a-z$.]{0,4}",
        ];
        let entry = prop_oneof![
            prop::collection::btree_map(key(), json(), 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            json(),
        ];
        prop::collection::btree_map(module, entry, 0..4).prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn arbitrary_content_never_panics_validation(content in content()) {
            let _ = validate_layer(&content);
            let _ = validate_standard(&content);
        }
    }
}
