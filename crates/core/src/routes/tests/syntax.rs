//! Route structure: SELECT/FROM/WHERE/INTO, sources, sinks, comments, and errors that say
//! where and what.

use super::*;
use crate::manifest::DeploymentManifest;

const MANIFESTS: [&str; 4] = [
    include_str!("../../../../../tests/fixtures/manifests/reference-example.json"),
    include_str!("../../../../../tests/fixtures/manifests/simulated-temperature-sensor.json"),
    include_str!("../../../../../tests/fixtures/manifests/startup-order-and-priorities.json"),
    include_str!("../../../../../tests/fixtures/manifests/at-scale-deployment.json"),
];

/// Every route in the manifest fixtures, by name.
pub(super) fn fixture_routes() -> Vec<(String, String)> {
    MANIFESTS
        .iter()
        .flat_map(|text| DeploymentManifest::parse(text).unwrap().hub.routes)
        .map(|(name, spec)| (name, spec.route))
        .collect()
}

#[test]
fn every_fixture_route_parses() {
    let routes = fixture_routes();
    assert!(routes.len() >= 7);
    for (name, text) in routes {
        if let Err(e) = Route::parse(&name, &text) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_reference_manifest_routes_mean_what_azure_means() {
    let sensor_to_filter = Route::parse(
        "sensorToFilter",
        r#"FROM /messages/modules/sensor/outputs/temp INTO BrokeredEndpoint("/modules/filter/inputs/in1")"#,
    )
    .unwrap();
    assert_eq!(sensor_to_filter.name(), "sensorToFilter");
    assert_eq!(sensor_to_filter.source(), &Source::ModuleOutput { module: "sensor".into(), output: "temp".into() });
    assert_eq!(sensor_to_filter.sink(), &Sink::ModuleInput { module: "filter".into(), input: "in1".into() });
    assert!(!sensor_to_filter.has_condition());
    assert!(sensor_to_filter.matches(&from_module("sensor", Some("temp"))));
    assert!(!sensor_to_filter.matches(&from_module("sensor", Some("humidity"))));
    assert!(!sensor_to_filter.matches(&from_module("filter", Some("temp"))));

    let alerts = Route::parse("alerts", "FROM /messages/modules/filter/outputs/alerts INTO $upstream").unwrap();
    assert_eq!(alerts.sink(), &Sink::Upstream);
    assert!(alerts.matches(&from_module("filter", Some("alerts"))));

    let leaf_to_cloud =
        Route::parse("leafToCloud", "FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream")
            .unwrap();
    assert!(leaf_to_cloud.has_condition());
    assert!(leaf_to_cloud.matches(&with(telemetry("leaf1"), &[], &[("connectionDeviceId", "leaf1")])));
    assert!(!leaf_to_cloud.matches(&from_module("sensor", Some("temp"))));
    assert!(!leaf_to_cloud.matches(&from_module("sensor", None)));
}

#[test]
fn select_star_and_keywords_are_optional_and_ignore_case() {
    for text in [
        "SELECT * FROM /* INTO $upstream",
        "select * from /* into $upstream",
        "SeLeCt * FrOm /* WhErE true InTo $upstream",
        "FROM /* where true and not false or false into $UpStream",
    ] {
        let route = Route::parse("r", text).unwrap_or_else(|e| panic!("{e}"));
        assert!(route.matches(&telemetry("d")), "{text}");
    }
    assert!(matches!(
        problem("SELECT a FROM /* INTO $upstream"),
        Problem::Unexpected { expected: "'*' after SELECT", .. }
    ));
}

#[test]
fn a_route_without_where_takes_every_message_from_its_source() {
    let route = Route::parse("r", "FROM /messages/* INTO $upstream").unwrap();
    assert_eq!(route.evaluate(&telemetry("d")), Value::Bool(true));
    assert!(route.matches(&from_module("m", None)));
}

#[test]
fn comments_and_line_breaks_go_anywhere_between_tokens() {
    let text = "/* leaf devices */ FROM /messages/* /* all */\n  WHERE /* a */ $connectionDeviceId /* b */ = 'leaf1'\n  /* c */ INTO /* d */ $upstream /* end */";
    let route = Route::parse("r", text).unwrap();
    assert_eq!(route.text(), text);
    assert!(route.matches(&with(telemetry("leaf1"), &[], &[("connectionDeviceId", "leaf1")])));
    assert!(!route.matches(&with(telemetry("leaf2"), &[], &[("connectionDeviceId", "leaf2")])));
}

#[test]
fn a_star_after_a_slash_in_the_path_is_the_wildcard_not_a_comment() {
    // edgeHub's lexer would read `/* WHERE … */` as one comment and drop the condition.
    let route = Route::parse("r", "FROM /messages/* WHERE a = 'x' /* note */ INTO $upstream").unwrap();
    assert!(route.has_condition());
    assert!(!route.matches(&telemetry("d")));
}

#[test]
fn every_source_form_parses_to_its_source() {
    let module = || "m1".to_owned();
    let cases = [
        ("/*", Source::All),
        ("/messages/*", Source::Messages),
        ("/messages", Source::Messages),
        ("/messages/", Source::Messages),
        ("/messages/modules/*", Source::Modules),
        ("/messages/modules", Source::Modules),
        ("/messages/modules/m1/*", Source::Module { module: module() }),
        ("/messages/modules/m1", Source::Module { module: module() }),
        ("/messages/modules/m1/outputs/*", Source::ModuleOutputs { module: module() }),
        ("/messages/modules/m1/outputs", Source::ModuleOutputs { module: module() }),
        ("/messages/modules/m1/outputs/o1", Source::ModuleOutput { module: module(), output: "o1".into() }),
        ("/Messages/MODULES/m1/Outputs/o1/", Source::ModuleOutput { module: module(), output: "o1".into() }),
    ];
    for (path, source) in cases {
        let route = Route::parse("r", &format!("FROM {path} INTO $upstream")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(route.source(), &source, "{path}");
    }
    assert_eq!(Source::All.to_string(), "/*");
    assert_eq!(Source::Modules.to_string(), "/messages/modules/*");
    assert_eq!(Source::ModuleOutputs { module: module() }.to_string(), "/messages/modules/m1/outputs/*");
    assert_eq!(
        Source::ModuleOutput { module: module(), output: "o".into() }.to_string(),
        "/messages/modules/m1/outputs/o"
    );
}

#[test]
fn sources_select_by_whole_segments() {
    let leaf = telemetry("leaf");
    let bare = from_module("a", None);
    let out = from_module("a", Some("out"));
    let other_out = from_module("a", Some("out2"));
    let longer_name = from_module("ab", Some("out"));
    let all = [&leaf, &bare, &out, &other_out, &longer_name];
    let cases: [(&str, [bool; 5]); 9] = [
        ("/*", [true; 5]),
        ("/messages/*", [true; 5]),
        ("/messages", [true; 5]),
        ("/messages/modules/*", [false, true, true, true, true]),
        ("/messages/modules/a/*", [false, true, true, true, false]),
        ("/messages/modules/a", [false, true, true, true, false]),
        ("/messages/modules/a/outputs/*", [false, false, true, true, false]),
        ("/messages/modules/a/outputs/out", [false, false, true, false, false]),
        ("/messages/modules/A/Outputs/OUT", [false, false, true, false, false]),
    ];
    for (path, expected) in cases {
        let route = Route::parse("r", &format!("FROM {path} INTO $upstream")).unwrap();
        let got = all.map(|message| route.matches(message));
        assert_eq!(got, expected, "{path}");
    }
}

#[test]
fn other_paths_are_unsupported_sources() {
    for path in [
        "/messages/events",
        "/twinChangeNotifications",
        "/messages/*/outputs",
        "/messages/modules/*/outputs/o",
        "/messages/modules/a/inputs/b",
        "/messages/modules/a/outputs/o/extra",
        "/messages/mod*",
        "/x",
    ] {
        let err = Route::parse("r", &format!("FROM {path} INTO $upstream")).unwrap_err();
        assert_eq!(err.problem, Problem::UnsupportedSource { path: path.into() }, "{path}");
        assert_eq!(err.position.column, 6, "{path}");
    }
    assert!(matches!(problem("FROM messages INTO $upstream"), Problem::Unexpected { .. }));
    assert!(matches!(problem("FROM /messages//modules INTO $upstream"), Problem::Unexpected { .. }));
}

#[test]
fn sinks_are_upstream_or_a_module_input() {
    let sink = |text: &str| Route::parse("r", &format!("FROM /* INTO {text}")).map(|r| r.sink().clone());
    let input = |module: &str, input: &str| Sink::ModuleInput { module: module.into(), input: input.into() };
    assert_eq!(sink("$upstream"), Ok(Sink::Upstream));
    assert_eq!(sink("$UPSTREAM"), Ok(Sink::Upstream));
    assert_eq!(sink(r#"BrokeredEndpoint("/modules/filter/inputs/in1")"#), Ok(input("filter", "in1")));
    assert_eq!(sink(r#"brokeredendpoint ( '/modules/f/inputs/i' )"#), Ok(input("f", "i")));
    assert_eq!(sink(r#"BrokeredEndpoint(" modules/f/Inputs/i/ ")"#), Ok(input("f", "i")));
    assert_eq!(Sink::Upstream.to_string(), "$upstream");
    assert_eq!(input("f", "i").to_string(), r#"BrokeredEndpoint("/modules/f/inputs/i")"#);
}

#[test]
fn other_sinks_are_refused() {
    for (text, expected) in [
        ("$downstream", Problem::UnknownEndpoint { name: "$downstream".into() }),
        ("upstream", Problem::UnknownEndpoint { name: "upstream".into() }),
        (r#"Endpoint("/modules/f/inputs/i")"#, Problem::UnknownEndpoint { name: "Endpoint".into() }),
        (r#"BrokeredEndpoint("/modules/f/outputs/i")"#, address("/modules/f/outputs/i")),
        (r#"BrokeredEndpoint("/modules/f/inputs")"#, address("/modules/f/inputs")),
        (r#"BrokeredEndpoint("/modules//inputs/i")"#, address("/modules//inputs/i")),
        (r#"BrokeredEndpoint("/modules/f/inputs/i/x")"#, address("/modules/f/inputs/i/x")),
        (r#"BrokeredEndpoint("")"#, address("")),
    ] {
        assert_eq!(problem(&format!("FROM /* INTO {text}")), expected, "{text}");
    }
    for text in [
        "BrokeredEndpoint(/modules/f/inputs/i)",
        r#"BrokeredEndpoint("/modules/f/inputs/i""#,
        "BrokeredEndpoint",
        "$upstream $upstream",
        "",
    ] {
        assert!(matches!(problem(&format!("FROM /* INTO {text}")), Problem::Unexpected { .. }), "{text}");
    }
}

fn address(address: &str) -> Problem {
    Problem::InvalidEndpointAddress { address: address.into() }
}

#[test]
fn errors_name_the_route_the_place_and_what_was_expected() {
    let err = Route::parse("alerts", "FROM /messages INT $upstream").unwrap_err();
    assert_eq!(err.to_string(), r#"route "alerts": at 1:16: expected WHERE or INTO, found "INT""#);

    let err = Route::parse("alerts", "FROM /messages/* WHERE a = 'b' INT $upstream").unwrap_err();
    assert_eq!(err.to_string(), r#"route "alerts": at 1:32: expected an operator or INTO, found "INT""#);

    let err = Route::parse("hot", "FROM /messages/*\nWHERE temperature > 25\nINTO $upstream").unwrap_err();
    assert_eq!((err.position.line, err.position.column, err.position.offset), (2, 19, 35));
    assert_eq!(
        err.to_string(),
        "route \"hot\": at 2:19: invalid operands to '>': have string and number \
         (application and system properties are strings; compare numbers with as_number(…))"
    );

    let err = Route::parse("r", "").unwrap_err();
    assert_eq!(err.to_string(), r#"route "r": at 1:1: expected FROM, found end of route"#);

    let err = Route::parse("r", "FROM /* WHERE INTO $upstream").unwrap_err();
    assert_eq!(err.to_string(), r#"route "r": at 1:15: expected an expression, found "INTO""#);

    let err = Route::parse("r", "FROM /* WHERE a = 'unterminated INTO $upstream").unwrap_err();
    assert_eq!(err.to_string(), r#"route "r": at 1:19: unterminated string"#);

    let err = Route::parse("r", "FROM /* WHERE (a = 'b' INTO $upstream").unwrap_err();
    assert_eq!(err.to_string(), r#"route "r": at 1:24: expected an operator or ')', found "INTO""#);

    let err = Route::parse("r", "FROM /* WHERE frobnicate(a) INTO $upstream").unwrap_err();
    assert_eq!(err.to_string(), r#"route "r": at 1:15: unknown function "frobnicate""#);

    let err = Route::parse("r", "FROM /* WHERE length(1, 2) = 1 INTO $upstream").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"route "r": at 1:15: invalid arguments to length(number, number); expected length(string)"#
    );

    let err = Route::parse("r", "FROM /* WHERE NOT 'a' INTO $upstream").unwrap_err();
    assert_eq!(err.to_string(), r#"route "r": at 1:15: invalid operand to 'NOT': have string"#);

    let err = Route::parse("r", r#"FROM /* INTO BrokeredEndpoint("/modules/f")"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"route "r": at 1:31: endpoint address "/modules/f" is not of the form /modules/<module>/inputs/<input>"#
    );

    let err = Route::parse("r", "FROM /* INTO $upstream /* unterminated").unwrap_err();
    assert_eq!(err.to_string(), r#"route "r": at 1:24: unterminated comment"#);
}

#[test]
fn columns_count_characters_not_bytes() {
    let err = Route::parse("r", "FROM /* WHERE 'é€😀' = 1 INTO $upstream").unwrap_err();
    assert_eq!((err.position.column, err.position.offset), (21, 26));
}

#[test]
fn long_tokens_are_shortened_in_errors() {
    let long = "x".repeat(100);
    let err = Route::parse("r", &format!("FROM /* WHERE a = 'b' {long} INTO $upstream")).unwrap_err();
    assert!(err.to_string().ends_with(&format!("found \"{}\"…", "x".repeat(40))), "{err}");
}

#[test]
fn twin_change_includes_is_refused_on_message_routes() {
    assert_eq!(
        problem("FROM /messages/* WHERE TWIN_CHANGE_INCLUDES(properties.desired.x) INTO $upstream"),
        Problem::TwinChangeFunction { name: "TWIN_CHANGE_INCLUDES".into() }
    );
}
