//! Every construct of the language, read into its canonical text, and equal conditions
//! written differently.

use super::*;

#[test]
fn the_documented_examples_parse() {
    for (text, expected) in [
        (
            "tags.environment='prod' AND tags.location='westus'",
            "tags.environment = 'prod' AND tags.location = 'westus'",
        ),
        ("deviceId='dev1'", "deviceId = 'dev1'"),
        ("tags.building=9 and tags.environment='test'", "tags.building = 9 AND tags.environment = 'test'"),
        ("properties.reported.lastDesiredStatus.code = 200", "properties.reported.lastDesiredStatus.code = 200"),
        ("NOT (tags.x = 'y') OR tags.ring IN ['a', 'b']", "NOT tags.x = 'y' OR tags.ring IN ['a', 'b']"),
    ] {
        assert_eq!(canonical(text), expected, "{text}");
    }
}

#[test]
fn star_alone_is_every_device() {
    for text in ["*", "  *\n", "\t*"] {
        let condition = parse(text);
        assert!(condition.is_everything());
        assert_eq!(condition, Condition::everything());
        assert_eq!(condition.to_string(), "*");
    }
    assert!(!parse("deviceId = 'd'").is_everything());
}

#[test]
fn every_root_is_read() {
    for text in [
        "deviceId = 'd'",
        "moduleId = 'm'",
        "tags.a = 1",
        "tags = tags",
        "properties.desired.a = 1",
        "properties.reported.a = 1",
        "properties.desired = properties.reported",
        "$version >= 2",
        "status = 'enabled'",
        "capabilities.iotEdge = true",
    ] {
        assert_eq!(canonical(text), text);
    }
    assert_eq!(canonical("properties . desired . a = 1"), "properties.desired.a = 1");
    assert_eq!(canonical("capabilities .iotEdge= true"), "capabilities.iotEdge = true");
}

#[test]
fn member_names_are_plain_or_bracketed() {
    for (text, expected) in [
        ("tags.a.b.c = 1", "tags.a.b.c = 1"),
        ("tags.$meta_1.x-y = 1", "tags.$meta_1.x-y = 1"),
        ("tags['my key'] = 1", "tags['my key'] = 1"),
        ("tags[\"my key\"].b = 1", "tags['my key'].b = 1"),
        ("tags['plain'] = 1", "tags.plain = 1"),
        ("tags['a.b'] = 1", "tags['a.b'] = 1"),
        ("tags['1x'] = 1", "tags['1x'] = 1"),
        ("tags[''] = 1", "tags[''] = 1"),
        ("tags['it''s'] = 1", "tags['it\\'s'] = 1"),
        ("tags['é'] = 1", "tags['é'] = 1"),
        ("properties.reported['$metadata'].x = 1", "properties.reported.$metadata.x = 1"),
        // Keywords are names after a dot.
        ("tags.in = 1 AND tags.AND = 2 AND tags.null = 3", "tags.in = 1 AND tags.AND = 2 AND tags.null = 3"),
    ] {
        assert_eq!(canonical(text), expected, "{text}");
    }
}

#[test]
fn every_comparison_operator_is_read() {
    for (text, expected) in [
        ("tags.a=1", "tags.a = 1"),
        ("tags.a!=1", "tags.a != 1"),
        ("tags.a<>1", "tags.a != 1"),
        ("tags.a<1", "tags.a < 1"),
        ("tags.a<=1", "tags.a <= 1"),
        ("tags.a>1", "tags.a > 1"),
        ("tags.a>=1", "tags.a >= 1"),
        ("'prod' = tags.env", "'prod' = tags.env"),
        ("1 = 1", "1 = 1"),
        ("tags.a = tags.b", "tags.a = tags.b"),
    ] {
        assert_eq!(canonical(text), expected, "{text}");
    }
    assert_eq!(parse("tags.a <> 1"), parse("tags.a != 1"));
}

