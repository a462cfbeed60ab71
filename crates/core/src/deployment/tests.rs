//! Deployment tests: base selection, layers merged in order onto the base, what layers may
//! not set, and merges that would make an invalid manifest.

use serde_json::{Map, Value, json};

use super::*;
use crate::ids::ModuleId;

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

fn sensor_image(effective: &Effective) -> &str {
    effective.modules_content["$edgeAgent"]["properties.desired"]["modules"][SENSOR]["settings"]["image"]
        .as_str()
        .unwrap()
}

fn manifest(effective: &Effective) -> &DeploymentManifest {
    effective.manifest.as_ref().unwrap()
}

fn layer_problems(content: Value) -> Vec<String> {
    validate_layer(&object(content)).unwrap_err().problems.iter().map(ToString::to_string).collect()
}

#[test]
fn the_base_is_the_standard_deployment_of_highest_priority() {
    let deployments = [standard("low", 10, 3, "low"), standard("high", 30, 1, "high"), standard("mid", 20, 2, "mid")];
    let effective = effective(&deployments).unwrap();
    assert_eq!(sensor_image(&effective), "sensor:high");
    assert_eq!(effective.applied, ["high"]);
    let outranked = SkipReason::Outranked { base: "high".into() };
    assert_eq!(effective.skipped, [("mid".into(), outranked.clone()), ("low".into(), outranked)]);
    assert_eq!(effective.modules_content, deployments[1].modules_content, "a base alone is delivered as it is");
}

#[test]
fn equal_priorities_go_to_the_most_recently_created_whatever_the_order_given() {
    let mut deployments = vec![standard("older", 10, 5, "older"), standard("newer", 10, 9, "newer")];
    assert_eq!(sensor_image(&effective(&deployments).unwrap()), "sensor:newer");
    deployments.reverse();
    let effective = effective(&deployments).unwrap();
    assert_eq!(sensor_image(&effective), "sensor:newer");
    assert_eq!(effective.skipped, [("older".into(), SkipReason::Outranked { base: "newer".into() })]);
}

#[test]
fn a_layer_adds_a_module_and_routes() {
    let layer = layered(
        "filter-layer",
        20,
        1,
        json!({
            "$edgeAgent": {"properties.desired.modules.filter": module("filter:1")},
            "$edgeHub": {
                "properties.desired.routes.filterToHub": "FROM /messages/modules/filter/outputs/* INTO $upstream",
                "properties.desired.routes.alerts": {
                    "route": "FROM /messages/modules/filter/outputs/alerts INTO $upstream",
                    "priority": 0, "timeToLiveSecs": 60
                }
            },
            "filter": {"properties.desired": {"threshold": 25}}
        }),
    );
    let effective = effective([&standard("base", 10, 1, "1"), &layer]).unwrap();
    assert_eq!(effective.applied, ["base", "filter-layer"]);
    assert!(effective.skipped.is_empty());
    let m = manifest(&effective);
    let ids: Vec<&str> = m.agent.modules.keys().map(ModuleId::as_str).collect();
    assert_eq!(ids, ["SimulatedTemperatureSensor", "filter"]);
    assert_eq!(m.agent.modules[&ModuleId::new("filter").unwrap()].image, "filter:1");
    let routes: Vec<&str> = m.hub.routes.keys().map(String::as_str).collect();
    assert_eq!(routes, ["alerts", "filterToHub", "upstream"]);
    assert_eq!((m.hub.routes["alerts"].priority, m.hub.routes["alerts"].time_to_live_secs), (Some(0), Some(60)));
    assert_eq!(m.module_twins[&ModuleId::new("filter").unwrap()], json!({"threshold": 25}));
}

