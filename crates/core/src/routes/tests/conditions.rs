//! Operators, precedence, three-valued logic, properties and static types.

use super::Outcome::{F, T, U};
use super::*;

#[test]
fn literals_alone_are_not_true() {
    check(
        &azure_message(),
        &[
            ("true", T),
            ("false", F),
            ("3", U),
            ("0x10", U),
            ("'a string'", U),
            ("\"a string\"", U),
            ("null", F),
            ("undefined", U),
            ("e5", U),
        ],
    );
}

#[test]
fn literals_are_read_in_every_form() {
    check(
        &azure_message(),
        &[
            ("0x1F = 31", T),
            ("0X1f = 31", T),
            ("0xFFFFFFFFFFFFFFFF = -1", T),
            ("is_defined(0x10000000000000000)", F),
            ("1.5 = 3 / 2", T),
            (".5 = 0.5", T),
            ("1e3 = 1000", T),
            ("2.5E-1 = 0.25", T),
            ("-.5 = 0 - 0.5", T),
            ("'it\\'s' = \"it's\"", T),
            ("'\\u00e9' = 'é'", T),
            ("'a\\\\b' = concat('a', '\\\\', 'b')", T),
            ("'tab\\there' = concat('tab', '\\t', 'here')", T),
        ],
    );
}

#[test]
fn equality_compares_values_of_one_type() {
    check(
        &azure_message(),
        &[
            ("3 = 3", T),
            ("3 = 4", F),
            ("'3' = '3'", T),
            ("\"3\" = '4'", F),
            ("true = true", T),
            ("true = false", F),
            ("3 != 3", F),
            ("3 != 4", T),
            ("3 <> 3", F),
            ("'3' <> '4'", T),
            ("false <> true", T),
            ("key2 = '3'", T),
            ("key2 != '3'", F),
            ("key2 <> \"3\"", F),
            ("none = 'value1'", U),
            ("none != '4'", U),
            ("none <> '4'", U),
            ("null = null", T),
            ("null != null", F),
            ("undefined = undefined", U),
        ],
    );
}

#[test]
fn ordering_compares_numbers_strings_and_bools() {
    check(
        &azure_message(),
        &[
            ("4 < 7", T),
            ("7 < 7", F),
            ("7 <= 7", T),
            ("8 <= 7", F),
            ("8 > 7", T),
            ("7 > 7", F),
            ("7 >= 7", T),
            ("4 >= 7", F),
            ("'a' < 'b'", T),
            ("'a' < 'a'", F),
            ("'a' <= 'a'", T),
            ("'b' > 'a'", T),
            ("'b' >= 'a'", T),
            ("'B' < 'a'", T),
            ("false < true", T),
            ("null < null", F),
            ("null <= null", T),
            ("'a' < none", U),
            ("3 < as_number(none)", U),
            ("undefined < undefined", U),
        ],
    );
}

#[test]
fn arithmetic_and_concatenation_compute() {
    check(
        &azure_message(),
        &[
            ("3 + 4 = 7", T),
            ("3 - 4 = -1", T),
            ("3 * 4 = 12", T),
            ("3 / 4 = 0.75", T),
            ("4 % 3 = 1", T),
            ("-7 % 3 = -1", T),
            ("(3 + as_number(key2)) = 6", T),
            ("(3 % as_number(key2)) = 0", T),
            ("is_defined(3 + as_number(none))", F),
            ("is_defined(3 * as_number(key1))", F),
            ("-1 < 0", T),
            ("-(3 + 4) = -7", T),
            ("- 3 = 0 - 3", T),
            ("- - 3 = 3", T),
            ("'a' || 'b' = 'ab'", T),
            ("'a' || key1 || 'd' = 'avalue1d'", T),
            ("is_defined('a' || none || 'd')", F),
        ],
    );
}

