//! Limits that keep bad input harmless, and property tests: no text makes parsing panic,
//! canonical text parses back to the same tree, and no twin makes evaluation panic.

use proptest::prelude::*;
use serde_json::{Map, Number};

use super::super::ast::{CompareOp, Expr, Function, Operand, Path, Root};
use super::*;

#[test]
fn conditions_up_to_8_kib_are_read_and_longer_ones_refused() {
    let at_limit = format!("tags.a = '{}'", "x".repeat(MAX_TEXT - 11));
    assert_eq!(at_limit.len(), MAX_TEXT);
    assert!(Condition::parse(&at_limit).is_ok());
    let over = format!("{at_limit} ");
    let err = Condition::parse(&over).unwrap_err();
    assert_eq!(err.to_string(), "at 1:1: the condition is 8193 bytes long; at most 8192 are allowed");
    let huge = "(".repeat(10_000_000);
    assert_eq!(Condition::parse(&huge).unwrap_err().problem, Problem::TooLong { length: 10_000_000 });
}

#[test]
fn nesting_past_64_is_refused_not_a_stack_overflow() {
    let nested = |depth: usize| format!("{}tags.a = 1{}", "(".repeat(depth), ")".repeat(depth));
    assert!(parse(&nested(MAX_NESTING)).matches(&json!({"tags": {"a": 1}})));
    assert_eq!(
        Condition::parse(&nested(MAX_NESTING + 1)).unwrap_err().to_string(),
        "at 1:65: parentheses and NOT nest more than 64 deep"
    );
    let nots = |depth: usize| format!("{}tags.a = 1", "NOT ".repeat(depth));
    assert!(parse(&nots(MAX_NESTING)).matches(&json!({"tags": {"a": 1}})));
    assert_eq!(
        Condition::parse(&nots(MAX_NESTING + 1)).unwrap_err().to_string(),
        "at 1:257: parentheses and NOT nest more than 64 deep"
    );
    let mixed = format!("{}tags.a = 1{}", "NOT (".repeat(32), ")".repeat(32));
    assert!(Condition::parse(&mixed).is_ok());
    let mixed = format!("{}tags.a = 1{}", "NOT (".repeat(33), ")".repeat(33));
    assert_eq!(Condition::parse(&mixed).unwrap_err().problem, Problem::TooDeep);
    for deep in ["(".repeat(8000), "NOT ".repeat(2000), "NOT (".repeat(1600)] {
        assert_eq!(Condition::parse(&deep).unwrap_err().problem, Problem::TooDeep);
    }
}

#[test]
fn lists_past_1000_values_are_refused() {
    let list = |n: usize| format!("tags.a IN [{}]", vec!["1"; n].join(","));
    let condition = parse(&list(MAX_LIST));
    assert!(condition.matches(&json!({"tags": {"a": 1}})));
    assert_eq!(
        Condition::parse(&list(MAX_LIST + 1)).unwrap_err().to_string(),
        format!("at 1:{}: IN lists hold at most 1000 values", 12 + 2 * MAX_LIST)
    );
    let nin = format!("tags.a NIN [{}]", vec!["1"; MAX_LIST + 1].join(","));
    assert_eq!(Condition::parse(&nin).unwrap_err().problem, Problem::ListTooLong { keyword: "NIN" });
}

#[test]
fn long_flat_conditions_evaluate() {
    let ids: Vec<String> = (0..400).map(|i| format!("deviceId='d{i}'")).collect();
    let text = ids.join(" OR ");
    assert!(text.len() <= MAX_TEXT);
    let condition = parse(&text);
    assert!(condition.matches(&json!({"deviceId": "d399"})));
    assert!(!condition.matches(&json!({"deviceId": "d400"})));
    // Canonical text puts spaces around operators, so near the limit it may pass it.
    let canonical = condition.to_string();
    assert!(canonical.len() > MAX_TEXT);
    assert_eq!(Condition::parse(&canonical).unwrap_err().problem, Problem::TooLong { length: canonical.len() });
}

#[test]
fn deep_twins_do_not_exhaust_the_stack() {
    // Built by hand: serde_json's parser refuses such depth, and `clone` and `json!` recurse.
    let deep = || (0..100_000).fold(json!(1), |inner, _| Value::Array(vec![inner]));
    let tags: Map<String, Value> = [("a".to_owned(), deep()), ("b".to_owned(), deep())].into_iter().collect();
    let twin = Value::Object([("tags".to_owned(), Value::Object(tags))].into_iter().collect());
    assert!(parse("tags.a = tags.b").matches(&twin));
    // Dropping a deep value recurses in serde_json; leak it rather than overflow there.
    std::mem::forget(twin);
}

/// Pieces of conditions, valid and not, to splice and join.
const PIECES: &[&str] = &[
    "*",
    "AND",
    "and",
    "OR",
    "NOT",
    "IN",
    "NIN",
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "!",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "'",
    "\"",
    "\\",
    "''",
    "'a'",
    "\"b\"",
    "'it''s'",
    "true",
    "FALSE",
    "null",
    "0",
    "-1",
    "2.5",
    "1e3",
    "1e999",
    "-",
    "tags",
    "tags.a",
    "tags.b.c",
    "tags['k']",
    "tags[",
    "deviceId",
    "moduleId",
    "properties",
    "properties.desired",
    "properties.reported.x",
    "$version",
    "status",
    "capabilities.iotEdge",
    "tag",
    "IS_DEFINED(",
    "is_null(",
    "STARTSWITH(",
    "ends_with(",
    "CONTAINS(",
    "lower(",
    "\n",
    " ",
    "é",
    "😀",
    "@",
];

