//! Route language tests. Condition tables follow edgeHub's own test data (Azure/iotedge
//! `Routing.Core.Test/query`), so that results here are results there.

#![allow(clippy::unwrap_used)]

mod body;
mod conditions;
mod functions;
mod robustness;
mod syntax;

use super::*;

/// A condition's result as edgeHub's `Bool` reports it: true, false (also for `null`) or
/// undefined (also for a number or string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    T,
    F,
    U,
}

fn outcome(value: &Value<'_>) -> Outcome {
    match value {
        Value::Bool(true) => Outcome::T,
        Value::Bool(false) | Value::Null => Outcome::F,
        _ => Outcome::U,
    }
}

/// `FROM /* WHERE {condition} INTO $upstream`, which must parse.
fn route(condition: &str) -> Route {
    Route::parse("test", &format!("FROM /* WHERE {condition} INTO $upstream")).unwrap_or_else(|e| panic!("{e}"))
}

/// Evaluates every `(condition, expected)` against `message`, reporting all mismatches.
fn check(message: &RouteMessage, cases: &[(&str, Outcome)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|&(condition, expected)| {
            let got = outcome(&route(condition).evaluate(message));
            (got != expected).then(|| format!("{condition:?}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Asserts every condition is refused when parsed.
fn refused(conditions: &[&str]) {
    let accepted: Vec<&str> = conditions
        .iter()
        .copied()
        .filter(|c| Route::parse("test", &format!("FROM /* WHERE {c} INTO $upstream")).is_ok())
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:#?}");
}

/// The problem `text` is refused for.
fn problem(text: &str) -> Problem {
    Route::parse("test", text).unwrap_err().problem
}

fn telemetry(device: &str) -> RouteMessage {
    RouteMessage::new(MessageSource::Telemetry { device: device.into() })
}

fn from_module(module: &str, output: Option<&str>) -> RouteMessage {
    let mut message = RouteMessage::new(MessageSource::Module {
        device: "edge1".into(),
        module: module.into(),
        output: output.map(Into::into),
    });
    message.system.insert(system::CONNECTION_DEVICE_ID.into(), "edge1".into());
    message.system.insert(system::CONNECTION_MODULE_ID.into(), module.into());
    message
}

fn with(mut message: RouteMessage, properties: &[(&str, &str)], system_properties: &[(&str, &str)]) -> RouteMessage {
    message.properties.extend(properties.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())));
    message.system.extend(system_properties.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())));
    message
}

/// The message of edgeHub's condition tests.
fn azure_message() -> RouteMessage {
    with(
        telemetry("device1"),
        &[("key1", "value1"), ("key2", "3"), ("key3", "VALUE3"), ("$sys4", "value4")],
        &[("sys1", "sysvalue1"), ("sys2", "4"), ("sys3", "SYSVALUE3"), ("sys4", "sysvalue4")],
    )
}
