//! Values a condition computes: edgeHub's undefined, null, bool, number and string. JSON
//! objects and arrays from `$body` are undefined: only scalars compare.

use std::borrow::Cow;
use std::fmt;

/// The value of a condition or of one of its parts.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Missing: an absent property, a failed conversion, `0 / 0`. Never matches.
    Undefined,
    /// JSON `null` or the `null` literal. As a condition it does not match.
    Null,
    /// A boolean; only `true` matches.
    Bool(bool),
    /// A number (never NaN: NaN is [`Value::Undefined`]; infinities are numbers).
    Number(f64),
    /// A string.
    String(Cow<'a, str>),
}

impl Value<'_> {
    /// Whether a route with this condition value takes the message.
    pub fn is_true(&self) -> bool {
        matches!(self, Self::Bool(true))
    }

    /// `n`, or undefined if it is NaN.
    pub(super) fn number(n: f64) -> Self {
        if n.is_nan() { Self::Undefined } else { Self::Number(n) }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undefined => f.write_str("undefined"),
            Self::Null => f.write_str("null"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}