/// Twins to evaluate parsed conditions against.
fn twins() -> Vec<Value> {
    vec![device_twin(), module_twin(), json!({}), json!(null), json!({"tags": [], "properties": {"desired": 1}})]
}

/// Parses `text` and, if it parses, evaluates it and checks that its canonical text means
/// the same.
fn exercise(text: &str) {
    let Ok(condition) = Condition::parse(text) else {
        return;
    };
    for twin in twins() {
        let _ = condition.matches(&twin);
    }
    let _ = condition.dependencies();
    let canonical = condition.to_string();
    if canonical.len() <= MAX_TEXT {
        assert_eq!(Condition::parse(&canonical).as_ref(), Ok(&condition), "{text:?} → {canonical:?}");
    }
}

fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_$][A-Za-z0-9_$-]{0,6}",
        prop::sample::select(vec!["in", "AND", "null", "a b", "it's", "\\", "\"", "", "1", "a.b", "é"])
            .prop_map(str::to_owned),
        "\\PC{0,6}",
    ]
}

fn path() -> impl Strategy<Value = Path> {
    (prop::sample::select(Root::ALL.to_vec()), prop::collection::vec(member_name(), 0..3)).prop_map(
        |(root, members)| {
            if root.has_members() { Path { root, members } } else { Path { root, members: Vec::new() } }
        },
    )
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec![0.5, -2.5, 9.0, 1e-7, 1e300, -0.0]).prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::String),
        prop::sample::select(vec!["'", "''", "\\", "\\'", "\"", "a\nb"]).prop_map(Value::from),
    ]
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![path().prop_map(Operand::Path), literal().prop_map(Operand::Literal)]
}

fn predicate() -> impl Strategy<Value = Expr> {
    let ops = prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ]);
    prop_oneof![
        (operand(), ops, operand()).prop_map(|(left, op, right)| Expr::Compare { left, op, right }),
        (operand(), any::<bool>(), prop::collection::vec(literal(), 0..4))
            .prop_map(|(operand, negated, list)| Expr::In { operand, negated, list }),
        (prop::sample::select(Function::ALL.to_vec()), path(), operand()).prop_map(|(function, path, second)| {
            let args = match function.arity() {
                1 if function == Function::IsDefined => vec![Operand::Path(path)],
                1 => vec![second],
                _ => vec![Operand::Path(path), second],
            };
            Expr::Call { function, args }
        }),
    ]
}

/// Trees as the parser builds them: AND and OR chains flattened.
fn expr() -> impl Strategy<Value = Expr> {
    predicate().prop_recursive(5, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::or),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::and),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

/// JSON of every shape.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec!["a", "b", "Sensor-01", "prod", ""]).prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(vec!["a", "b", "c", "in", "my key", "$version"]), inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<
                    String,
                    Value,
                >>(
                ))),
        ]
    })
}

/// Twins whose sections hold JSON of every shape, or are missing, or are not objects.
fn twin() -> impl Strategy<Value = Value> {
    let section = || prop::option::of(json_value());
    (section(), section(), section(), section(), section(), section()).prop_map(
        |(device_id, tags, desired, reported, version, anything)| {
            let mut twin = Map::new();
            let mut put = |key: &str, value: Option<Value>| {
                if let Some(value) = value {
                    twin.insert(key.to_owned(), value);
                }
            };
            put("deviceId", device_id);
            put("tags", tags);
            put("properties", Some(json!({"desired": desired, "reported": reported})));
            put("$version", version);
            put("status", anything.clone());
            put("capabilities", anything.map(|a| json!({"iotEdge": a})));
            Value::Object(twin)
        },
    )
}

/// Conditions that read the parts of [`twin`] in varied ways.
const CONDITIONS: &[&str] = &[
    "tags.a = tags.b",
    "tags.a != tags.b OR tags.a < tags.c",
    "NOT tags.a.b >= 1 AND tags.a IN ['a', 1, null, true]",
    "properties.desired = properties.reported",
    "properties.desired.a NIN [0] OR properties.reported['my key'].in <= 'b'",
    "IS_DEFINED(tags.a) AND (IS_NULL(tags.b) OR IS_OBJECT(tags.c) OR IS_ARRAY(tags) OR IS_STRING(deviceId))",
    "STARTSWITH(deviceId, tags.a) OR ENDSWITH(tags.b, 'b') OR CONTAINS(tags.c.a, '')",
    "$version > 1.5 AND status = capabilities.iotEdge AND IS_BOOL(status) AND IS_NUMBER($version)",
    "deviceId = tags",
];

proptest! {
    #[test]
    fn parsing_any_text_never_panics(text in "\\PC{0,200}") {
        exercise(&text);
    }

    #[test]
    fn parsing_any_token_soup_never_panics(pieces in prop::collection::vec(prop::sample::select(PIECES), 0..24)) {
        exercise(&pieces.join(" "));
        exercise(&pieces.concat());
    }

    #[test]
    fn canonical_text_parses_back_to_the_same_tree(expr in expr()) {
        let condition = Condition { expr: Some(expr) };
        let text = condition.to_string();
        prop_assume!(text.len() <= MAX_TEXT);
        let parsed = Condition::parse(&text);
        prop_assert_eq!(parsed.as_ref(), Ok(&condition), "{}", text);
    }

    #[test]
    fn evaluation_never_panics(twin in twin(), expr in expr(), condition in prop::sample::select(CONDITIONS)) {
        let generated = Condition { expr: Some(expr) };
        let _ = generated.matches(&twin);
        let fixed = parse(condition);
        let _ = fixed.matches(&twin);
        // Canonical text means the same.
        prop_assert_eq!(parse(&fixed.to_string()).evaluate(&twin), fixed.evaluate(&twin));
    }
}
