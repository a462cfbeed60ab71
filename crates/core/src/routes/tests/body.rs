//! `$body` queries, on the message of edgeHub's body-query tests.

use super::Outcome::{F, T, U};
use super::*;

const BODY: &str = r#"{
  "message": {
    "Weather": {
      "Temperature": 50,
      "FreezingTemperature": -50.4,
      "PreciseTemperature": 50.4,
      "Temperature_PropertyConflict": 50,
      "NullValue": null,
      "PrevTemperatures": [20, 30, 40],
      "IsEnabled": true,
      "IsDisabled": false,
      "Location": { "Street": "One Microsoft Way", "City": "Redmond", "State": "WA" },
      "HistoricalData": [
        { "Month": "Feb", "Temperature": 40 },
        { "Month": "Jan", "Temperature": 30 }
      ]
    }
  }
}"#;

fn weather() -> RouteMessage {
    let mut message = with(
        telemetry("device1"),
        &[
            ("City", "Redmond"),
            ("$State", "WA"),
            ("$body.message.Weather.Temperature_PropertyConflict", "100"),
            ("IntegerProperty", "110"),
        ],
        &[
            ("State", "CA"),
            ("$body.message.Weather.Location.State", "CA"),
            ("contentEncoding", "UTF-8"),
            ("contentType", "application/json"),
        ],
    );
    message.body = BODY.as_bytes().to_vec();
    message
}

#[test]
fn numbers_in_the_body_compare_and_compute() {
    check(
        &weather(),
        &[
            ("50 >= $body.message.Weather.Temperature", T),
            ("$BODY.message.Weather.Temperature >= 50", T),
            ("$bODy.message.Weather.Temperature <= 50", T),
            ("$body.message.Weather.Temperature = 50", T),
            ("$body.message.Weather.Temperature != 60", T),
            ("$body.message.Weather.Temperature = 40 + 10", T),
            ("$body.message.Weather.Temperature >= $body.message.Weather.PrevTemperatures[0]", T),
            (
                "$body.message.Weather.Temperature >= $body.message.Weather.PrevTemperatures[0] + $body.message.Weather.PrevTemperatures[1]",
                T,
            ),
            ("$body.message.Weather.PrevTemperatures[1] * $body.message.Weather.PrevTemperatures[2] = 1200", T),
            ("$body.message.Weather.PrevTemperatures[1] / $body.message.Weather.PrevTemperatures[0] = 1.5", T),
            (
                "$body.message.Weather.HistoricalData[0].Temperature - 10 = $body.message.Weather.HistoricalData[1].Temperature",
                T,
            ),
            ("$body.message.Weather.HistoricalData[0].Month = 'Feb'", T),
            ("10 >= $body.message.Weather.Temperature", F),
            ("$body.message.Weather.Temperature < 50", F),
            ("$body.message.Weather.Temperature = '50'", F),
            ("$body.message.Weather.Temperature = 60", F),
            ("- $body.message.Weather.Temperature = -50", T),
        ],
    );
}

#[test]
fn strings_and_bools_in_the_body() {
    check(
        &weather(),
        &[
            ("$body.message.Weather.Temperature <> '100'", T),
            ("$body.message.Weather.Location.City = City", T),
            ("$body.message.Weather.Location.State = $State", T),
            ("$body.message.Weather.Location.State <> $body.message.Weather.Location.City", T),
            ("$body.message.Weather.Location.City != City", F),
            ("$body.message.Weather.Location.State = City", F),
            ("$body.message.Weather.Location.State || '!' = 'WA!'", T),
            ("$body.message.Weather.IsEnabled", T),
            ("$body.message.Weather.IsEnabled = true", T),
            ("$body.message.Weather.IsDisabled = false", T),
            ("$body.message.Weather.IsDisabled <> true", T),
            ("NOT $body.message.Weather.IsDisabled", T),
            ("$body.message.Weather.IsEnabled AND $body.message.Weather.IsEnabled", T),
            ("$body.message.Weather.IsEnabled OR $body.message.Weather.IsDisabled", T),
            ("$body.message.Weather.IsDisabled OR NOT($body.message.Weather.IsDisabled)", T),
            ("$body.message.Weather.IsDisabled AND true", F),
            ("$body.message.Weather.Location.City < $body.message.Weather.Temperature", U),
        ],
    );
}

#[test]
fn missing_members_are_null_and_objects_undefined() {
    check(
        &weather(),
        &[
            ("$body.message.Weather.NullValue = null", T),
            ("$body.message.Temperature = null", T),
            ("$body.message.Weather.Temperature != null", T),
            ("$body.message.Weather.Location.State <> null", T),
            ("$body.message.Weather.InvalidProperty = null", T),
            ("NOT ($body.message.Weather.InvalidProperty != null)", T),
            ("$body.message.Weather.InvalidKey <> '100'", T),
            ("$body.message.Weather.PrevTemperatures[7] = null", T),
            ("is_null($body.message.Weather.NullValue)", T),
            ("is_null($body.message.Weather.Missing)", T),
            ("is_null($body.message.Weather.Location.State)", F),
            ("$body", U),
            ("$body.message.Weather <> null", U),
            ("is_defined($body.message.Weather)", F),
            ("is_defined($body.message.Weather.PrevTemperatures)", F),
            ("$body.message.Weather.HistoricalData[0].Temperature.InvalidKey", U),
            ("is_defined($body.message.Weather.Temperature[0])", F),
            ("$City <> $body.message.Weather.InvalidKey", U),
            ("NOT $body.message.Weather.NullValue", U),
            ("$body.message.Weather.NullValue AND true", U),
        ],
    );
}