#[test]
fn the_higher_layer_overwrites_the_lower_at_the_same_path() {
    let image = |tag: &str| json!({"$edgeAgent": {"properties.desired.modules.SimulatedTemperatureSensor.settings.image": tag}});
    let deployments = [
        layered("third", 40, 1, image("sensor:third")),
        layered("first", 20, 9, image("sensor:first")),
        standard("base", 10, 1, "base"),
        layered("second", 30, 1, image("sensor:second")),
    ];
    let effective = effective(&deployments).unwrap();
    assert_eq!(effective.applied, ["base", "first", "second", "third"]);
    assert_eq!(sensor_image(&effective), "sensor:third");

    // Equal priorities apply in order of creation: the newer layer wins.
    let deployments = [
        layered("newer", 20, 7, image("sensor:newer")),
        layered("older", 20, 3, image("sensor:older")),
        standard("base", 10, 1, "base"),
    ];
    let effective = super::effective(&deployments).unwrap();
    assert_eq!(effective.applied, ["base", "older", "newer"]);
    assert_eq!(sensor_image(&effective), "sensor:newer");
}

#[test]
fn a_higher_layer_replaces_a_module_that_a_lower_one_refined() {
    let deployments = [
        standard("base", 10, 1, "base"),
        layered(
            "tweak",
            20,
            1,
            json!({"$edgeAgent": {"properties.desired.modules.SimulatedTemperatureSensor.env.MODE": {"value": "fast"}}}),
        ),
        layered(
            "replace",
            30,
            1,
            json!({"$edgeAgent": {"properties.desired.modules.SimulatedTemperatureSensor": module("sensor:new")}}),
        ),
    ];
    let effective = effective(&deployments).unwrap();
    let sensor = &manifest(&effective).agent.modules[&ModuleId::new(SENSOR).unwrap()];
    assert_eq!((sensor.image.as_str(), sensor.env.len()), ("sensor:new", 0));
}

#[test]
fn within_one_layer_a_deeper_path_refines_a_shallower_one() {
    let layer = layered(
        "layer",
        20,
        1,
        json!({"$edgeAgent": {
            "properties.desired.modules.filter.settings.image": "filter:pinned",
            "properties.desired.modules.filter": module("filter:1"),
        }}),
    );
    let effective = effective([&standard("base", 10, 1, "base"), &layer]).unwrap();
    assert_eq!(manifest(&effective).agent.modules[&ModuleId::new("filter").unwrap()].image, "filter:pinned");
}

#[test]
fn a_layer_that_sets_a_twin_whole_replaces_the_base_twin_and_a_path_changes_one_value() {
    let whole = layered("whole", 20, 1, json!({SENSOR: {"properties.desired": {"SendInterval": 1}}}));
    let effective = effective([&standard("base", 10, 1, "base"), &whole]).unwrap();
    assert_eq!(effective.modules_content[SENSOR], json!({"properties.desired": {"SendInterval": 1}}));

    let one = layered(
        "one",
        20,
        1,
        json!({SENSOR: {"properties.desired.SendInterval": 1, "properties.desired.limits.max": 9}}),
    );
    let effective = super::effective([&standard("base", 10, 1, "base"), &one]).unwrap();
    let twin = &manifest(&effective).module_twins[&ModuleId::new(SENSOR).unwrap()];
    assert_eq!(twin, &json!({"SendData": true, "SendInterval": 1, "limits": {"max": 9}}));
}

#[test]
fn layers_not_above_the_base_are_skipped_with_the_reason() {
    let layer = |id, priority| layered(id, priority, 1, json!({SENSOR: {"properties.desired.SendInterval": 1}}));
    let deployments =
        [layer("equal", 10), standard("base", 10, 1, "base"), layer("below", 5), standard("old", 4, 1, "old")];
    let effective = effective(&deployments).unwrap();
    assert_eq!(effective.applied, ["base"]);
    let not_above = SkipReason::NotAboveBase { base: "base".into(), base_priority: 10 };
    let expected = [
        ("equal".to_owned(), not_above.clone()),
        ("below".to_owned(), not_above.clone()),
        ("old".to_owned(), SkipReason::Outranked { base: "base".into() }),
    ];
    assert_eq!(effective.skipped, expected);
    assert_eq!(effective.modules_content[SENSOR]["properties.desired"]["SendInterval"], 5);
    assert_eq!(not_above.to_string(), "layers apply only above the base's priority, 10 (standard deployment \"base\")");
}

