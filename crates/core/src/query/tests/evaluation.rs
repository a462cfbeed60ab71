//! Three-valued evaluation against twins: undefined properties, types that do not mix,
//! Kleene logic, lists and functions.

use super::Truth::{False as F, True as T, Undefined as U};
use super::*;

#[test]
fn the_documented_examples_select_what_they_say() {
    let twin = device_twin();
    check(
        &twin,
        &[
            ("tags.environment='prod' AND tags.location='westus'", T),
            ("tags.environment='prod' AND tags.location='eastus'", F),
            ("deviceId='dev1'", T),
            ("deviceId='dev2'", F),
            ("tags.building=9 and tags.environment='test'", F),
            ("tags.building=9 and tags.environment='prod'", T),
            ("properties.reported.lastDesiredStatus.code = 200", T),
            ("NOT (tags.x = 'y') OR tags.ring IN ['a', 'b']", T),
            ("NOT (tags.x = 'y') OR tags.ring IN ['c']", U),
            ("NOT (tags.environment = 'test') OR tags.ring IN ['c']", T),
        ],
    );
}

#[test]
fn star_matches_every_twin() {
    let everything = parse("*");
    for twin in [device_twin(), module_twin(), json!({}), json!(null), json!([1, 2])] {
        assert!(everything.matches(&twin));
    }
}

#[test]
fn a_missing_property_is_undefined_in_every_comparison() {
    check(
        &device_twin(),
        &[
            ("tags.missing = 1", U),
            ("tags.missing != 1", U),
            ("tags.missing < 1", U),
            ("tags.missing = null", U),
            ("tags.missing = tags.missing", U),
            ("1 = tags.missing", U),
            ("tags.missing.deeper = 1", U),
            // Stepping into a value that is not an object.
            ("tags.building.x = 1", U),
            ("tags.list.x = 1", U),
            ("tags.name.x = 'S'", U),
            ("moduleId = 'm'", U),
            ("properties.desired.interval.x = 30", U),
        ],
    );
    check(&json!({"deviceId": "d"}), &[("tags.a = 1", U), ("properties.reported.a = 1", U), ("$version = 1", U)]);
    check(&json!({"properties": 5, "tags": []}), &[("properties.desired.a = 1", U), ("tags.a = 1", U)]);
    check(&json!("not an object"), &[("deviceId = 'd'", U), ("NOT IS_DEFINED(tags)", T)]);
}

#[test]
fn not_and_or_follow_kleene() {
    let (t, f, u) = ("deviceId = 'dev1'", "deviceId = 'other'", "tags.missing = 1");
    let mut cases = Vec::new();
    for (a, va) in [(t, T), (f, F), (u, U)] {
        cases.push((
            format!("NOT {a}"),
            match va {
                T => F,
                F => T,
                U => U,
            },
        ));
        for (b, vb) in [(t, T), (f, F), (u, U)] {
            let and = match (va, vb) {
                (F, _) | (_, F) => F,
                (U, _) | (_, U) => U,
                _ => T,
            };
            let or = match (va, vb) {
                (T, _) | (_, T) => T,
                (U, _) | (_, U) => U,
                _ => F,
            };
            cases.push((format!("{a} AND {b}"), and));
            cases.push((format!("{a} OR {b}"), or));
        }
    }
    let cases: Vec<(&str, Truth)> = cases.iter().map(|(text, truth)| (text.as_str(), *truth)).collect();
    check(&device_twin(), &cases);
    check(
        &device_twin(),
        &[
            ("NOT NOT tags.missing = 1", U),
            ("NOT NOT deviceId = 'dev1'", T),
            ("tags.missing = 1 OR tags.missing = 2 OR deviceId = 'dev1'", T),
            ("tags.missing = 1 AND tags.missing = 2 AND deviceId = 'other'", F),
            ("(tags.missing = 1 OR deviceId = 'other') AND deviceId = 'dev1'", U),
        ],
    );
}

