//! Azure IoT Edge's route language, as edgeHub reads `$edgeHub` `routes`:
//! `[SELECT *] FROM <source> [WHERE <condition>] INTO <sink>`. [`Route::parse`] reads and
//! type-checks a route once; [`Route::matches`] decides for each message. Pure: no I/O.
//!
//! Routes that edgeHub accepts mean the same here, and routes it refuses are refused, with
//! the line and column of the fault. In particular, following edgeHub's compiler:
//!
//! - Conditions are type-checked when parsed. Application and system properties are
//!   strings, so `temperature > 25` is an error (`as_number(temperature) > 25` is not);
//!   `$body` values are checked per message, and a comparison across types is false for
//!   `=`, true for `!=`/`<>` and undefined for ordering.
//! - Tokens are cut as edgeHub's lexer cuts them: identifiers hold `-`, `+`, `*`, `.`, `!`
//!   and more, so write `a - b`, not `a-b` (a property name). Keywords ignore case; the
//!   literals `true false null undefined` are lower-case.
//! - `NOT` and unary `-` bind tighter than every binary operator: `NOT a = b` is
//!   `(NOT a) = b`. Then, loosest first: `??`, `OR`, `AND`, `= != <>`, `< <= > >=`,
//!   `+ - ||`, `* / %`.
//! - `x / 0` is ±infinity, which is defined (as in .NET); `0 / 0`, `x % 0`, `sqrt(-1)` and
//!   any other NaN are undefined. A condition matches only if it is `true`.
//! - Property names ignore case. `$name` reads an application property spelled `$name`
//!   if there is one, else system property `name`; `{$name}` always the system property.
//! - `$body.a.b[0]` queries the body when `contentType` is `application/json` and
//!   `contentEncoding` is `utf-8`, `utf-16` or `utf-32` (UTF-16/32 little-endian unless a
//!   byte-order mark says otherwise), else it is undefined. A missing member or index is
//!   `null`; stepping into a scalar, or ending on an object or array, is undefined.
//! - Sources match by prefix on whole path segments, ignoring case; `/messages` selects
//!   what `/messages/*` does (use `WHERE NOT is_defined($connectionModuleId)` for leaf
//!   devices only).
//!
//! Deliberate differences from edgeHub:
//!
//! - String escapes also take `\n \t \r \b \f \/` (edgeHub refuses them).
//! - In the FROM path `/*` is the wildcard, never a comment (edgeHub's lexer would swallow
//!   everything up to the next `*/`, WHERE clause included).
//! - Only the six [`Source`] forms are accepted (edgeHub takes any path as a prefix, which
//!   then matches nothing), and a `BrokeredEndpoint` address must read `modules` and
//!   `inputs` (edgeHub only counts four segments). `twin_change_includes` and
//!   `/twinChangeNotifications` routes are not supported.
//! - `is_null` of a `$body` value is true exactly for `null` (edgeHub's is true for every
//!   present member and false for a missing one).
//! - JSON strings that look like dates stay strings (edgeHub's JSON reader turns them into
//!   dates, which then compare as undefined).
//! - `length`, `substring` and `index_of` count characters, and strings order by code
//!   point, where .NET counts and orders UTF-16 units: they differ only beyond U+FFFF.
//! - `as_number` reads plain decimals (sign, digits, fraction, exponent, surrounding
//!   whitespace), not .NET's thousands separators, currency signs or parentheses.

mod body;
mod error;
mod expr;
mod functions;
mod lexer;
mod message;
mod parser;
mod sink;
mod source;
mod types;
mod value;

#[cfg(test)]
mod tests;

pub use error::{Position, Problem, RouteError};
pub use message::{MessageSource, RouteMessage, system, system_property_for_wire_name};
pub use sink::Sink;
pub use source::Source;
pub use types::ExprType;
pub use value::Value;

use expr::{Expr, Scope};

/// A parsed, type-checked route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    name: String,
    text: String,
    source: Source,
    condition: Option<Expr>,
    sink: Sink,
}

impl Route {
    /// Parses `text`, the route called `name` (used in errors).
    pub fn parse(name: &str, text: &str) -> Result<Self, RouteError> {
        let parsed = parser::parse(text).map_err(|fail| fail.into_error(name, text))?;
        Ok(Self {
            name: name.to_owned(),
            text: text.to_owned(),
            source: parsed.source,
            condition: parsed.condition,
            sink: parsed.sink,
        })
    }

    /// The route's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The messages the FROM path selects.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Where matching messages go.
    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// Whether the route has a WHERE condition.
    pub fn has_condition(&self) -> bool {
        self.condition.is_some()
    }

    /// The value of the WHERE condition for `message` (`true` without one), whatever the
    /// source: what a route tester shows.
    pub fn evaluate<'a>(&'a self, message: &'a RouteMessage) -> Value<'a> {
        match &self.condition {
            None => Value::Bool(true),
            Some(condition) => condition.eval(&Scope::new(message)),
        }
    }

    /// Whether `message` comes from this route's source and its condition is `true`.
    pub fn matches(&self, message: &RouteMessage) -> bool {
        self.source.matches(&message.source) && self.evaluate(message).is_true()
    }
}