#[test]
fn application_properties_shadow_queries_unless_braced() {
    check(
        &weather(),
        &[
            ("$body.message.Weather.Temperature_PropertyConflict = '100'", T),
            ("as_number($body.message.Weather.Temperature_PropertyConflict) = 100", T),
            ("{$body.message.Weather.Temperature_PropertyConflict} <> 100", T),
            ("{$body.message.Weather.Temperature_PropertyConflict} = 50", T),
            ("$body.message.Weather.Location.State = 'WA'", T),
            ("{$body.message.Weather.Location.State} <> 'CA'", T),
        ],
    );
}

#[test]
fn functions_take_body_values() {
    check(
        &weather(),
        &[
            ("abs($body.message.Weather.FreezingTemperature) = 50.4", T),
            ("ceiling(as_number($body.message.Weather.PreciseTemperature)) = 51", T),
            (
                "concat($body.message.Weather.Location.Street, ', ', $body.message.Weather.Location.City, ', ', $body.message.Weather.Location.State) = 'One Microsoft Way, Redmond, WA'",
                T,
            ),
            ("contains($body.message.Weather.Location.Street, 'Microsoft')", T),
            ("ends_with($body.message.Weather.Location.Street, 'Way')", T),
            ("exp(($body.message.Weather.Temperature - 49)) < ($body.message.Weather.Temperature - 47)", T),
            ("index_of($body.message.Weather.Location.Street, 'Way') > 6", T),
            ("is_defined($body.message.Weather.Location.Street)", T),
            ("is_string($body.message.Weather.Location.Street)", T),
            ("is_number($body.message.Weather.Temperature)", T),
            ("is_bool($body.message.Weather.IsEnabled)", T),
            ("length($body.message.Weather.Location.State) = 2", T),
            ("lower($body.message.Weather.Location.State) = 'wa'", T),
            ("power($body.message.Weather.Temperature, 2) = 2500.0", T),
            (
                "power($body.message.Weather.Temperature, length($body.message.Weather.Location.State)) = square($body.message.Weather.Temperature)",
                T,
            ),
            ("sign($body.message.Weather.FreezingTemperature) = -1", T),
            ("starts_with($body.message.Weather.Location.Street, 'One')", T),
            (
                "substring($body.message.Weather.Location.Street, length($body.message.Weather.Location.Street) - 3) = 'Way'",
                T,
            ),
            ("substring($body.message.Weather.Location.Street, 4, length('Microsoft')) = 'Microsoft'", T),
            ("upper($body.message.Weather.Location.Street) = 'ONE MICROSOFT WAY'", T),
            ("length($body.message.Weather.Temperature) = 2", U),
            ("abs($body.message.Weather.Location.State) = 2", U),
        ],
    );
}

#[test]
fn bodies_are_queried_only_when_json_in_a_unicode_encoding() {
    let queried = route("$body.message.Weather.Temperature = 50");
    assert!(queried.matches(&weather()));
    let mut other = weather();
    other.system.insert("contentType".into(), "text/plain".into());
    assert_eq!(queried.evaluate(&other), Value::Undefined);
    let mut other = weather();
    other.system.insert("contentEncoding".into(), "ascii".into());
    assert_eq!(queried.evaluate(&other), Value::Undefined);
    let mut other = weather();
    other.system.remove("contentEncoding");
    assert_eq!(queried.evaluate(&other), Value::Undefined);
    let mut other = weather();
    other.body = b"{\"message\": ".to_vec();
    assert_eq!(queried.evaluate(&other), Value::Undefined);
    let mut utf16 = weather();
    utf16.system.insert("contentEncoding".into(), "utf-16".into());
    utf16.body = BODY.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert!(queried.matches(&utf16));
}

#[test]
fn malformed_queries_are_refused() {
    refused(&[
        "$body.properties[]",
        "$body.properties[1:2]",
        "$body;@",
        "$body.a..b = 1",
        "$body.[0] = 1",
        "$body.a[0][1] = 1",
    ]);
    assert_eq!(
        problem("FROM /* WHERE $body.a[x] = 1 INTO $upstream"),
        Problem::BodyQuery { query: "a[x]".into(), reason: "an index is `[digits]` at the end of a step" }
    );
    refused(&["$body.a + 'x' = 'y'", "$body.a = undefined", "undefined ?? $body.a", "$body.a || 3 = 'a'"]);
}
