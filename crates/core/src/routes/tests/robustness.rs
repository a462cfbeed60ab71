//! No input makes parsing or evaluation panic, and nesting is bounded so that neither can
//! exhaust the stack.

use proptest::prelude::*;

use super::*;

/// Messages of every shape to evaluate parsed routes against.
fn messages() -> Vec<RouteMessage> {
    let mut json = with(
        from_module("sensor", Some("temp")),
        &[("a", "1"), ("$b", "x"), ("$body.c", "2")],
        &[("contentType", "application/json"), ("contentEncoding", "utf-8"), ("b", "y")],
    );
    json.body = br#"{"a": {"b": [1, "two", null, true, {"c": 3}]}, "c": -0.5, "d": "1e3"}"#.to_vec();
    let mut garbage = json.clone();
    garbage.body = vec![0xFF, 0x00, b'{'];
    vec![azure_message(), telemetry("leaf"), json, garbage]
}

/// Pieces of routes, valid and not, to splice and join.
const PIECES: &[&str] = &[
    "SELECT",
    "*",
    "FROM",
    "WHERE",
    "INTO",
    "$upstream",
    "BrokeredEndpoint(\"/modules/m/inputs/i\")",
    "/messages/*",
    "/*",
    "/messages/modules/sensor/outputs/temp",
    "AND",
    "OR",
    "NOT",
    "??",
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "||",
    "/",
    "%",
    "(",
    ")",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "\\",
    "\\u",
    "true",
    "false",
    "null",
    "undefined",
    "0",
    "-1",
    "3.5",
    "1e400",
    "0x7",
    "a",
    "$b",
    "$body.a.b[1]",
    "$body.c",
    "{$b}",
    "abs(",
    "concat(",
    "substring(",
    "as_number(",
    "is_defined(",
    "length(",
    "/*",
    "*/",
    "\n",
    "é",
    "😀",
    "[",
    "]",
    "@",
    "'x'",
    "\"y\"",
    "$",
    ".",
    "e5",
];

const FIXTURES: &[&str] = &[
    r#"FROM /messages/modules/sensor/outputs/temp INTO BrokeredEndpoint("/modules/filter/inputs/in1")"#,
    "FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream",
    "SELECT * FROM /messages/* WHERE as_number(a) + 1 >= 2 AND $body.a.b[0] = 1 OR concat($b, 'z') = 'xz' INTO $upstream",
    "FROM /* WHERE (substring(a, 0, 1) ?? 'q') < 'z' /* c */ AND -$body.c < 1 / 0 INTO $upstream",
];

/// Parses `text` and, if it parses, evaluates it against every message.
fn exercise(text: &str) {
    if let Ok(route) = Route::parse("fuzz", text) {
        for message in messages() {
            let _ = route.matches(&message);
            let _ = route.evaluate(&message).to_string();
        }
    }
}

/// A condition built from the grammar, type-correct or not.
fn condition() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "true",
        "false",
        "null",
        "undefined",
        "0",
        "-2.5",
        "3",
        "'s'",
        "a",
        "none",
        "$b",
        "{$b}",
        "$body.a.b[0]",
        "$body.a.b[1]",
        "$body.a.b[2]",
        "$body.a.b[3]",
        "$body.c",
        "$body.d",
        "$body.a",
        "$connectionModuleId",
    ])
    .prop_map(str::to_owned);
    leaf.prop_recursive(5, 48, 3, |inner| {
        let ops = prop::sample::select(vec![
            "??", "OR", "AND", "=", "!=", "<>", "<", "<=", ">", ">=", "+", "-", "||", "*", "/", "%",
        ]);
        let functions = prop::sample::select(vec![
            "abs",
            "exp",
            "power",
            "square",
            "ceiling",
            "floor",
            "sign",
            "sqrt",
            "as_number",
            "is_bool",
            "is_defined",
            "is_null",
            "is_number",
            "is_string",
            "concat",
            "length",
            "lower",
            "upper",
            "substring",
            "index_of",
            "starts_with",
            "ends_with",
            "contains",
        ]);
        prop_oneof![
            (inner.clone(), ops, inner.clone()).prop_map(|(l, op, r)| format!("({l} {op} {r})")),
            inner.clone().prop_map(|e| format!("NOT {e}")),
            inner.clone().prop_map(|e| format!("- {e}")),
            (functions, prop::collection::vec(inner, 1..4)).prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
        ]
    })
}