#[test]
fn division_by_zero_is_infinite_and_remainder_by_zero_undefined_as_in_dotnet() {
    check(
        &azure_message(),
        &[
            ("3 / 0 = 1 / 0", T),
            ("-3 / 0 < 0", T),
            ("is_defined(3 / 0)", T),
            ("is_number(3 / 0)", F),
            ("is_defined(0 / 0)", F),
            ("is_defined(3 % 0)", F),
            ("3 % 0 = 3 % 0", U),
            ("(3 % 0 ?? 12.34) = 12.34", T),
            ("3 / 0 - 3 / 0 = 0", U),
        ],
    );
}

#[test]
fn and_or_not_are_three_valued() {
    check(
        &azure_message(),
        &[
            ("not true", F),
            ("NOT false", T),
            ("not (true and false)", T),
            ("true AND true", T),
            ("true and false", F),
            ("false and true", F),
            ("true OR false", T),
            ("false or false", F),
            ("undefined or false", U),
            ("undefined or true", T),
            ("true or undefined", T),
            ("false or undefined", U),
            ("undefined or undefined", U),
            ("true and undefined", U),
            ("false and undefined", F),
            ("undefined and false", F),
            ("undefined and undefined", U),
            ("true or none = 'true'", T),
            ("false or none = 'true'", U),
            ("none = 'true' or true", T),
            ("none = 'true' or false", U),
            ("true and none = 'true'", U),
            ("false and none = 'true'", F),
            ("none = 'true' and false", F),
            ("not (none = 'true')", U),
            ("is_defined(undefined and true)", F),
        ],
    );
}

#[test]
fn null_follows_edge_hubs_null_type() {
    check(
        &azure_message(),
        &[
            ("null and null", F),
            ("(null and null) = null", T),
            ("(null and false) = null", T),
            ("(null and true) = null", T),
            ("null or true", T),
            ("null or false", F),
            ("(null or null) = null", T),
            ("not null", T),
            ("is_null(null and true)", T),
        ],
    );
}

#[test]
fn coalesce_takes_the_left_value_when_defined() {
    check(
        &azure_message(),
        &[
            ("undefined ?? undefined", U),
            ("(key1 ?? \"hello\") = \"value1\"", T),
            ("(none ?? \"hello\") = \"hello\"", T),
            ("(none ?? none ?? \"hello\") = \"hello\"", T),
            ("(as_number(key2) ?? 12.34) = 3", T),
            ("(as_number(key1) ?? 12.34) = 12.34", T),
            ("(none ?? none) = \"value\"", U),
            ("false ?? true", F),
        ],
    );
}

#[test]
fn precedence_runs_from_coalesce_to_multiplication_with_prefix_operators_tightest() {
    check(
        &azure_message(),
        &[
            ("2 + 3 * 4 = 14", T),
            ("(2 + 3) * 4 = 20", T),
            ("10 - 4 - 3 = 3", T),
            ("8 / 2 / 2 = 2", T),
            ("2 * 3 % 4 = 2", T),
            ("1 + 1 < 3", T),
            ("'a' || 'b' < 'b'", T),
            ("1 < 2 = 2 < 3", T),
            ("1 < 2 = true", T),
            ("'a' = 'a' AND true", T),
            ("true OR false AND false", T),
            ("(true OR false) AND false", F),
            ("false ?? true OR true", F),
            ("(false ?? true) OR true", T),
            ("- 2 + 3 = 1", T),
            ("NOT false AND false", F),
            ("NOT (false AND false)", T),
        ],
    );
    // `NOT` binds tighter than `=`: this reads `(NOT 'a') = 'b'`, a type error, as in edgeHub.
    assert!(matches!(problem("FROM /* WHERE NOT 'a' = 'b' INTO $upstream"), Problem::UnaryOperand { .. }));
    // `??` is loosest: `key1 ?? ('hello' = 'value1')` mixes a string and a bool.
    assert!(matches!(
        problem("FROM /* WHERE key1 ?? 'hello' = 'value1' INTO $upstream"),
        Problem::BinaryOperands { .. }
    ));
}

