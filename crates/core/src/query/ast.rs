//! The parsed form of a target condition, and its canonical text: keywords and function names
//! upper-case, strings in single quotes, one space around operators, parentheses only where
//! precedence needs them. The canonical text parses back to the same tree.

use std::fmt;

use serde_json::Value;

use super::lexer::is_plain_name;

/// A boolean expression. `Or` and `And` hold at least two operands, none of them of their
/// own kind (chains are flattened), so that equal conditions have equal trees.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        left: Operand,
        op: CompareOp,
        right: Operand,
    },
    /// `operand IN [list]`, or `NIN` when `negated`; the list holds literals only.
    In {
        operand: Operand,
        negated: bool,
        list: Vec<Value>,
    },
    Call {
        function: Function,
        args: Vec<Operand>,
    },
}

impl Expr {
    /// `items` joined by OR, flattened: a single item stands alone.
    pub(super) fn or(items: Vec<Expr>) -> Expr {
        join(items, Expr::Or, |expr| match expr {
            Expr::Or(inner) => Ok(inner),
            other => Err(other),
        })
    }

    /// `items` joined by AND, flattened: a single item stands alone.
    pub(super) fn and(items: Vec<Expr>) -> Expr {
        join(items, Expr::And, |expr| match expr {
            Expr::And(inner) => Ok(inner),
            other => Err(other),
        })
    }
}

/// `items` under `make`, splicing in the operands of items that `split` opens.
fn join(items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr, split: fn(Expr) -> Result<Vec<Expr>, Expr>) -> Expr {
    let mut flat = Vec::with_capacity(items.len());
    for item in items {
        match split(item) {
            Ok(inner) => flat.extend(inner),
            Err(other) => flat.push(other),
        }
    }
    if flat.len() == 1
        && let Some(only) = flat.pop()
    {
        return only;
    }
    make(flat)
}

/// One side of a comparison or a function argument.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operand {
    Path(Path),
    /// A string, number, boolean or null.
    Literal(Value),
}

/// A property of the twin: a root and the member names below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Path {
    pub root: Root,
    pub members: Vec<String>,
}

/// Where a property path starts in the twin document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    DeviceId,
    ModuleId,
    Tags,
    Desired,
    Reported,
    Version,
    Status,
    IotEdge,
}

impl Root {
    /// Every root, for lookups by name.
    pub(super) const ALL: [Root; 8] = [
        Root::DeviceId,
        Root::ModuleId,
        Root::Tags,
        Root::Desired,
        Root::Reported,
        Root::Version,
        Root::Status,
        Root::IotEdge,
    ];

    /// The root as written in a condition, which is also its place in the twin document.
    pub(super) fn spelling(self) -> &'static str {
        match self {
            Root::DeviceId => "deviceId",
            Root::ModuleId => "moduleId",
            Root::Tags => "tags",
            Root::Desired => "properties.desired",
            Root::Reported => "properties.reported",
            Root::Version => "$version",
            Root::Status => "status",
            Root::IotEdge => "capabilities.iotEdge",
        }
    }

    /// Whether the root holds an object whose members a path may name.
    pub(super) fn has_members(self) -> bool {
        matches!(self, Root::Tags | Root::Desired | Root::Reported)
    }
}

/// A comparison operator; `<>` is read as `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    fn spelling(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A predicate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Function {
    IsDefined,
    IsNull,
    IsBool,
    IsNumber,
    IsString,
    IsObject,
    IsArray,
    StartsWith,
    EndsWith,
    Contains,
}

impl Function {
    /// Every function, for lookups by name.
    pub(super) const ALL: [Function; 10] = [
        Function::IsDefined,
        Function::IsNull,
        Function::IsBool,
        Function::IsNumber,
        Function::IsString,
        Function::IsObject,
        Function::IsArray,
        Function::StartsWith,
        Function::EndsWith,
        Function::Contains,
    ];

