//! Why a route does not parse, and where: every error names the route, the line and column
//! (1-based, counted in characters) and what was expected there.

use std::fmt;

use super::types::ExprType;

/// A route that cannot be used, with the place in its text that says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route {route:?}: at {position}: {problem}")]
pub struct RouteError {
    /// The route's name, as given to [`Route::parse`](super::Route::parse).
    pub route: String,
    /// Where in the route text the problem was found.
    pub position: Position,
    /// What is wrong.
    pub problem: Problem,
}

/// A place in a text: a route, or a twin query condition (see [`crate::query`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Byte offset from the start of the text.
    pub offset: usize,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the end of the text).
    pub fn in_text(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before.get(line_start..).map_or(0, |line| line.chars().count()) + 1;
        Self { offset, line: before.matches('\n').count() + 1, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What is wrong with a route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The text does not follow the grammar.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar allows here.
        expected: &'static str,
        /// What the text holds instead, quoted, or "end of route".
        found: String,
    },
    /// A string literal runs to the end of the route.
    #[error("unterminated string")]
    UnterminatedString,
    /// A `/*` comment has no closing `*/`.
    #[error("unterminated comment")]
    UnterminatedComment,
    /// A backslash escape that the language does not have.
    #[error("invalid escape {escape:?} in string; use \\\" \\' \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX")]
    InvalidEscape {
        /// The escape as written.
        escape: String,
    },
    /// The FROM path is not one of the message sources.
    #[error(
        "unsupported source {path:?}; use /*, /messages/*, /messages/modules/*, /messages/modules/<module>/*, \
         /messages/modules/<module>/outputs/* or /messages/modules/<module>/outputs/<output>"
    )]
    UnsupportedSource {
        /// The path as written.
        path: String,
    },
    /// The INTO endpoint is neither `$upstream` nor `BrokeredEndpoint(…)`.
    #[error("unknown endpoint {name:?}; use $upstream or BrokeredEndpoint(\"/modules/<module>/inputs/<input>\")")]
    UnknownEndpoint {
        /// The endpoint as written.
        name: String,
    },
    /// A `BrokeredEndpoint` address other than `/modules/<module>/inputs/<input>`.
    #[error("endpoint address {address:?} is not of the form /modules/<module>/inputs/<input>")]
    InvalidEndpointAddress {
        /// The address as written.
        address: String,
    },
    /// A call to a function the language does not have.
    #[error("unknown function {name:?}")]
    UnknownFunction {
        /// The name as written.
        name: String,
    },
    /// `twin_change_includes`, which edgeHub only accepts on twin change notification routes.
    #[error("{name} applies only to /twinChangeNotifications routes, which are not supported")]
    TwinChangeFunction {
        /// The name as written.
        name: String,
    },
    /// A function called with arguments of the wrong number or types.
    #[error("invalid arguments to {function}({}); expected {function}{expected}", list(.given))]
    Arguments {
        /// The function, as written.
        function: String,
        /// The types of the arguments given.
        given: Vec<ExprType>,
        /// The signatures the function has.
        expected: &'static str,
    },
    /// A binary operator applied to operands of types it does not take.
    #[error("invalid operands to '{operator}': have {left} and {right}{}", hint(*.left, *.right))]
    BinaryOperands {
        /// The operator, as written.
        operator: String,
        /// The type of the left operand.
        left: ExprType,
        /// The type of the right operand.
        right: ExprType,
    },
    /// A unary operator applied to an operand of a type it does not take.
    #[error("invalid operand to '{operator}': have {operand}")]
    UnaryOperand {
        /// The operator, as written.
        operator: String,
        /// The type of the operand.
        operand: ExprType,
    },
    /// A `$body.…` query that is not `name[index].name…`.
    #[error("invalid $body query {query:?}: {reason}")]
    BodyQuery {
        /// The query as written.
        query: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `[` or `]` in a system property name (only `$body` queries index arrays).
    #[error("{name:?} is not a property name; brackets are only allowed in $body queries")]
    BracketedProperty {
        /// The name as written.
        name: String,
    },
    /// A condition nested past what the evaluator will recurse through.
    #[error("the condition is nested too deeply")]
    TooDeep,
}

fn list(types: &[ExprType]) -> String {
    types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn hint(left: ExprType, right: ExprType) -> &'static str {
    let mixed = [left, right];
    if mixed.contains(&ExprType::String) && mixed.contains(&ExprType::Number) {
        " (application and system properties are strings; compare numbers with as_number(…))"
    } else {
        ""
    }
}

/// A problem at a byte offset, before it is tied to a route name and a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fail {
    /// Byte offset into the route text.
    pub at: usize,
    /// What is wrong.
    pub problem: Problem,
}

impl Fail {
    pub(super) fn new(at: usize, problem: Problem) -> Self {
        Self { at, problem }
    }

    pub(super) fn into_error(self, route: &str, text: &str) -> RouteError {
        RouteError { route: route.to_owned(), position: Position::in_text(text, self.at), problem: self.problem }
    }
}

/// `text[start..end]` for an error message: quoted, shortened past 40 characters, or
/// "end of route" when empty.
pub(super) fn found(text: &str, start: usize, end: usize) -> String {
    let piece = text.get(start..end).unwrap_or_default();
    if piece.is_empty() {
        return "end of route".to_owned();
    }
    if piece.chars().count() > 40 {
        let short: String = piece.chars().take(40).collect();
        format!("{short:?}…")
    } else {
        format!("{piece:?}")
    }
}