proptest! {
    #[test]
    fn parsing_any_text_never_panics(text in "\\PC{0,120}") {
        exercise(&text);
        exercise(&format!("FROM /* WHERE {text} INTO $upstream"));
    }

    #[test]
    fn parsing_any_token_soup_never_panics(pieces in prop::collection::vec(prop::sample::select(PIECES), 0..24)) {
        exercise(&pieces.join(" "));
        exercise(&format!("FROM /* WHERE {} INTO $upstream", pieces.join(" ")));
        exercise(&pieces.concat());
    }

    #[test]
    fn mutated_routes_never_panic(
        fixture in prop::sample::select(FIXTURES),
        at in 0.0..1.0f64,
        cut in 0usize..8,
        insert in prop::sample::select(PIECES),
    ) {
        let chars: Vec<char> = fixture.chars().collect();
        let at = ((chars.len() as f64) * at) as usize;
        let end = (at + cut).min(chars.len());
        let mutated: String = chars[..at].iter().copied().chain(insert.chars()).chain(chars[end..].iter().copied()).collect();
        exercise(&mutated);
        let deleted: String = chars[..at].iter().chain(&chars[end..]).collect();
        exercise(&deleted);
    }

    #[test]
    fn generated_conditions_parse_or_fail_cleanly_and_evaluate(condition in condition()) {
        let text = format!("FROM /* WHERE {condition} INTO $upstream");
        match Route::parse("generated", &text) {
            Ok(_) => exercise(&text),
            Err(e) => prop_assert!(e.position.offset <= text.len()),
        }
    }
}

#[test]
fn fixture_routes_survive_every_single_character_deletion() {
    for text in
        FIXTURES.iter().map(|s| (*s).to_owned()).chain(super::syntax::fixture_routes().into_iter().map(|(_, t)| t))
    {
        for (i, c) in text.char_indices() {
            let mut mutated = text.clone();
            mutated.replace_range(i..i + c.len_utf8(), "");
            exercise(&mutated);
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let parens = format!("{}true{}", "(".repeat(100_000), ")".repeat(100_000));
    assert_eq!(problem(&format!("FROM /* WHERE {parens} INTO $upstream")), Problem::TooDeep);
    let nots = format!("{}true", "NOT ".repeat(100_000));
    assert_eq!(problem(&format!("FROM /* WHERE {nots} INTO $upstream")), Problem::TooDeep);
    let calls = format!("{}1{}", "abs(".repeat(100_000), ")".repeat(100_000));
    assert_eq!(problem(&format!("FROM /* WHERE {calls} = 1 INTO $upstream")), Problem::TooDeep);
    let chain = vec!["false"; 100_000].join(" OR ");
    assert_eq!(problem(&format!("FROM /* WHERE {chain} INTO $upstream")), Problem::TooDeep);
}

#[test]
fn long_flat_conditions_evaluate() {
    let ids: Vec<String> = (0..900).map(|i| format!("$connectionDeviceId = 'leaf{i}'")).collect();
    let route = route(&ids.join(" OR "));
    let leaf = |id: &str| with(telemetry(id), &[], &[("connectionDeviceId", id)]);
    assert!(route.matches(&leaf("leaf899")));
    assert!(!route.matches(&leaf("leaf900")));
    let nested = format!("{}true{}", "(".repeat(60), ")".repeat(60));
    assert!(super::route(&nested).matches(&telemetry("d")));
}
