//! Conditions that are refused, each with the exact message and place.

use super::*;

/// The message `text` is refused with.
fn error(text: &str) -> String {
    match Condition::parse(text) {
        Ok(condition) => panic!("{text:?} parsed as {condition}"),
        Err(e) => e.to_string(),
    }
}

const ROOTS: &str = "conditions read deviceId, moduleId, tags.*, properties.desired.*, properties.reported.*, \
                     $version, status or capabilities.iotEdge";

const FUNCTIONS: &str = "functions are IS_DEFINED, IS_NULL, IS_BOOL, IS_NUMBER, IS_STRING, IS_OBJECT, IS_ARRAY, \
                         STARTSWITH, ENDSWITH and CONTAINS";

const PREDICATE: &str = "a comparison such as tags.environment = 'prod', a function, NOT or '('";

#[test]
fn bad_conditions_say_what_was_expected_where() {
    let cases: Vec<(&str, String)> = vec![
        ("", "at 1:1: empty target condition; use '*' for every device".into()),
        (" \n\t ", "at 1:1: empty target condition; use '*' for every device".into()),
        ("tags.environment foo", r#"at 1:18: expected a comparison operator, found "foo""#.into()),
        ("tags.environment", "at 1:17: expected a comparison operator, found end of condition".into()),
        ("tags.x ! 1", r#"at 1:8: expected a comparison operator, found "!""#.into()),
        ("tag.x = 1", format!(r#"at 1:1: unknown property root "tag"; {ROOTS}"#)),
        ("tags.x = 1 AND deviceid = 'd'", format!(r#"at 1:16: unknown property root "deviceid"; {ROOTS}"#)),
        ("properties.foo = 1", format!(r#"at 1:1: unknown property root "properties.foo"; {ROOTS}"#)),
        ("properties = 1", format!(r#"at 1:1: unknown property root "properties"; {ROOTS}"#)),
        ("tags.x = tagz.y", format!(r#"at 1:10: unknown property root "tagz"; {ROOTS}"#)),
        ("deviceId.x = 1", "at 1:9: deviceId has no members".into()),
        ("capabilities.iotEdge['a'] = 1", "at 1:21: capabilities.iotEdge has no members".into()),
        ("tags.x = 'abc", "at 1:10: unterminated string".into()),
        ("tags.x = \"abc'", "at 1:10: unterminated string".into()),
        ("tags.x = 'a\\nb'", r#"at 1:12: invalid escape \n in string; use \' \" \\ or, in single quotes, ''"#.into()),
        ("tags.x = 1e999", r#"at 1:10: number "1e999" is out of range"#.into()),
        ("tags.x IN 'a'", r#"at 1:11: IN expects a list like ['a', 'b'], found "'a'""#.into()),
        ("tags.x nin ('a')", r#"at 1:12: NIN expects a list like ['a', 'b'], found "(""#.into()),
        ("tags.x IN", "at 1:10: IN expects a list like ['a', 'b'], found end of condition".into()),
        ("tags.x IN ['a' 'b']", r#"at 1:16: expected ',' or ']', found "'b'""#.into()),
        (
            "tags.x IN [tags.y]",
            r#"at 1:12: expected a literal (a string, number, true, false or null), found "tags""#.into(),
        ),
        (
            "tags.x IN ['a',]",
            r#"at 1:16: expected a literal (a string, number, true, false or null), found "]""#.into(),
        ),
        ("lower(tags.x) = 'a'", format!(r#"at 1:1: unknown function "lower"; {FUNCTIONS}"#)),
        (
            "STARTSWITH(tags.x)",
            "at 1:1: wrong number of arguments to STARTSWITH; use STARTSWITH(value, 'prefix')".into(),
        ),
        ("is_null()", "at 1:1: wrong number of arguments to IS_NULL; use IS_NULL(value)".into()),
        (
            "contains(tags.a, 'b', 'c')",
            "at 1:1: wrong number of arguments to CONTAINS; use CONTAINS(value, 'part')".into(),
        ),
        ("IS_DEFINED('x')", r#"at 1:12: expected a property path (IS_DEFINED reads a property), found "'x'""#.into()),
        ("IS_DEFINED(tags.a = 1)", r#"at 1:19: expected ',' or ')', found "=""#.into()),
        ("IS_DEFINED(tags.a) = true", r#"at 1:20: expected AND, OR or end of condition, found "=""#.into()),
        ("tags.x = 1 tags.y = 2", r#"at 1:12: expected AND, OR or end of condition, found "tags""#.into()),
        ("tags.x = 1 @", r#"at 1:12: expected AND, OR or end of condition, found "@""#.into()),
        ("tags.x = 1 = 2", r#"at 1:12: expected AND, OR or end of condition, found "=""#.into()),
        ("(tags.x = 1", "at 1:12: expected AND, OR or ')', found end of condition".into()),
        ("tags.x = 1)", r#"at 1:11: expected AND, OR or end of condition, found ")""#.into()),
        ("tags.x = 1 AND", format!("at 1:15: expected {PREDICATE}, found end of condition")),
        ("NOT", format!("at 1:4: expected {PREDICATE}, found end of condition")),
        ("()", format!(r#"at 1:2: expected {PREDICATE}, found ")""#)),
        ("AND tags.x = 1", format!(r#"at 1:1: expected {PREDICATE}, found "AND""#)),
        ("tags.x == 1", r#"at 1:9: expected a property path or a literal, found "=""#.into()),
        ("tags.x = (1)", r#"at 1:10: expected a property path or a literal, found "(""#.into()),
        ("* AND tags.x = 1", "at 1:1: '*' means every device and must be the whole condition".into()),
        ("tags.x = *", "at 1:10: '*' means every device and must be the whole condition".into()),
        ("tags. = 1", r#"at 1:7: expected a property name after '.' (write ['…'] for other names), found "=""#.into()),
        (
            "tags.1x = 1",
            r#"at 1:6: expected a property name after '.' (write ['…'] for other names), found "1""#.into(),
        ),
        ("tags.é = 1", r#"at 1:6: expected a property name after '.' (write ['…'] for other names), found "é""#.into()),
        ("tags[a] = 1", r#"at 1:6: expected a quoted property name after '[', found "a""#.into()),
        ("tags['a' = 1", r#"at 1:10: expected ']', found "=""#.into()),
        (
            "'é' = tags.é",
            r#"at 1:12: expected a property name after '.' (write ['…'] for other names), found "é""#.into(),
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let got = error(text);
            (&got != expected).then(|| format!("{text:?}:\n  expected {expected}\n  got      {got}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn positions_count_bytes_lines_and_characters() {
    let err = Condition::parse("tags.x = 1\n  AND tags.y = 'open").unwrap_err();
    assert_eq!(err.position, Position { offset: 26, line: 2, column: 16 });
    assert_eq!(err.problem, Problem::UnterminatedString);

    let err = Condition::parse("tags.a = 'é' AND\n  tagz.b = 1").unwrap_err();
    assert_eq!(err.position, Position { offset: 20, line: 2, column: 3 });
    assert_eq!(err.problem, Problem::UnknownRoot { root: "tagz".into() });

    let err = Condition::parse("tags.a = 'éé' tags").unwrap_err();
    assert_eq!(err.position, Position { offset: 16, line: 1, column: 15 });
    assert_eq!(err.problem, Problem::Unexpected { expected: "AND, OR or end of condition", found: "\"tags\"".into() });
}

#[test]
fn long_found_text_is_shortened() {
    let name = "x".repeat(60);
    let err = Condition::parse(&format!("tags.a = 1 {name}")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("at 1:12: expected AND, OR or end of condition, found \"{}\"…", "x".repeat(40))
    );
}
