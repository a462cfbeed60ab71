//! Manifest tests: Azure-format fixtures parse unchanged; every problem is reported with its
//! path.

use super::*;

const FIXTURES: &[(&str, &str)] = &[
    (
        "simulated-temperature-sensor",
        include_str!("../../../../tests/fixtures/manifests/simulated-temperature-sensor.json"),
    ),
    (
        "startup-order-and-priorities",
        include_str!("../../../../tests/fixtures/manifests/startup-order-and-priorities.json"),
    ),
    ("reference-example", include_str!("../../../../tests/fixtures/manifests/reference-example.json")),
    ("at-scale-deployment", include_str!("../../../../tests/fixtures/manifests/at-scale-deployment.json")),
];

fn fixture(name: &str) -> &'static str {
    FIXTURES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).unwrap()
}

fn problems(text: &str) -> Vec<String> {
    DeploymentManifest::parse(text).unwrap_err().problems.iter().map(ToString::to_string).collect()
}

#[test]
fn azure_fixtures_parse_unchanged() {
    for (name, text) in FIXTURES {
        if let Err(e) = DeploymentManifest::parse(text) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn the_quickstart_manifest_reads_as_azure_means_it() {
    let m = DeploymentManifest::parse(fixture("simulated-temperature-sensor")).unwrap();
    assert_eq!(m.agent.schema_version, "1.0");
    let sensor = &m.agent.modules[&ModuleId::new("SimulatedTemperatureSensor").unwrap()];
    assert_eq!(sensor.image, "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0");
    assert_eq!((sensor.status, sensor.restart_policy), (DesiredStatus::Running, RestartPolicy::Always));
    assert_eq!(sensor.startup_order, u32::MAX);
    assert_eq!(sensor.image_pull_policy, ImagePullPolicy::OnCreate);
    assert_eq!(m.hub.routes["upstream"].route, "FROM /messages/* INTO $upstream");
    assert_eq!(m.hub.store_and_forward.time_to_live_secs, 7200);
    assert_eq!(m.module_twins.len(), 1);
    assert!(m.agent.edge_hub.create_options.contains("8883/tcp"));
}

#[test]
fn chunked_create_options_env_values_and_route_objects_are_read() {
    let m = DeploymentManifest::parse(fixture("startup-order-and-priorities")).unwrap();
    let publisher = &m.agent.modules[&ModuleId::new("opcPublisher").unwrap()];
    let options: serde_json::Value = serde_json::from_str(&publisher.create_options).unwrap();
    assert_eq!(options["HostConfig"]["Memory"], 268_435_456);
    assert_eq!(publisher.startup_order, 1);
    let analytics = &m.agent.modules[&ModuleId::new("analytics").unwrap()];
    assert_eq!(analytics.status, DesiredStatus::Stopped);
    assert_eq!(analytics.env["THRESHOLD"], "42");
    assert_eq!(m.agent.edge_agent.env["SendRuntimeQualityTelemetry"], "false");
    assert_eq!(m.agent.edge_hub.startup_order, 0);
    assert_eq!(m.agent.runtime.registry_credentials["contoso"].address, "contoso.azurecr.io");
    assert!(!format!("{:?}", m.agent.runtime).contains("s3cret"), "passwords never reach logs");
    let alerts = &m.hub.routes["alerts"];
    assert_eq!((alerts.priority, alerts.time_to_live_secs), (Some(0), None));
    assert_eq!(m.hub.routes["telemetry"].time_to_live_secs, Some(3600));
    assert_eq!(m.hub.store_and_forward.max_size_bytes, Some(1 << 30));
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let text = fixture("reference-example")
        .replace("\"restartPolicy\": \"on-failure\"", "\"restartPolicy\": \"sometimes\"")
        .replace("\"image\": \"myreg.example.io/sensor:2.3.1\", ", "")
        .replace("\"priority\": 0", "\"priority\": 12")
        .replace(
            "\"schemaVersion\": \"1.1\",\n        \"runtime\"",
            "\"schemaVersion\": \"2.0\",\n        \"runtime\"",
        );
    let found = problems(&text);
    let expected = [
        "$.modulesContent['$edgeAgent']['properties.desired'].schemaVersion: \"2.0\" is not supported; use \"1.0\" or \"1.1\"",
        "$.modulesContent['$edgeAgent']['properties.desired'].modules.filter.restartPolicy: \"sometimes\" is not one of never, on-failure, on-unhealthy, always",
        "$.modulesContent['$edgeAgent']['properties.desired'].modules.sensor.settings.image: is required",
        "$.modulesContent['$edgeHub']['properties.desired'].routes.alerts.priority: expected an integer from 0 to 9, found 12",
    ];
    for e in expected {
        assert!(found.iter().any(|f| f == e), "missing {e}\nfound:\n{}", found.join("\n"));
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

#[test]
fn system_module_rules_are_enforced() {
    let text = fixture("reference-example").replace(
        "\"type\": \"docker\", \"status\": \"running\", \"restartPolicy\": \"always\", \"startupOrder\": 0,",
        "\"type\": \"docker\", \"status\": \"stopped\", \"restartPolicy\": \"never\",",
    );
    let found = problems(&text);
    assert!(found.iter().any(|f| f.ends_with("edgeHub.status: the hub must be \"running\"")), "{found:#?}");
    assert!(
        found.iter().any(|f| f.ends_with("edgeHub.restartPolicy: the hub's restart policy must be \"always\"")),
        "{found:#?}"
    );
}

#[test]
fn bad_create_options_unknown_fields_and_twins_are_rejected() {
    let text = fixture("simulated-temperature-sensor")
        .replace("\"createOptions\": \"\"\n            },\n            \"type\": \"docker\",\n            \"status\"", "\"createOptions\": \"{not json\"\n            },\n            \"type\": \"docker\",\n            \"status\"")
        .replace("\"version\": \"1.0\"", "\"version\": \"1.0\", \"restartpolicy\": \"never\"")
        .replace("\"SimulatedTemperatureSensor\": {\n      \"properties.desired\"", "\"Ghost\": {\n      \"properties.desired\"");
    let found = problems(&text);
    assert!(
        found.iter().any(|f| f.contains("SimulatedTemperatureSensor.settings.createOptions: is not valid JSON")),
        "{found:#?}"
    );
    assert!(found.iter().any(|f| f.contains("SimulatedTemperatureSensor.restartpolicy: unknown field")), "{found:#?}");
    assert!(
        found.iter().any(|f| f == "$.modulesContent.Ghost: twin for a module that $edgeAgent does not define"),
        "{found:#?}"
    );
}

#[test]
fn envelopes_and_json_errors_are_explained() {
    assert_eq!(problems("{"), ["$: not valid JSON: EOF while parsing an object at line 1 column 1"]);
    assert_eq!(problems("[]"), ["$: expected an object, found an array"]);
    assert_eq!(problems("{}"), ["$.modulesContent: is required"]);
    let found = problems(r#"{"modulesContent": {"$edgeAgent": {"properties.desired.modules.x": {}}}}"#);
    assert!(found.iter().any(|f| f.contains("layered deployment content")), "{found:#?}");
    assert!(found.iter().any(|f| f == "$.modulesContent['$edgeHub']: is required"), "{found:#?}");
}

#[test]
fn module_names_follow_id_rules_and_reserve_system_names() {
    let text = fixture("reference-example")
        .replace("\"filter\": {\n            \"version\"", "\"$filter\": {\n            \"version\"");
    assert!(problems(&text).iter().any(|f| f.contains("modules['$filter']: names starting with '$' are reserved")));
    let text = fixture("reference-example")
        .replace("\"filter\": {\n            \"version\"", "\"fil ter\": {\n            \"version\"");
    assert!(problems(&text).iter().any(|f| f.contains("modules['fil ter']: module id \"fil ter\" contains ' '")));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_json_never_panics(text in ".{0,400}") {
            let _ = DeploymentManifest::parse(&text);
        }

        #[test]
        fn mutated_fixtures_never_panic(cut in 0usize..4000, insert in "[\\[\\]{}\",:0-9a-z$ ]{0,8}") {
            let base = fixture("startup-order-and-priorities");
            let at = cut.min(base.len());
            if base.is_char_boundary(at) {
                let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
                let _ = DeploymentManifest::parse(&text);
            }
        }
    }
}

#[test]
fn broken_routes_fail_the_manifest_with_their_path_and_position() {
    let text = include_str!("../../../../tests/fixtures/manifests/simulated-temperature-sensor.json");
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    let routes = value.pointer("/modulesContent/$edgeHub/properties.desired/routes").unwrap().as_object().unwrap();
    let (name, _) = routes.iter().next().unwrap();
    let mut broken = value.clone();
    broken["modulesContent"]["$edgeHub"]["properties.desired"]["routes"][name] =
        serde_json::json!("FROM /messages/* WHERE temperature > INTO $upstream");
    let error = DeploymentManifest::parse(&broken.to_string()).unwrap_err().to_string();
    assert!(error.contains(&format!("$.modulesContent['$edgeHub']['properties.desired'].routes.{name}")), "{error}");
    assert!(error.contains(&format!("route \"{name}\": at 1:")), "{error}");
}