#[test]
fn values_of_different_types_do_not_compare() {
    check(
        &device_twin(),
        &[
            ("tags.building = '9'", U),
            ("tags.building != '9'", U),
            ("tags.building = 9", T),
            ("tags.enabled = 'true'", U),
            ("tags.enabled = 1", U),
            ("tags.enabled != 1", U),
            ("tags.owner = 0", U),
            ("tags.owner = ''", U),
            ("tags.owner = false", U),
            ("tags.name < 10", U),
            ("tags.nested = tags.list", U),
            ("tags.nested = 'x'", U),
            ("tags.list = 1", U),
            ("'1' = 1", U),
            ("null = false", U),
        ],
    );
}

#[test]
fn numbers_compare_by_value() {
    check(
        &device_twin(),
        &[
            ("tags.building = 9.0", T),
            ("tags.building = 9e0", T),
            ("9 = 9.0", T),
            ("tags.building != 9.0", F),
            ("tags.building < 10", T),
            ("tags.building <= 9", T),
            ("tags.building > 9", F),
            ("tags.building >= 9.5", F),
            ("tags.floor > 2", T),
            ("tags.floor = 2.5", T),
            ("tags.floor < 2.50001", T),
            ("-1 < 0", T),
            ("-0 = 0.0", T),
            ("$version = 7", T),
            ("$version > properties.desired.$version", T),
            ("properties.reported.$version = 12", T),
            ("18446744073709551615 > 9223372036854775807", T),
            ("9007199254740993 > 9007199254740992.0", T),
            ("1e300 > 18446744073709551615", T),
        ],
    );
}

#[test]
fn strings_compare_case_sensitively_by_code_point() {
    check(
        &device_twin(),
        &[
            ("tags.name = 'Sensor-01'", T),
            ("tags.name = 'sensor-01'", F),
            ("tags.name != 'sensor-01'", T),
            ("'a' < 'b'", T),
            ("'B' < 'a'", T),
            ("'a' < 'ab'", T),
            ("'' < 'a'", T),
            ("'é' > 'z'", T),
            ("'😀' > 'ｚ'", T),
            ("tags.location >= 'west'", T),
            ("tags.location <= 'west'", F),
            ("status = 'enabled'", T),
            ("\"it's\" = 'it''s'", T),
        ],
    );
}

#[test]
fn booleans_and_null_compare_for_equality_only() {
    check(
        &device_twin(),
        &[
            ("tags.enabled = true", T),
            ("tags.enabled = TRUE", T),
            ("tags.enabled != false", T),
            ("tags.enabled = false", F),
            ("capabilities.iotEdge = true", T),
            ("true < false", U),
            ("tags.enabled >= true", U),
            ("tags.owner = null", T),
            ("tags.owner != null", F),
            ("null = null", T),
            ("null <= null", U),
        ],
    );
}

#[test]
fn objects_and_arrays_compare_deeply_for_equality_only() {
    check(
        &device_twin(),
        &[
            ("tags.nested = tags.nested", T),
            ("tags.nested = tags.same", T),
            ("tags.nested != tags.same", F),
            ("tags.nested = tags.empty", F),
            ("tags.nested != tags.empty", T),
            ("tags.nested.a.b = tags.same.a.b", T),
            ("tags.nested.a.b = tags.list", F),
            ("tags.list = tags.list", T),
            ("tags.nested < tags.same", U),
            ("tags.list >= tags.list", U),
            ("properties.desired = properties.desired", T),
            ("properties.desired = properties.reported", F),
        ],
    );
}

#[test]
fn in_is_equality_with_any_item() {
    check(
        &device_twin(),
        &[
            ("tags.ring IN ['a', 'b']", T),
            ("tags.ring IN ['c']", F),
            ("tags.ring IN ['B']", F),
            ("tags.ring NIN ['c']", T),
            ("tags.ring NIN ['a', 'b']", F),
            ("tags.ring IN []", F),
            ("tags.ring NIN []", T),
            ("tags.missing IN ['a']", U),
            ("tags.missing NIN ['a']", U),
            ("tags.missing IN []", U),
            ("tags.building IN ['9', 9]", T),
            ("tags.building IN [9.0]", T),
            ("tags.building IN ['9']", U),
            ("tags.building NIN ['9']", U),
            ("tags.building IN ['9', 10]", U),
            ("tags.building IN [8, 10]", F),
            ("tags.owner IN [null]", T),
            ("tags.enabled IN [false, true]", T),
            ("tags.nested IN ['a']", U),
            ("'b' IN ['a', 'b']", T),
            ("deviceId IN ['dev1', 'dev2'] AND tags.environment NIN ['test', 'dev']", T),
        ],
    );
}

