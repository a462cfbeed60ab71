//! Target condition tests: syntax and canonical text, errors with their positions,
//! three-valued evaluation against twins, and robustness against any input.

#![allow(clippy::unwrap_used)]

mod errors;
mod evaluation;
mod robustness;
mod syntax;

use serde_json::{Value, json};

use super::*;

/// `text`, which must parse.
fn parse(text: &str) -> Condition {
    Condition::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// The canonical text of `text`, which must parse.
fn canonical(text: &str) -> String {
    parse(text).to_string()
}

/// A device twin with a bit of everything.
fn device_twin() -> Value {
    json!({
        "deviceId": "dev1",
        "etag": "AAAAAAAAAAc=",
        "status": "enabled",
        "$version": 7,
        "capabilities": {"iotEdge": true},
        "tags": {
            "environment": "prod",
            "location": "westus",
            "building": 9,
            "floor": 2.5,
            "ring": "b",
            "enabled": true,
            "owner": null,
            "name": "Sensor-01",
            "my key": "spaced",
            "it's": "quoted",
            "a.b": "dotted",
            "nested": {"a": {"b": [1, 2, {"c": 3}]}},
            "same": {"a": {"b": [1.0, 2, {"c": 3.0}]}},
            "empty": {},
            "list": [1, "two", null]
        },
        "properties": {
            "desired": {"interval": 30, "$version": 4},
            "reported": {
                "lastDesiredStatus": {"code": 200, "description": "ok"},
                "firmware": "1.2.3",
                "$version": 12
            }
        }
    })
}

/// A module twin.
fn module_twin() -> Value {
    json!({
        "deviceId": "edge1",
        "moduleId": "filter",
        "status": "enabled",
        "$version": 3,
        "tags": {},
        "properties": {"desired": {}, "reported": {"ready": true}}
    })
}

/// Evaluates every `(condition, expected)` against `twin`, reporting all mismatches.
fn check(twin: &Value, cases: &[(&str, Truth)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|&(text, expected)| {
            let condition = parse(text);
            let got = condition.evaluate(twin);
            assert_eq!(condition.matches(twin), got == Truth::True, "{text}");
            (got != expected).then(|| format!("{text:?}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
