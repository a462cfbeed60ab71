//! IoT Hub twin query predicates: the WHERE clause of a twin query, as deployments use it in
//! `targetCondition` (`tags.environment='prod' AND tags.location='westus'`). [`Condition::parse`]
//! reads a condition once; [`Condition::matches`] decides for each twin. Pure: no I/O.
//!
//! - `*` alone is every device. Otherwise a condition is predicates joined by `AND`, `OR`,
//!   `NOT` and parentheses (`NOT` binds tightest, then `AND`, then `OR`). Keywords, the
//!   literals `true false null` and function names ignore case; property names do not.
//! - A predicate compares two operands with `= != <> < <= > >=`, tests one against a list
//!   with `IN [...]` or `NIN [...]`, or calls `IS_DEFINED IS_NULL IS_BOOL IS_NUMBER
//!   IS_STRING IS_OBJECT IS_ARRAY STARTSWITH ENDSWITH CONTAINS` (`STARTS_WITH`, `ENDS_WITH`).
//! - An operand is a literal (a string in single or double quotes, a number, `true`,
//!   `false`, `null`) or a property path rooted at `deviceId`, `moduleId`, `tags`,
//!   `properties.desired`, `properties.reported`, `$version`, `status` or
//!   `capabilities.iotEdge`, with members `.name` or `['any name']`.
//! - Logic is three-valued. A missing property is undefined; so is a comparison involving
//!   undefined or two values of different types (`tags.building = '9'` does not match the
//!   number 9), and an ordering of anything but two numbers or two strings. `NOT`, `AND` and
//!   `OR` follow Kleene's logic and a condition matches only when it is `true`, so
//!   `tags.ring != 'a'` does not match a twin without `tags.ring`. Numbers compare by value
//!   (`9 = 9.0`), strings by code point, objects and arrays by deep equality. `x IN [...]` is
//!   the `OR` of `x = item` for every item and `NIN` its `NOT`. The `IS_…` tests are always
//!   true or false; `STARTSWITH`, `ENDSWITH` and `CONTAINS` are undefined unless both
//!   arguments are strings.
//! - Conditions are at most [`MAX_TEXT`] bytes, nest parentheses and `NOT` at most
//!   [`MAX_NESTING`] deep and list at most [`MAX_LIST`] values after `IN`; past that they are
//!   refused, so that no input can exhaust the stack.

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

pub use error::{Position, Problem, QueryError};

use ast::{Expr, Operand, Root};
use eval::Truth;

/// The longest condition accepted, in bytes.
pub const MAX_TEXT: usize = 8 * 1024;

/// How deep parentheses and `NOT` may nest.
pub const MAX_NESTING: usize = 64;

/// How many values an `IN` or `NIN` list may hold.
pub const MAX_LIST: usize = 1000;

/// A parsed target condition.
///
/// Its [`Display`](fmt::Display) is a canonical text that parses back to an equal condition
/// (unless it passes [`MAX_TEXT`]: it has a space on each side of every operator, so a
/// condition written tightly near the limit may not fit).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `None` for `*`.
    expr: Option<Expr>,
}

impl Condition {
    /// Parses `text`: `*`, or a boolean expression over twin properties.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let expr = parser::parse(text).map_err(|fail| fail.into_error(text))?;
        Ok(Self { expr })
    }

    /// The condition `*`, which every device matches.
    pub fn everything() -> Self {
        Self { expr: None }
    }

    /// Whether this is `*`, which every device matches.
    pub fn is_everything(&self) -> bool {
        self.expr.is_none()
    }

    /// Whether `twin` (`{"deviceId": …, "tags": {…}, "properties": {"desired": {…},
    /// "reported": {…}}, …}`) satisfies the condition: whether it evaluates to `true`, not
    /// `false` or undefined.
    pub fn matches(&self, twin: &Value) -> bool {
        self.evaluate(twin) == Truth::True
    }

    /// The three-valued result for `twin`.
    fn evaluate(&self, twin: &Value) -> Truth {
        match &self.expr {
            None => Truth::True,
            Some(expr) => eval::eval(expr, twin),
        }
    }

    /// The parts of a twin the condition reads: when none of them changes, neither does
    /// the result.
    pub fn dependencies(&self) -> Dependencies {
        let mut dependencies = Dependencies::default();
        if let Some(expr) = &self.expr {
            dependencies.collect(expr);
        }
        dependencies
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            None => f.write_str("*"),
            Some(expr) => write!(f, "{expr}"),
        }
    }
}

impl FromStr for Condition {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Which parts of a twin a condition reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// `deviceId`.
    pub device_id: bool,
    /// `moduleId`.
    pub module_id: bool,
    /// `tags`.
    pub tags: bool,
    /// `properties.desired`.
    pub desired: bool,
    /// `properties.reported`.
    pub reported: bool,
    /// `$version`, `status` or `capabilities.iotEdge`.
    pub other: bool,
}

impl Dependencies {
    /// Whether the condition reads nothing of a twin (`*`, or literals only): its result
    /// is the same for every twin.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn collect(&mut self, expr: &Expr) {
        match expr {
            Expr::Or(items) | Expr::And(items) => items.iter().for_each(|item| self.collect(item)),
            Expr::Not(operand) => self.collect(operand),
            Expr::Compare { left, right, .. } => {
                self.operand(left);
                self.operand(right);
            }
            Expr::In { operand, .. } => self.operand(operand),
            Expr::Call { args, .. } => args.iter().for_each(|arg| self.operand(arg)),
        }
    }

    fn operand(&mut self, operand: &Operand) {
        let Operand::Path(path) = operand else {
            return;
        };
        let flag = match path.root {
            Root::DeviceId => &mut self.device_id,
            Root::ModuleId => &mut self.module_id,
            Root::Tags => &mut self.tags,
            Root::Desired => &mut self.desired,
            Root::Reported => &mut self.reported,
            Root::Version | Root::Status | Root::IotEdge => &mut self.other,
        };
        *flag = true;
    }
}