#[test]
fn without_a_base_nothing_applies() {
    let deployments = [
        layered("a", 20, 1, json!({"$edgeAgent": {"properties.desired.modules.filter": module("filter:1")}})),
        layered("b", 30, 1, json!({})),
    ];
    let effective = effective(&deployments).unwrap();
    assert!(effective.applied.is_empty() && effective.modules_content.is_empty() && effective.manifest.is_none());
    assert_eq!(effective.skipped, [("b".into(), SkipReason::NoBase), ("a".into(), SkipReason::NoBase)]);
    assert_eq!(super::effective([]).unwrap(), Effective::default());
    assert_eq!(SkipReason::NoBase.to_string(), "no standard deployment targets the device; layers need a base");
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
    assert!(matches!(
        effective([&deployment]),
        Err(EffectiveError::Base { id, source: StandardError::DottedPaths { .. } }) if id == "base"
    ));
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

#[test]
fn the_merged_result_is_a_manifest_a_device_accepts() {
    let layer = layered(
        "layer",
        20,
        1,
        json!({
            "$edgeAgent": {"properties.desired.modules.filter": module("filter:1")},
            "$edgeHub": {"properties.desired.routes.toFilter": "FROM /messages/modules/SimulatedTemperatureSensor/* INTO BrokeredEndpoint(\"/modules/filter/inputs/in\")"},
        }),
    );
    let effective = effective([&standard("base", 10, 1, "base"), &layer]).unwrap();
    let text = json!({"modulesContent": effective.modules_content}).to_string();
    assert_eq!(&DeploymentManifest::parse(&text).unwrap(), manifest(&effective));
}

#[test]
fn a_merge_that_makes_an_invalid_manifest_names_the_layer() {
    let deployments = [
        standard("base", 10, 1, "base"),
        layered(
            "status",
            20,
            1,
            json!({"$edgeAgent": {"properties.desired.modules.SimulatedTemperatureSensor.status": "paused"}}),
        ),
        layered("ghost", 30, 1, json!({"ghost": {"properties.desired": {"a": 1}}})),
        layered("half", 40, 1, json!({"$edgeAgent": {"properties.desired.modules.half.settings.image": "half:1"}})),
    ];
    let Err(EffectiveError::InvalidMerge { base, problems }) = effective(&deployments) else {
        panic!("merge accepted")
    };
    assert_eq!(base, "base");
    let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let expected = [
        "$.modulesContent['$edgeAgent']['properties.desired'].modules.SimulatedTemperatureSensor.status: \"paused\" is not one of running, stopped (set by layered deployment \"status\")",
        "$.modulesContent.ghost: twin for a module that $edgeAgent does not define (set by layered deployment \"ghost\")",
        "$.modulesContent['$edgeAgent']['properties.desired'].modules.half.type: is required (set by layered deployment \"half\")",
        "$.modulesContent['$edgeAgent']['properties.desired'].modules.half.status: is required (set by layered deployment \"half\")",
    ];
    for e in expected {
        assert!(found.iter().any(|f| f == e), "missing {e}\nfound:\n{}", found.join("\n"));
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    let error = effective(&deployments).unwrap_err().to_string();
    assert!(
        error.starts_with(
            "layers merged onto base deployment \"base\" make an invalid manifest (4 problems)\n  $.modulesContent"
        ),
        "{error}"
    );
}

#[test]
fn a_path_through_a_value_that_is_not_an_object_is_an_error() {
    let layer = layered("layer", 20, 1, json!({SENSOR: {"properties.desired.SendInterval.unit": "s"}}));
    let error = effective([&standard("base", 10, 1, "base"), &layer]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "layered deployment \"layer\" sets \"properties.desired.SendInterval.unit\" of \"SimulatedTemperatureSensor\" through a number at $.modulesContent.SimulatedTemperatureSensor['properties.desired'].SendInterval; only objects have keys"
    );
    // A base with `"modules": 5` is refused as a base before any layer reaches it.
    let mut base = standard("base", 10, 1, "base");
    base.modules_content["$edgeAgent"]["properties.desired"]["modules"] = json!(5);
    let layer =
        layered("layer", 20, 1, json!({"$edgeAgent": {"properties.desired.modules.filter": module("filter:1")}}));
    assert!(matches!(effective([&base, &layer]), Err(EffectiveError::Base { .. })));
}

#[test]
fn invalid_layers_and_duplicate_ids_are_errors() {
    let bad = layered("bad", 20, 1, json!({"$edgeAgent": {"properties.desired.runtime": {}}}));
    let error = effective([&standard("base", 10, 1, "base"), &bad]).unwrap_err();
    assert!(matches!(&error, EffectiveError::Layer { id, .. } if id == "bad"), "{error:?}");
    assert!(std::error::Error::source(&error).unwrap().to_string().contains("properties.desired.runtime"));
    let error = effective([&standard("same", 10, 1, "a"), &standard("same", 20, 1, "b")]).unwrap_err();
    assert_eq!(error.to_string(), "deployment \"same\" is given twice");
}

mod fuzz {
    use std::collections::HashSet;

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

    /// Layered content that is mostly valid, so that merges happen and collide.
    fn layer_content() -> impl Strategy<Value = Map<String, Value>> {
        let name = prop_oneof![Just(SENSOR), Just("filter"), Just("x")];
        let keys = prop::collection::vec(
            prop_oneof![Just("settings"), Just("image"), Just("env"), Just("SendInterval"), Just("a")],
            0..3,
        );
        let value = prop_oneof![json(), Just(module("filter:1")), Just(json!({"a": {"b": 1}}))];
        let setting = (0..3u8, name, keys, value).prop_map(|(target, name, keys, value)| {
            let below = keys.iter().map(|k| format!(".{k}")).collect::<String>();
            match target {
                0 => ("$edgeAgent".to_owned(), format!("properties.desired.modules.{name}{below}"), value),
                1 => (
                    "$edgeHub".to_owned(),
                    format!("properties.desired.routes.{name}"),
                    json!("FROM /messages/* INTO $upstream"),
                ),
                _ => (name.to_owned(), format!("properties.desired{below}"), value),
            }
        });
        prop::collection::vec(setting, 0..4).prop_map(|settings| {
            let mut content = Map::new();
            for (module, key, value) in settings {
                let entry = content.entry(module).or_insert_with(|| json!({}));
                entry.as_object_mut().expect("entries are objects").insert(key, value);
            }
            content
        })
    }

    fn deployment() -> impl Strategy<Value = (bool, u32, u64, Map<String, Value>)> {
        (prop::bool::weighted(0.8), 0u32..5, 0u64..3, prop_oneof![content(), layer_content(), layer_content()])
    }

    proptest! {
        #[test]
        fn arbitrary_content_never_panics_validation(content in content()) {
            let _ = validate_layer(&content);
            let _ = validate_standard(&content);
        }

        #[test]
        fn arbitrary_layers_never_panic_the_merge(others in prop::collection::vec(deployment(), 0..5), with_base: bool) {
            let mut deployments: Vec<Deployment> = others
                .into_iter()
                .enumerate()
                .map(|(n, (layered, priority, created, modules_content))| Deployment {
                    id: format!("d{n}"), priority, created, layered, modules_content,
                })
                .collect();
            if with_base {
                deployments.push(standard("base", 2, 1, "base"));
            }
            if let Ok(effective) = effective(&deployments) {
                let ids: HashSet<&str> = deployments.iter().map(|d| d.id.as_str()).collect();
                let reported: HashSet<&str> = effective
                    .applied
                    .iter()
                    .map(String::as_str)
                    .chain(effective.skipped.iter().map(|(id, _)| id.as_str()))
                    .collect();
                prop_assert_eq!(reported, ids);
                prop_assert_eq!(effective.applied.len() + effective.skipped.len(), deployments.len());
                prop_assert_eq!(effective.manifest.is_some(), !effective.applied.is_empty());
            }
        }
    }
}
