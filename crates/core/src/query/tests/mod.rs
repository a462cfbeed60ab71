//! Target condition tests: syntax and canonical text, and errors with their positions.

#![allow(clippy::unwrap_used)]

mod errors;
mod syntax;

use super::*;

/// `text`, which must parse.
fn parse(text: &str) -> Condition {
    Condition::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// The canonical text of `text`, which must parse.
fn canonical(text: &str) -> String {
    parse(text).to_string()
}
