//! Why a target condition does not parse, and where: every error has the byte offset, line
//! and column (1-based, counted in characters) and says what was expected and what was found.

pub use crate::routes::Position;

use super::{MAX_LIST, MAX_NESTING, MAX_TEXT};

/// A target condition that cannot be used, with the place in its text that says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {position}: {problem}")]
pub struct QueryError {
    /// Where in the condition text the problem was found.
    pub position: Position,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a target condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Nothing but whitespace.
    #[error("empty target condition; use '*' for every device")]
    Empty,
    /// Longer than [`MAX_TEXT`] bytes.
    #[error("the condition is {length} bytes long; at most {MAX_TEXT} are allowed")]
    TooLong {
        /// The length of the text, in bytes.
        length: usize,
    },
    /// Parentheses and `NOT` nested past [`MAX_NESTING`].
    #[error("parentheses and NOT nest more than {MAX_NESTING} deep")]
    TooDeep,
    /// An `IN` or `NIN` list longer than [`MAX_LIST`].
    #[error("{keyword} lists hold at most {MAX_LIST} values")]
    ListTooLong {
        /// `IN` or `NIN`.
        keyword: &'static str,
    },
    /// The text does not follow the grammar.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar allows here.
        expected: &'static str,
        /// What the text holds instead, quoted, or "end of condition".
        found: String,
    },
    /// `*` somewhere other than as the whole condition.
    #[error("'*' means every device and must be the whole condition")]
    MisplacedStar,
    /// A string literal runs to the end of the condition.
    #[error("unterminated string")]
    UnterminatedString,
    /// A backslash escape that the language does not have.
    #[error(r#"invalid escape {escape} in string; use \' \" \\ or, in single quotes, ''"#)]
    InvalidEscape {
        /// The escape as written.
        escape: String,
    },
    /// A number too large for a 64-bit float.
    #[error("number {number:?} is out of range")]
    NumberOutOfRange {
        /// The number as written.
        number: String,
    },
    /// A property path whose root is not part of a twin.
    #[error(
        "unknown property root {root:?}; conditions read deviceId, moduleId, tags.*, properties.desired.*, \
         properties.reported.*, $version, status or capabilities.iotEdge"
    )]
    UnknownRoot {
        /// The root as written.
        root: String,
    },
    /// A member of a property that holds a plain value (`deviceId.x`).
    #[error("{root} has no members")]
    NoMembers {
        /// The property, spelled canonically.
        root: &'static str,
    },
    /// A call to a function the language does not have.
    #[error(
        "unknown function {name:?}; functions are IS_DEFINED, IS_NULL, IS_BOOL, IS_NUMBER, IS_STRING, IS_OBJECT, \
         IS_ARRAY, STARTSWITH, ENDSWITH and CONTAINS"
    )]
    UnknownFunction {
        /// The name as written.
        name: String,
    },
    /// A function called with the wrong number of arguments.
    #[error("wrong number of arguments to {function}; use {signature}")]
    Arguments {
        /// The function, spelled canonically.
        function: &'static str,
        /// How it is called.
        signature: &'static str,
    },
    /// `IN` or `NIN` not followed by a bracketed list.
    #[error("{keyword} expects a list like ['a', 'b'], found {found}")]
    NotAList {
        /// `IN` or `NIN`.
        keyword: &'static str,
        /// What follows the keyword instead, quoted, or "end of condition".
        found: String,
    },
}

/// A problem at a byte offset, before it is tied to a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fail {
    /// Byte offset into the condition text.
    pub at: usize,
    /// What is wrong.
    pub problem: Problem,
}

impl Fail {
    pub(super) fn new(at: usize, problem: Problem) -> Self {
        Self { at, problem }
    }

    pub(super) fn into_error(self, text: &str) -> QueryError {
        QueryError { position: Position::in_text(text, self.at), problem: self.problem }
    }
}

/// `text[start..end]` for an error message: quoted, shortened past 40 characters, or
/// "end of condition" when empty.
pub(super) fn found(text: &str, start: usize, end: usize) -> String {
    let piece = text.get(start..end).unwrap_or_default();
    if piece.is_empty() {
        return "end of condition".to_owned();
    }
    if piece.chars().count() > 40 {
        let short: String = piece.chars().take(40).collect();
        format!("{short:?}…")
    } else {
        format!("{piece:?}")
    }
}