    /// The function called `name`, in any case (`STARTS_WITH` and `ENDS_WITH` too).
    pub(super) fn lookup(name: &str) -> Option<Function> {
        if name.eq_ignore_ascii_case("starts_with") {
            return Some(Function::StartsWith);
        }
        if name.eq_ignore_ascii_case("ends_with") {
            return Some(Function::EndsWith);
        }
        Function::ALL.into_iter().find(|function| function.name().eq_ignore_ascii_case(name))
    }

    /// The canonical name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Function::IsDefined => "IS_DEFINED",
            Function::IsNull => "IS_NULL",
            Function::IsBool => "IS_BOOL",
            Function::IsNumber => "IS_NUMBER",
            Function::IsString => "IS_STRING",
            Function::IsObject => "IS_OBJECT",
            Function::IsArray => "IS_ARRAY",
            Function::StartsWith => "STARTSWITH",
            Function::EndsWith => "ENDSWITH",
            Function::Contains => "CONTAINS",
        }
    }

    /// How many arguments it takes.
    pub(super) fn arity(self) -> usize {
        match self {
            Function::StartsWith | Function::EndsWith | Function::Contains => 2,
            _ => 1,
        }
    }

    /// How it is called, for error messages.
    pub(super) fn signature(self) -> &'static str {
        match self {
            Function::IsDefined => "IS_DEFINED(path)",
            Function::IsNull => "IS_NULL(value)",
            Function::IsBool => "IS_BOOL(value)",
            Function::IsNumber => "IS_NUMBER(value)",
            Function::IsString => "IS_STRING(value)",
            Function::IsObject => "IS_OBJECT(value)",
            Function::IsArray => "IS_ARRAY(value)",
            Function::StartsWith => "STARTSWITH(value, 'prefix')",
            Function::EndsWith => "ENDSWITH(value, 'suffix')",
            Function::Contains => "CONTAINS(value, 'part')",
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(items) => list(f, items, " OR ", |item| matches!(item, Expr::Or(_))),
            Expr::And(items) => list(f, items, " AND ", |item| matches!(item, Expr::Or(_) | Expr::And(_))),
            Expr::Not(operand) => {
                f.write_str("NOT ")?;
                child(f, operand, matches!(**operand, Expr::Or(_) | Expr::And(_)))
            }
            Expr::Compare { left, op, right } => write!(f, "{left} {} {right}", op.spelling()),
            Expr::In { operand, negated, list } => {
                write!(f, "{operand} {} [", if *negated { "NIN" } else { "IN" })?;
                for (i, value) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    literal(f, value)?;
                }
                f.write_str("]")
            }
            Expr::Call { function, args } => {
                write!(f, "{}(", function.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// `items` separated by `separator`, each in parentheses if `bracket` says so.
fn list(f: &mut fmt::Formatter<'_>, items: &[Expr], separator: &str, bracket: fn(&Expr) -> bool) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        child(f, item, bracket(item))?;
    }
    Ok(())
}

fn child(f: &mut fmt::Formatter<'_>, expr: &Expr, parenthesize: bool) -> fmt::Result {
    if parenthesize { write!(f, "({expr})") } else { write!(f, "{expr}") }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Path(path) => write!(f, "{path}"),
            Operand::Literal(value) => literal(f, value),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.spelling())?;
        for member in &self.members {
            if is_plain_name(member) {
                write!(f, ".{member}")?;
            } else {
                f.write_str("[")?;
                string(f, member)?;
                f.write_str("]")?;
            }
        }
        Ok(())
    }
}

/// A literal as written: strings single-quoted, everything else as JSON.
fn literal(f: &mut fmt::Formatter<'_>, value: &Value) -> fmt::Result {
    match value {
        Value::String(s) => string(f, s),
        other => write!(f, "{other}"),
    }
}

/// `s` in single quotes, with `'` and `\` escaped.
fn string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in s.chars() {
        if matches!(c, '\'' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("'")
}