#[test]
fn identifiers_take_operator_characters_so_operators_need_spaces() {
    let message = with(azure_message(), &[("a-b", "hyphen"), ("1+2", "plus")], &[]);
    check(&message, &[("a-b = 'hyphen'", T), ("1+2 = 'plus'", T), ("as_number(key2) - 1 = 2", T)]);
    assert!(matches!(problem("FROM /* WHERE 3 -1 = 2 INTO $upstream"), Problem::Unexpected { .. }));
}

#[test]
fn properties_and_system_properties_resolve_as_in_edge_hub() {
    check(
        &azure_message(),
        &[
            ("key1 = \"value1\"", T),
            ("KEY1 = \"value1\"", T),
            ("key1 = \"value2\" or key1 = \"value1\"", T),
            ("$sys1 = \"sysvalue1\"", T),
            ("$SYS1 = \"sysvalue1\"", T),
            ("{$sys1} = \"sysvalue1\"", T),
            ("{ $sys1 } = \"sysvalue1\"", T),
            ("$sys2 = '4'", T),
            ("as_number($sys2) = 4", T),
            ("$sys4 = \"value4\"", T),
            ("{$sys4} = \"sysvalue4\"", T),
            ("is_defined($none)", F),
            ("is_defined(sys1)", F),
            ("is_defined(key1)", T),
            ("as_number(none) = 3", U),
        ],
    );
}

#[test]
fn connection_properties_tell_modules_from_leaf_devices() {
    let route = route("$connectionModuleId = 'sensor' AND $connectionDeviceId = 'edge1'");
    assert!(route.matches(&from_module("sensor", Some("out"))));
    assert!(!route.matches(&from_module("filter", Some("out"))));
    assert!(!route.matches(&telemetry("edge1")));
    let shadowed = with(from_module("filter", None), &[("$connectionModuleId", "sensor")], &[]);
    assert!(route.matches(&shadowed), "an application property named $connectionModuleId wins");
    assert!(!super::route("{$connectionModuleId} = 'sensor'").matches(&shadowed));
}

#[test]
fn operators_refuse_operands_of_other_types_when_parsed() {
    refused(&[
        "is_defined(3 + none)",
        "is_defined(true + 3)",
        "is_defined(3 + true)",
        "is_defined(3 + undefined)",
        "is_defined('a' + 'b')",
        "is_defined(undefined + undefined)",
        "is_defined(3 - none)",
        "is_defined(3 * none)",
        "is_defined(3 / null)",
        "is_defined(3 % 'a')",
        "is_defined(3 = none)",
        "is_defined(3 != none)",
        "is_defined(3 <> none)",
        "is_defined(3 > none)",
        "is_defined(3 >= none)",
        "is_defined(3 < none)",
        "is_defined(3 <= none.key1)",
        "temperature > 25",
        "'a' = true",
        "null = 'a'",
        "undefined = 3",
        "(key1 ?? 12.34)",
        "(12.34 ?? key1)",
        "(as_number(key2) ?? key1)",
        "(key1 ?? null)",
        "(key1 ?? true)",
        "(null && key1)",
        "(true && key1)",
        "'a' || null = 'a'",
        "'a' || undefined = 'a'",
        "'a' || true = 'a'",
        "'a' || 3 = 'a3'",
        "test == true",
        "none and true",
        "undefined and \"hello\"",
        "none or true",
        "3 or true",
        "- (key1)",
        "- true",
        "- null",
        "is_defined(not key1)",
        "not 3",
        "not undefined",
        "(1 < 2) < 3",
    ]);
}

#[test]
fn malformed_conditions_are_refused() {
    refused(&[
        "none = \"",
        "(2 + 22 )) = 24",
        "as_number(\"2\") = 24)",
        "(2 + 22 = 24",
        "as_number(\"2\" = 24",
        "3 $ 4",
        "$ sys1 = 'sysvalue1'",
        "a[0] = 1",
        "$sys[0] = 'a'",
        "{sys1} = 'a'",
        "{$sys1 = 'a'",
        "key1 = 'a' key2",
        "= 3",
        "3 =",
        "abs(3,)",
        "abs(,3)",
        "@",
        "true; false",
    ]);
}
