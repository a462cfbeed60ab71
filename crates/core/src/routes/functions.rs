//! Built-in functions (names ignore case): math `abs exp power square ceiling floor sign
//! sqrt`, types `as_number is_bool is_defined is_null is_number is_string`, strings `concat
//! length lower upper substring index_of starts_with ends_with contains`. Arguments are
//! checked when the route is parsed; at run time a wrong or missing value gives undefined.
//! String positions and lengths count characters (Unicode scalar values).

use std::borrow::Cow;

use super::types::{ExprType, accepts};
use super::value::Value;

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Function {
    Abs,
    Exp,
    Power,
    Square,
    Ceiling,
    Floor,
    Sign,
    Sqrt,
    AsNumber,
    IsBool,
    IsDefined,
    IsNull,
    IsNumber,
    IsString,
    Concat,
    Length,
    Lower,
    Upper,
    Substring,
    IndexOf,
    StartsWith,
    EndsWith,
    Contains,
}

const NAMES: [(&str, Function); 23] = [
    ("abs", Function::Abs),
    ("exp", Function::Exp),
    ("power", Function::Power),
    ("square", Function::Square),
    ("ceiling", Function::Ceiling),
    ("floor", Function::Floor),
    ("sign", Function::Sign),
    ("sqrt", Function::Sqrt),
    ("as_number", Function::AsNumber),
    ("is_bool", Function::IsBool),
    ("is_defined", Function::IsDefined),
    ("is_null", Function::IsNull),
    ("is_number", Function::IsNumber),
    ("is_string", Function::IsString),
    ("concat", Function::Concat),
    ("length", Function::Length),
    ("lower", Function::Lower),
    ("upper", Function::Upper),
    ("substring", Function::Substring),
    ("index_of", Function::IndexOf),
    ("starts_with", Function::StartsWith),
    ("ends_with", Function::EndsWith),
    ("contains", Function::Contains),
];

/// Whether `given` fit the parameter types `params` exactly in number.
fn fits(given: &[ExprType], params: &[ExprType]) -> bool {
    given.len() == params.len() && params.iter().zip(given).all(|(&p, &g)| accepts(p, g))
}

impl Function {
    /// The function called `name`, in any case.
    pub(super) fn lookup(name: &str) -> Option<Self> {
        NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, f)| f)
    }

    /// The type of a call with arguments of types `given`, or, if they do not fit, the
    /// parameter lists the function takes.
    pub(super) fn check(self, given: &[ExprType]) -> Result<ExprType, &'static str> {
        use ExprType::{Bool, Number as N, String as S};
        let (ok, result, expected) = match self {
            Self::Abs | Self::Exp | Self::Square | Self::Ceiling | Self::Floor | Self::Sign | Self::Sqrt => {
                (fits(given, &[N]), N, "(number)")
            }
            Self::Power => (fits(given, &[N, N]), N, "(number, number)"),
            Self::AsNumber => (fits(given, &[S]) || fits(given, &[N]), N, "(string) or (number)"),
            Self::IsBool | Self::IsDefined | Self::IsNull | Self::IsNumber | Self::IsString => {
                (given.len() == 1, Bool, "(value)")
            }
            Self::Concat => (given.len() >= 2 && given.iter().all(|&g| accepts(S, g)), S, "(string, string, …)"),
            Self::Length => (fits(given, &[S]), N, "(string)"),
            Self::Lower | Self::Upper => (fits(given, &[S]), S, "(string)"),
            Self::Substring => {
                (fits(given, &[S, N]) || fits(given, &[S, N, N]), S, "(string, number) or (string, number, number)")
            }
            Self::IndexOf => (fits(given, &[S, S]), N, "(string, string)"),
            Self::StartsWith | Self::EndsWith | Self::Contains => (fits(given, &[S, S]), Bool, "(string, string)"),
        };
        if ok { Ok(result) } else { Err(expected) }
    }

    /// The function applied to `args`; undefined when they are not what it takes.
    pub(super) fn call<'a>(self, args: &[Value<'a>]) -> Value<'a> {
        use Value::{Bool, Null, Number, String, Undefined};
        match (self, args) {
            (Self::Abs, [Number(n)]) => Value::number(n.abs()),
            (Self::Exp, [Number(n)]) => Value::number(n.exp()),
            (Self::Power, [Number(base), Number(exponent)]) => Value::number(base.powf(*exponent)),
            (Self::Square, [Number(n)]) => Value::number(n * n),
            (Self::Ceiling, [Number(n)]) => Value::number(n.ceil()),
            (Self::Floor, [Number(n)]) => Value::number(n.floor()),
            (Self::Sign, [Number(n)]) => Number(if *n > 0.0 {
                1.0
            } else if *n < 0.0 {
                -1.0
            } else {
                0.0
            }),
            (Self::Sqrt, [Number(n)]) => Value::number(n.sqrt()),
            (Self::AsNumber, [Number(n)]) => Number(*n),
            (Self::AsNumber, [String(s)]) => parse_number(s),
            (Self::IsBool, [v]) => Bool(matches!(v, Bool(_))),
            (Self::IsDefined, [v]) => Bool(!matches!(v, Undefined)),
            (Self::IsNull, [v]) => Bool(matches!(v, Null)),
            (Self::IsNumber, [v]) => Bool(matches!(v, Number(n) if n.is_finite())),
            (Self::IsString, [v]) => Bool(matches!(v, String(_))),
            (Self::Concat, args) => concat(args),
            (Self::Length, [String(s)]) => Number(s.chars().count() as f64),
            (Self::Lower, [String(s)]) => String(s.to_lowercase().into()),
            (Self::Upper, [String(s)]) => String(s.to_uppercase().into()),
            (Self::Substring, [String(s), Number(start)]) => substring(s, *start, None),
            (Self::Substring, [String(s), Number(start), Number(len)]) => substring(s, *start, Some(*len)),
            (Self::IndexOf, [String(s), String(part)]) => {
                Number(s.find(&**part).map_or(-1.0, |at| s[..at].chars().count() as f64))
            }
            (Self::StartsWith, [String(s), String(part)]) => Bool(s.starts_with(&**part)),
            (Self::EndsWith, [String(s), String(part)]) => Bool(s.ends_with(&**part)),
            (Self::Contains, [String(s), String(part)]) => Bool(s.contains(&**part)),
            _ => Undefined,
        }
    }
}

