//! Parsed conditions and their evaluation against a message. Operators follow edgeHub's
//! three-valued logic: undefined spreads through comparisons and arithmetic, `false AND x`
//! is false and `true OR x` true whatever `x` is, and `null` has the rules of edgeHub's
//! `Null` type (`null AND x` is null, `null OR x` is `x`, `NOT null` is true).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;

use serde_json::Value as Json;

use super::body::{self, BodyPath};
use super::functions::Function;
use super::message::{RouteMessage, lookup};
use super::types::{BinaryOp, UnaryOp};
use super::value::Value;

/// A literal as written in the route.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(String),
}

/// A condition, or part of one.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Literal(Literal),
    /// A bare name: an application property.
    Property(String),
    /// `$name` (`name` holds the `$`): an application property of that exact name if the
    /// message has one, else system property `name`; `{$name}` (`escaped`): always the
    /// system property.
    System {
        name: String,
        escaped: bool,
    },
    /// `$body.…` (`name` holds all of it): an application property of that exact name if
    /// the message has one, else the body query; `{$body.…}` (`escaped`): always the query.
    Body {
        name: String,
        path: BodyPath,
        escaped: bool,
    },
    Call {
        function: Function,
        args: Vec<Expr>,
    },
    /// `dynamic`: the operand is a `$body` value, whose logic edgeHub computes strictly (a
    /// non-bool operand makes `NOT` undefined, even `null`).
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
        dynamic: bool,
    },
    /// `dynamic`: an operand is a `$body` value; `AND` and `OR` then want two bools and are
    /// undefined otherwise.
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
        dynamic: bool,
    },
}

/// A message being evaluated, with its body decoded at most once.
pub(super) struct Scope<'m> {
    message: &'m RouteMessage,
    body: OnceCell<Option<Json>>,
}

impl<'m> Scope<'m> {
    pub(super) fn new(message: &'m RouteMessage) -> Self {
        Self { message, body: OnceCell::new() }
    }

    fn body(&self) -> Option<&Json> {
        self.body.get_or_init(|| body::decode(self.message)).as_ref()
    }

    fn property(&self, name: &str) -> Option<Value<'m>> {
        lookup(&self.message.properties, name).map(|v| Value::String(Cow::Borrowed(v)))
    }

    fn system(&self, name: &str) -> Value<'m> {
        lookup(&self.message.system, name).map_or(Value::Undefined, |v| Value::String(Cow::Borrowed(v)))
    }
}

impl Expr {
    /// The value of this expression for the message in `scope`.
    pub(super) fn eval<'a>(&'a self, scope: &Scope<'a>) -> Value<'a> {
        match self {
            Self::Literal(literal) => match literal {
                Literal::Undefined => Value::Undefined,
                Literal::Null => Value::Null,
                Literal::Bool(b) => Value::Bool(*b),
                Literal::Number(n) => Value::Number(*n),
                Literal::String(s) => Value::String(Cow::Borrowed(s)),
            },
            Self::Property(name) => scope.property(name).unwrap_or(Value::Undefined),
            Self::System { name, escaped } => {
                let shadowing = if *escaped { None } else { scope.property(name) };
                shadowing.unwrap_or_else(|| scope.system(name.get(1..).unwrap_or_default()))
            }
            Self::Body { name, path, escaped } => {
                let shadowing = if *escaped { None } else { scope.property(name) };
                shadowing.unwrap_or_else(|| path.query(scope.body()))
            }
            Self::Call { function, args } => {
                let args: Vec<Value<'a>> = args.iter().map(|arg| arg.eval(scope)).collect();
                function.call(&args)
            }
            Self::Unary { op, operand, dynamic } => unary(*op, operand.eval(scope), *dynamic),
            Self::Binary { op, left, right, dynamic } => binary(*op, left.eval(scope), right.eval(scope), *dynamic),
        }
    }
}

fn unary(op: UnaryOp, operand: Value<'_>, dynamic: bool) -> Value<'_> {
    match (op, operand) {
        (UnaryOp::Negate, Value::Number(n)) => Value::Number(-n),
        (UnaryOp::Not, Value::Bool(b)) => Value::Bool(!b),
        (UnaryOp::Not, Value::Null) if !dynamic => Value::Bool(true),
        _ => Value::Undefined,
    }
}

fn binary<'a>(op: BinaryOp, left: Value<'a>, right: Value<'a>, dynamic: bool) -> Value<'a> {
    use Value::{Bool, Null, Number, String, Undefined};
    match op {
        BinaryOp::Coalesce => match left {
            Undefined => right,
            defined => defined,
        },
        BinaryOp::And | BinaryOp::Or if dynamic => match (left, right) {
            (Bool(a), Bool(b)) => Bool(if op == BinaryOp::And { a && b } else { a || b }),
            _ => Undefined,
        },
        BinaryOp::And => match (left, right) {
            (Null, _) | (_, Null) => Null,
            (Bool(false), _) | (_, Bool(false)) => Bool(false),
            (Bool(true), Bool(true)) => Bool(true),
            _ => Undefined,
        },
        BinaryOp::Or => match (left, right) {
            (Null, Null) => Null,
            (Bool(true), _) | (_, Bool(true)) => Bool(true),
            (Bool(false) | Null, Bool(false) | Null) => Bool(false),
            _ => Undefined,
        },
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            compare(op, &left, &right)
        }
        BinaryOp::Concat => match (left, right) {
            (String(a), String(b)) => String(Cow::Owned(a.into_owned() + &b)),
            _ => Undefined,
        },
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => match (left, right) {
            (Number(a), Number(b)) => Value::number(match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div => a / b,
                _ => a % b,
            }),
            _ => Undefined,
        },
    }
}

/// A comparison. Values of one type compare (strings by code point, `false < true`, `null`
/// equal to itself); undefined makes it undefined. Values of different types can only meet
/// through `$body`: as in edgeHub they are unequal, and neither smaller nor larger.
fn compare<'a>(op: BinaryOp, left: &Value<'_>, right: &Value<'_>) -> Value<'a> {
    let order = match (left, right) {
        (Value::Undefined, _) | (_, Value::Undefined) => return Value::Undefined,
        (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (op, order) {
        (BinaryOp::Eq, order) => Value::Bool(order == Some(Ordering::Equal)),
        (BinaryOp::Ne, order) => Value::Bool(order != Some(Ordering::Equal)),
        (_, None) => Value::Undefined,
        (BinaryOp::Lt, Some(order)) => Value::Bool(order.is_lt()),
        (BinaryOp::Le, Some(order)) => Value::Bool(order.is_le()),
        (BinaryOp::Gt, Some(order)) => Value::Bool(order.is_gt()),
        (_, Some(order)) => Value::Bool(order.is_ge()),
    }
}