#[test]
fn type_tests_are_always_true_or_false() {
    check(
        &device_twin(),
        &[
            ("IS_DEFINED(tags.owner)", T),
            ("IS_DEFINED(tags.missing)", F),
            ("NOT IS_DEFINED(tags.missing)", T),
            ("IS_DEFINED(tags)", T),
            ("IS_DEFINED(moduleId)", F),
            ("IS_DEFINED(tags['my key'])", T),
            ("IS_DEFINED(tags.a.b)", F),
            ("IS_DEFINED(tags['a.b'])", T),
            ("IS_NULL(tags.owner)", T),
            ("IS_NULL(tags.missing)", F),
            ("IS_NULL(tags.building)", F),
            ("IS_NULL(null)", T),
            ("IS_BOOL(tags.enabled)", T),
            ("IS_BOOL(capabilities.iotEdge)", T),
            ("IS_BOOL('true')", F),
            ("IS_NUMBER(tags.floor)", T),
            ("IS_NUMBER($version)", T),
            ("IS_NUMBER('9')", F),
            ("IS_NUMBER(tags.missing)", F),
            ("IS_STRING(deviceId)", T),
            ("IS_STRING(tags.building)", F),
            ("IS_OBJECT(tags.nested)", T),
            ("IS_OBJECT(tags)", T),
            ("IS_OBJECT(tags.list)", F),
            ("IS_ARRAY(tags.list)", T),
            ("IS_ARRAY(tags.nested['a'].b)", T),
            ("IS_ARRAY(tags.nested)", F),
            ("IS_ARRAY(tags.missing)", F),
        ],
    );
}

#[test]
fn string_tests_are_undefined_unless_both_arguments_are_strings() {
    check(
        &device_twin(),
        &[
            ("STARTSWITH(tags.name, 'Sensor')", T),
            ("STARTS_WITH(tags.name, 'sensor')", F),
            ("startswith(tags.name, '')", T),
            ("ENDSWITH(tags.name, '-01')", T),
            ("ENDS_WITH(tags.name, '01x')", F),
            ("CONTAINS(tags.location, 'st')", T),
            ("CONTAINS(tags.location, 'ST')", F),
            ("CONTAINS('abc', tags.ring)", T),
            ("CONTAINS(tags.building, '9')", U),
            ("CONTAINS('9', 9)", U),
            ("STARTSWITH(tags.missing, 'a')", U),
            ("NOT STARTSWITH(tags.missing, 'a')", U),
            ("STARTSWITH(tags.list, 'a')", U),
            ("ENDSWITH(tags.owner, 'a')", U),
            ("STARTSWITH(properties.reported.firmware, '1.') AND NOT ENDSWITH(deviceId, '2')", T),
        ],
    );
}

#[test]
fn member_names_read_any_key() {
    check(
        &device_twin(),
        &[
            ("tags['my key'] = 'spaced'", T),
            ("tags[\"it's\"] = 'quoted'", T),
            ("tags['it''s'] = 'quoted'", T),
            ("tags['it\\'s'] = 'quoted'", T),
            ("tags['a.b'] = 'dotted'", T),
            ("tags.nested.a['b'] = tags.same['a'].b", T),
            ("properties.desired['$version'] = 4", T),
            ("tags.Environment = 'prod'", U),
        ],
    );
}

#[test]
fn module_twins_have_a_module_id() {
    check(
        &module_twin(),
        &[
            ("moduleId = 'filter'", T),
            ("deviceId = 'edge1' AND moduleId = 'filter'", T),
            ("IS_DEFINED(moduleId)", T),
            ("properties.reported.ready = true", T),
            ("tags.environment = 'prod'", U),
        ],
    );
    check(&device_twin(), &[("IS_DEFINED(moduleId)", F), ("moduleId = 'filter'", U)]);
}

#[test]
fn literal_only_conditions_ignore_the_twin() {
    for twin in [device_twin(), json!(null)] {
        check(&twin, &[("1 = 1", T), ("'prod' = 'prod'", T), ("1 = 2", F), ("1 = '1'", U)]);
    }
}