/// `as_number` of a string: an optionally signed decimal with optional fraction and
/// exponent, surrounding whitespace ignored; anything else is undefined.
fn parse_number(text: &str) -> Value<'static> {
    let text = text.trim();
    let numeric = |b: u8| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E');
    if text.is_empty() || !text.bytes().all(numeric) {
        return Value::Undefined;
    }
    text.parse().map_or(Value::Undefined, Value::number)
}

fn concat<'a>(args: &[Value<'a>]) -> Value<'a> {
    let mut out = std::string::String::new();
    for arg in args {
        let Value::String(s) = arg else { return Value::Undefined };
        out.push_str(s);
    }
    Value::String(Cow::Owned(out))
}

/// A character count or position from a number: truncated toward zero like .NET's cast;
/// `None` if negative or not finite.
fn count(n: f64) -> Option<usize> {
    let n = n.trunc();
    (n.is_finite() && n >= 0.0).then_some(n as usize)
}

/// `len` characters of `s` from character `start` (to the end without `len`); undefined if
/// that runs outside the string.
fn substring(s: &str, start: f64, len: Option<f64>) -> Value<'static> {
    let total = s.chars().count();
    let Some(start) = count(start).filter(|&start| start <= total) else { return Value::Undefined };
    let len = match len {
        None => total - start,
        Some(len) => match count(len).filter(|&len| len <= total - start) {
            Some(len) => len,
            None => return Value::Undefined,
        },
    };
    Value::String(Cow::Owned(s.chars().skip(start).take(len).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_found_in_any_case() {
        for (name, function) in NAMES {
            assert_eq!(Function::lookup(name), Some(function));
            assert_eq!(Function::lookup(&name.to_uppercase()), Some(function));
        }
        assert_eq!(Function::lookup("twin_change_includes"), None);
        assert_eq!(Function::lookup("abs "), None);
    }

    #[test]
    fn as_number_reads_decimals_only() {
        assert_eq!(parse_number(" 42 "), Value::Number(42.0));
        assert_eq!(parse_number("-1.5e3"), Value::Number(-1500.0));
        assert_eq!(parse_number("+.5"), Value::Number(0.5));
        assert_eq!(parse_number("1e1000"), Value::Number(f64::INFINITY));
        for bad in ["", "abc", "0x10", "inf", "NaN", "1,000", "1e", "--1"] {
            assert_eq!(parse_number(bad), Value::Undefined, "{bad}");
        }
    }

    #[test]
    fn substring_counts_characters_and_refuses_out_of_range() {
        let s = |start, len| substring("héllo", start, len);
        assert_eq!(s(1.0, Some(3.0)), Value::String("éll".into()));
        assert_eq!(s(1.9, None), Value::String("éllo".into()));
        assert_eq!(s(5.0, None), Value::String("".into()));
        assert_eq!(s(6.0, None), Value::Undefined);
        assert_eq!(s(-1.0, None), Value::Undefined);
        assert_eq!(s(2.0, Some(4.0)), Value::Undefined);
        assert_eq!(s(f64::INFINITY, None), Value::Undefined);
        assert_eq!(s(0.0, Some(-0.5)), Value::String("".into()));
    }
}
