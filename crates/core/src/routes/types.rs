//! Static types of conditions, checked when a route is parsed as edgeHub's compiler checks
//! them: properties are strings, so `temperature > 25` is refused (use
//! `as_number(temperature) > 25`), while a `$body` query may hold anything and is checked
//! against the message when the route is evaluated.

use std::fmt;

/// The type of a condition expression, as far as it is known before a message arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprType {
    /// `true`, `false`, comparisons, logic, `is_*` functions.
    Bool,
    /// Number literals and arithmetic.
    Number,
    /// String literals, application and system properties.
    String,
    /// The `null` literal.
    Null,
    /// The `undefined` literal.
    Undefined,
    /// A `$body` query: any scalar, known only per message.
    Any,
}

impl ExprType {
    /// Types a `$body` value can stand in for.
    fn is_scalar(self) -> bool {
        matches!(self, Self::Bool | Self::Number | Self::String | Self::Null)
    }
}

impl fmt::Display for ExprType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bool => "bool",
            Self::Number => "number",
            Self::String => "string",
            Self::Null => "null",
            Self::Undefined => "undefined",
            Self::Any => "$body value",
        })
    }
}

/// Binary operators, loosest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOp {
    Coalesce,
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Concat,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    /// Binding strength: `??` < `OR` < `AND` < `= != <>` < `< <= > >=` < `+ - ||` < `* / %`.
    pub(super) fn precedence(self) -> u8 {
        match self {
            Self::Coalesce => 1,
            Self::Or => 2,
            Self::And => 3,
            Self::Eq | Self::Ne => 4,
            Self::Lt | Self::Le | Self::Gt | Self::Ge => 5,
            Self::Add | Self::Sub | Self::Concat => 6,
            Self::Mul | Self::Div | Self::Rem => 7,
        }
    }
}

/// Prefix operators; they bind tighter than every binary operator, so `NOT a = b` reads
/// `(NOT a) = b`, as in edgeHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnaryOp {
    Negate,
    Not,
}

/// Whether an operand of type `given` may stand where `expected` is wanted: the same type,
/// or a `$body` value on either side of a scalar.
pub(super) fn accepts(expected: ExprType, given: ExprType) -> bool {
    expected == given
        || (given == ExprType::Any && expected.is_scalar())
        || (expected == ExprType::Any && given.is_scalar())
}

/// The type of `left op right`, or `None` if the operator does not take those operands.
pub(super) fn binary(op: BinaryOp, left: ExprType, right: ExprType) -> Option<ExprType> {
    use ExprType::{Any, Bool, Null, Number, String, Undefined};
    let dynamic = left == Any || right == Any;
    let logical = |t: ExprType| matches!(t, Bool | Null | Undefined | Any);
    match op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
            (accepts(Number, left) && accepts(Number, right)).then_some(if dynamic { Any } else { Number })
        }
        BinaryOp::Concat => {
            (accepts(String, left) && accepts(String, right)).then_some(if dynamic { Any } else { String })
        }
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            accepts(left, right).then_some(Bool)
        }
        BinaryOp::And => (logical(left) && logical(right)).then_some(if !dynamic && (left == Null || right == Null) {
            Null
        } else {
            Bool
        }),
        BinaryOp::Or => {
            (logical(left) && logical(right)).then_some(if left == Null && right == Null { Null } else { Bool })
        }
        BinaryOp::Coalesce => accepts(left, right).then_some(match left {
            Undefined => right,
            _ if dynamic => Any,
            _ => left,
        }),
    }
}

/// The type of `op operand`, or `None` if the operator does not take it.
pub(super) fn unary(op: UnaryOp, operand: ExprType) -> Option<ExprType> {
    match op {
        UnaryOp::Negate => accepts(ExprType::Number, operand).then_some(operand),
        UnaryOp::Not => (operand == ExprType::Null || accepts(ExprType::Bool, operand)).then_some(ExprType::Bool),
    }
}