#[test]
fn literals_are_read_in_every_form() {
    for (text, expected) in [
        ("tags.a = 'single'", "tags.a = 'single'"),
        ("tags.a = \"double\"", "tags.a = 'double'"),
        (r#"tags.a = 'it\'s'"#, r"tags.a = 'it\'s'"),
        ("tags.a = 'it''s'", r"tags.a = 'it\'s'"),
        (r#"tags.a = "say \"hi\"""#, r#"tags.a = 'say "hi"'"#),
        (r#"tags.a = "it's""#, r"tags.a = 'it\'s'"),
        (r"tags.a = 'C:\\temp'", r"tags.a = 'C:\\temp'"),
        ("tags.a = ''", "tags.a = ''"),
        ("tags.a = 'line\nbreak'", "tags.a = 'line\nbreak'"),
        ("tags.a = 42", "tags.a = 42"),
        ("tags.a = -42", "tags.a = -42"),
        ("tags.a = 0", "tags.a = 0"),
        ("tags.a = -0", "tags.a = 0"),
        ("tags.a = 2.50", "tags.a = 2.5"),
        ("tags.a = 9.0", "tags.a = 9.0"),
        ("tags.a = 1e3", "tags.a = 1000.0"),
        ("tags.a = 1E-7", "tags.a = 1e-7"),
        ("tags.a = -2.5e+2", "tags.a = -250.0"),
        ("tags.a = 18446744073709551615", "tags.a = 18446744073709551615"),
        ("tags.a = 100000000000000000000", "tags.a = 1e+20"),
        ("tags.a = TRUE", "tags.a = true"),
        ("tags.a = False", "tags.a = false"),
        ("tags.a = NULL", "tags.a = null"),
    ] {
        assert_eq!(canonical(text), expected, "{text}");
    }
}

#[test]
fn in_and_nin_take_lists_of_literals() {
    for (text, expected) in [
        ("tags.ring IN ['a', 'b']", "tags.ring IN ['a', 'b']"),
        ("tags.ring in[\"a\",'b' , 3,true,null,-1.5]", "tags.ring IN ['a', 'b', 3, true, null, -1.5]"),
        ("tags.ring NIN ['a']", "tags.ring NIN ['a']"),
        ("tags.ring nin ['a']", "tags.ring NIN ['a']"),
        ("tags.ring IN []", "tags.ring IN []"),
        ("'a' IN ['a']", "'a' IN ['a']"),
    ] {
        assert_eq!(canonical(text), expected, "{text}");
    }
}

#[test]
fn functions_ignore_case_and_have_aliases() {
    for (text, expected) in [
        ("IS_DEFINED(tags.a)", "IS_DEFINED(tags.a)"),
        ("is_defined(tags.a)", "IS_DEFINED(tags.a)"),
        ("Is_Null(tags.a)", "IS_NULL(tags.a)"),
        ("is_null(null)", "IS_NULL(null)"),
        ("IS_BOOL(tags.a)", "IS_BOOL(tags.a)"),
        ("IS_NUMBER(tags.a)", "IS_NUMBER(tags.a)"),
        ("IS_STRING(deviceId)", "IS_STRING(deviceId)"),
        ("IS_OBJECT(tags)", "IS_OBJECT(tags)"),
        ("IS_ARRAY(tags.a)", "IS_ARRAY(tags.a)"),
        ("STARTSWITH(tags.a, 'p')", "STARTSWITH(tags.a, 'p')"),
        ("starts_with(tags.a,'p')", "STARTSWITH(tags.a, 'p')"),
        ("EndsWith(tags.a, 's')", "ENDSWITH(tags.a, 's')"),
        ("ENDS_WITH(tags.a, 's')", "ENDSWITH(tags.a, 's')"),
        ("contains(tags.a, tags.b)", "CONTAINS(tags.a, tags.b)"),
        ("STARTSWITH ( 'abc' , 'a' )", "STARTSWITH('abc', 'a')"),
    ] {
        assert_eq!(canonical(text), expected, "{text}");
    }
}

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    for (text, expected) in [
        ("tags.a = 1 OR tags.b = 2 AND tags.c = 3", "tags.a = 1 OR tags.b = 2 AND tags.c = 3"),
        ("(tags.a = 1 OR tags.b = 2) AND tags.c = 3", "(tags.a = 1 OR tags.b = 2) AND tags.c = 3"),
        ("tags.a = 1 OR (tags.b = 2 AND tags.c = 3)", "tags.a = 1 OR tags.b = 2 AND tags.c = 3"),
        ("NOT tags.a = 1 AND tags.b = 2", "NOT tags.a = 1 AND tags.b = 2"),
        ("NOT (tags.a = 1 AND tags.b = 2)", "NOT (tags.a = 1 AND tags.b = 2)"),
        ("NOT (tags.a = 1 OR tags.b = 2) AND tags.c = 3", "NOT (tags.a = 1 OR tags.b = 2) AND tags.c = 3"),
        ("not not IS_DEFINED(tags.a)", "NOT NOT IS_DEFINED(tags.a)"),
        ("((((tags.a = 1))))", "tags.a = 1"),
        ("tags.a = 1 AND (tags.b = 2 AND tags.c = 3)", "tags.a = 1 AND tags.b = 2 AND tags.c = 3"),
        ("(tags.a = 1 OR tags.b = 2) OR tags.c = 3", "tags.a = 1 OR tags.b = 2 OR tags.c = 3"),
        (
            "(tags.a = 1 OR tags.b = 2) AND (tags.c = 3 OR NOT (tags.d = 4 AND tags.e = 5))",
            "(tags.a = 1 OR tags.b = 2) AND (tags.c = 3 OR NOT (tags.d = 4 AND tags.e = 5))",
        ),
    ] {
        assert_eq!(canonical(text), expected, "{text}");
    }
    // Chains are flattened, so grouping that does not change the meaning does not change the tree.
    assert_eq!(
        parse("(tags.a = 1 AND tags.b = 2) AND tags.c = 3"),
        parse("tags.a = 1 AND (tags.b = 2 AND tags.c = 3)")
    );
    assert_ne!(parse("(tags.a = 1 OR tags.b = 2) AND tags.c = 3"), parse("tags.a = 1 OR tags.b = 2 AND tags.c = 3"));
}

#[test]
fn keywords_ignore_case() {
    let reference = parse("NOT tags.a = true AND tags.b IN [null] OR tags.c NIN [false]");
    for text in [
        "not tags.a = true and tags.b in [null] or tags.c nin [false]",
        "Not tags.a = True And tags.b In [Null] Or tags.c Nin [False]",
        "nOt tags.a = tRuE aNd tags.b iN [nUlL] oR tags.c NiN [fAlSe]",
    ] {
        assert_eq!(parse(text), reference, "{text}");
    }
}

#[test]
fn whitespace_of_every_kind_separates_tokens() {
    assert_eq!(parse("tags.a\t=\r\n1\u{a0}AND\ntags.b=2"), parse("tags.a = 1 AND tags.b = 2"));
}

#[test]
fn canonical_text_parses_back_to_the_same_condition() {
    for text in [
        "*",
        "tags.environment='prod' AND tags.location='westus'",
        "NOT (tags.x = 'y') OR tags.ring IN ['a', 'b']",
        "tags['it''s \\\\ \"'] = \"a'b\\\\\" AND tags.x NIN [1.5, -2, 3e30, true, null, '']",
        "(deviceId = 'a' OR moduleId = 'b') AND NOT NOT (STARTS_WITH(tags.x, 'p') OR is_null(tags.y))",
        "$version > 1.0000000000000002 AND status <> 'disabled' AND capabilities.iotEdge = true",
        "properties.reported['a b']['c'] = properties.desired.x",
    ] {
        let condition = parse(text);
        let again = parse(&condition.to_string());
        assert_eq!(again, condition, "{text} → {condition}");
        assert_eq!(again.to_string(), condition.to_string());
        assert_eq!(text.parse::<Condition>().unwrap(), condition);
    }
}

#[test]
fn dependencies_name_the_roots_read() {
    assert!(parse("*").dependencies().is_empty());
    assert!(parse("1 = 1 AND 'a' IN ['a']").dependencies().is_empty());
    assert_eq!(
        parse("tags.environment = 'prod'").dependencies(),
        Dependencies { tags: true, ..Dependencies::default() }
    );
    assert_eq!(
        parse("deviceId = 'a' OR NOT IS_DEFINED(properties.reported.x) AND moduleId IN ['m']").dependencies(),
        Dependencies { device_id: true, module_id: true, reported: true, ..Dependencies::default() }
    );
    assert_eq!(
        parse("STARTSWITH(properties.desired.a, status) AND $version > 1").dependencies(),
        Dependencies { desired: true, other: true, ..Dependencies::default() }
    );
    assert_eq!(
        parse("capabilities.iotEdge = true").dependencies(),
        Dependencies { other: true, ..Dependencies::default() }
    );
}
